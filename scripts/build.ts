import { mkdir, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { functionNames, lambdaBuildOptions } from './esbuild-options.js';

/** `npm run build`: one ESM bundle per function under dist/functions/<name>/index.mjs. */
for (const name of functionNames) {
  const outdir = `dist/functions/${name}`;
  await mkdir(outdir, { recursive: true });
  const result = await build({
    ...lambdaBuildOptions,
    entryPoints: { index: `functions/${name}/handler.ts` },
    outdir,
    outExtension: { '.js': '.mjs' },
  });
  await writeFile(`${outdir}/meta.json`, JSON.stringify(result.metafile));
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
