/**
 * Writes functions/openapi/openapi.json from the apps' zod/mini schemas (run by `npm run build`;
 * `npm run openapi`). `--check` only compares and exits 1 when the checked-in file is stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { renderOpenApiJson } from '../functions/openapi/document.js';

const FILE = 'functions/openapi/openapi.json';
const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
const text = renderOpenApiJson(version);
if (process.argv.includes('--check')) {
  const current = await readFile(FILE, 'utf8').catch(() => '');
  if (current !== text) {
    console.error(`${FILE} is stale: run npm run openapi`);
    process.exit(1);
  }
} else {
  await writeFile(FILE, text);
  console.log(`${FILE}  ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`);
}
