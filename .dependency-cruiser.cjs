/**
 * The layering rules (docs/code-map.md), checked by `npm run lint:layers` (part of `npm test`)
 * and by test/unit/layering.test.ts, which also shows each rule failing on a violation.
 */
const APPS = '^functions/(session|webhook|admin)/';
const CORE = '^functions/core/';

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const forbidden = [
  {
    name: 'core-is-the-domain',
    comment:
      'functions/core imports no adapter, HTTP layer, app, composition root or OpenAPI code, and no AWS SDK, Powertools, Hono or LiveKit SDK: those come in through ports.',
    severity: 'error',
    from: { path: CORE },
    to: {
      path: [
        '^functions/(adapters|http|session|webhook|admin|openapi)/',
        '^functions/(compose|lambda|local)\\.ts$',
        'node_modules/(@aws-sdk|@smithy|@aws-lambda-powertools|hono|@hono|livekit-server-sdk)/',
      ],
    },
  },
  {
    name: 'apps-reach-adapters-through-the-root',
    comment:
      'functions/{session,webhook,admin} import no adapter; the composition roots (compose.ts, lambda.ts, local.ts) build the adapters and pass them in.',
    severity: 'error',
    from: { path: APPS },
    to: { path: '^functions/adapters/' },
  },
  {
    name: 'functions-do-not-import-the-worker',
    comment: 'functions/ and worker/ share only packages/contract.',
    severity: 'error',
    from: { path: '^functions/' },
    to: { path: '^worker/' },
  },
  {
    name: 'worker-does-not-import-the-server',
    comment: 'worker/ and functions/ share only packages/contract.',
    severity: 'error',
    from: { path: '^worker/' },
    to: { path: '^(functions|infra|cli|scripts|bench|test)/' },
  },
  {
    name: 'infra-uses-only-the-config-schema-of-core',
    comment: 'infra/ imports nothing of functions/core but the configuration schema and its errors.',
    severity: 'error',
    from: { path: '^infra/' },
    to: { path: CORE, pathNot: '^functions/core/(config|errors)\\.ts$' },
  },
  {
    name: 'contract-is-self-contained',
    comment: 'packages/contract imports nothing but jose and node built-ins.',
    severity: 'error',
    from: { path: '^packages/contract/' },
    to: { dependencyTypesNot: ['core'], pathNot: ['^packages/contract/', 'node_modules/jose/'] },
  },
  {
    name: 'no-unresolvable-imports',
    comment: 'Every import resolves (a typo would otherwise pass every rule above).',
    severity: 'error',
    from: { path: '^(functions|worker/src|packages|infra)/' },
    to: { couldNotResolve: true },
  },
];

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['node_modules', '^worker/python', '(^|/)cdk\\.out/', '(^|/)dist/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.json', '.d.ts'],
    },
  },
};
