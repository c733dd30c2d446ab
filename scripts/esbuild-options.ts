import type { BuildOptions } from 'esbuild';

/** The one esbuild definition for Lambda bundles (used by `npm run build` and the benchmarks). */
export const lambdaBuildOptions: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  sourcemap: 'linked',
  treeShaking: true,
  // Minified class names would turn error names into `Lt`: Lambda's init-failure errorType and every
  // logged `error: err.name` need the real ones (ConfigError, …).
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  mainFields: ['module', 'main'],
  conditions: ['module', 'import'],
  // ESM bundles that pull CommonJS dependencies need a real `require`.
  banner: {
    js: "import { createRequire as __lkmcpCreateRequire } from 'node:module'; const require = __lkmcpCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
};

/**
 * The most bytes one function's bundle (`dist/functions/<name>/index.mjs`) may have: what every
 * cold start loads and parses. Held by test/infra/artifact.test.ts and reported by `npm run bench`.
 */
export const BUNDLE_BUDGET_BYTES = 800_000;

/** The functions that are bundled, each from `functions/<name>/handler.ts`. */
export const functionNames = ['session', 'webhook', 'admin', 'credentials'] as const;

/**
 * Files a function reads at run time, copied beside its bundle by `npm run build` (the stack ships
 * the directory): kept out of the bundle, so a cold start does not parse them.
 */
export const bundleAssets: Partial<
  Record<(typeof functionNames)[number], readonly { from: string; to: string }[]>
> = {
  admin: [{ from: 'functions/openapi/openapi.json', to: 'openapi.json' }],
};
