import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Local state kept in one JSON file that may hold secrets (the dev issuer's key; the demo
 * authorization server's clients and refresh tokens): read whole, written whole, mode 0600 in a
 * folder of mode 0700, and never seen half-written. Dev-only; nothing in AWS reads a file.
 */

/** The JSON the file holds, or undefined when there is no such file. */
export function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Writes `value` to a temporary file, then publishes it under `file` in one step: replacing what
 * is there, or with `exclusive` only where nothing is yet, so concurrent first writers agree on
 * one (false: another was first; read its file). Whether this call's value is the file's now.
 */
export function writeJsonFile(file: string, value: unknown, options: { exclusive?: boolean } = {}): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  if (!options.exclusive) {
    renameSync(tmp, file);
    return true;
  }
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}
