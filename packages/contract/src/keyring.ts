import { Buffer } from 'node:buffer';

/** Keyring JSON as the contract defines it: `{"current":"<kid>","keys":{"<kid>":"<base64url 32 bytes>"}}`. */
export interface KeyringJson {
  current: string;
  keys: Record<string, string>;
}

/** A parsed keyring: key id to 32 raw key bytes. */
export interface Keyring {
  current: string;
  keys: ReadonlyMap<string, Uint8Array>;
}

/** Key ids: 1-64 characters `[A-Za-z0-9._-]`. */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Every key of a keyring is this many bytes (AES-256). */
export const KEY_BYTES = 32;
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The one keyring parser (docs/api.md §3), for the server's `DISPATCH_KEYS`/`STORAGE_KEYS` and the
 * worker's `DISPATCH_KEYS`. Parses keyring JSON (text or object) and returns the keyring, or every
 * problem: not JSON, bad key id, key not base64url, key not 32 bytes, `current` not in `keys`.
 * Problems never contain key material; each starts with `label: ` unless `label` is empty.
 */
export function parseKeyring(label: string, raw: unknown): { keyring?: Keyring; problems: string[] } {
  const p = (text: string) => (label === '' ? text : `${label}: ${text}`);
  const problems: string[] = [];
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return { problems: [p('not valid JSON')] };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [p('must be an object {"current","keys"}')] };
  }
  const { current, keys } = value as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || !KEY_ID.test(current)) {
    problems.push(p('"current" must be a key id of 1-64 characters [A-Za-z0-9._-]'));
  }
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys) || Object.keys(keys).length === 0) {
    problems.push(p('"keys" must be a non-empty object of key id to base64url key'));
    return { problems };
  }
  const map = new Map<string, Uint8Array>();
  for (const [kid, encoded] of Object.entries(keys)) {
    if (!KEY_ID.test(kid)) {
      problems.push(p(`key id "${kid.slice(0, 64)}" is not 1-64 characters [A-Za-z0-9._-]`));
      continue;
    }
    if (typeof encoded !== 'string' || !B64URL.test(encoded)) {
      problems.push(p(`key "${kid}" is not base64url`));
      continue;
    }
    // Buffer's decoder reads every string of the alphabet (a stray final character adds no byte),
    // so a short key is reported by its length, which says more than "not base64url".
    const bytes = new Uint8Array(Buffer.from(encoded, 'base64url'));
    if (bytes.length !== KEY_BYTES) {
      problems.push(p(`key "${kid}" must be ${KEY_BYTES} bytes, got ${bytes.length}`));
      continue;
    }
    map.set(kid, bytes);
  }
  if (typeof current === 'string' && KEY_ID.test(current) && !Object.hasOwn(keys, current)) {
    problems.push(p(`"current" key "${current}" is not in "keys"`));
  }
  if (problems.length > 0) return { problems };
  return { keyring: { current: current as string, keys: map }, problems };
}
