#!/usr/bin/env node
// The `livekit-mcp-dispatch` admin CLI. In a checkout it runs the TypeScript source through tsx
// (always current); without tsx (production install) it runs the bundle `npm run build` writes.
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/index.mjs', import.meta.url);

async function load() {
  if (existsSync(source)) {
    try {
      const { tsImport } = await import('tsx/esm/api');
      return await tsImport(source.href, import.meta.url);
    } catch (err) {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('tsx')) throw err;
    }
  }
  if (existsSync(built)) return import(built.href);
  console.error('livekit-mcp-dispatch: run `npm install` (for tsx) or `npm run build` first');
  process.exit(2);
}

const cli = await load();
await cli.main(process.argv.slice(2));
