import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { bundleAssets, functionNames, lambdaBuildOptions } from './esbuild-options.js';

/**
 * `npm run build`: one ESM bundle per function under dist/functions/<name>/index.mjs, the files
 * it reads at run time beside it (the admin function's openapi.json), and its esbuild metafile.
 */
for (const name of functionNames) {
  const outdir = `dist/functions/${name}`;
  // The stack ships the whole directory: nothing left over from an earlier build.
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    ...lambdaBuildOptions,
    entryPoints: { index: `functions/${name}/handler.ts` },
    outdir,
    outExtension: { '.js': '.mjs' },
  });
  await writeFile(`${outdir}/meta.json`, JSON.stringify(result.metafile));
  for (const asset of bundleAssets[name] ?? []) await copyFile(asset.from, `${outdir}/${asset.to}`);
  const bundle = result.metafile?.outputs[`${outdir}/index.mjs`];
  console.log(`${outdir}/index.mjs  ${((bundle?.bytes ?? 0) / 1024).toFixed(0)} KiB`);
}

// The admin CLI, for installs without tsx (bin/livekit-mcp-dispatch.mjs prefers the source).
await build({
  entryPoints: ['cli/main.ts'],
  outfile: 'dist/cli/index.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
console.log('dist/cli/index.mjs');
