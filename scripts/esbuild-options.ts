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

/** The functions that are bundled, each from `functions/<name>/handler.ts`. */
export const functionNames = ['session', 'webhook', 'admin', 'credentials'] as const;
