/** A keyring as the contract defines it: `{"current":"<kid>","keys":{"<kid>":"<base64url 32 bytes>"}}`. */
export interface Keyring {
  current: string;
  keys: ReadonlyMap<string, Uint8Array>;
}

const KID = /^[A-Za-z0-9._-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parses keyring JSON, returning the keyring or the list of problems (never key material).
 * `label` names the keyring in messages (e.g. `DISPATCH_KEYS`).
 */
export function parseKeyring(label: string, raw: unknown): { keyring?: Keyring; problems: string[] } {
  const problems: string[] = [];
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return { problems: [`${label}: not valid JSON`] };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [`${label}: must be an object {"current","keys"}`] };
  }
  const { current, keys } = value as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || !KID.test(current)) {
    problems.push(`${label}: "current" must be a key id of 1-64 characters [A-Za-z0-9._-]`);
  }
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys) || Object.keys(keys).length === 0) {
    problems.push(`${label}: "keys" must be a non-empty object of key id to base64url key`);
    return { problems };
  }
  const map = new Map<string, Uint8Array>();
  for (const [kid, encoded] of Object.entries(keys)) {
    if (!KID.test(kid)) {
      problems.push(`${label}: key id "${kid.slice(0, 64)}" is not 1-64 characters [A-Za-z0-9._-]`);
      continue;
    }
    if (typeof encoded !== 'string' || !B64URL.test(encoded)) {
      problems.push(`${label}: key "${kid}" is not base64url`);
      continue;
    }
    const bytes = new Uint8Array(Buffer.from(encoded, 'base64url'));
    if (bytes.length !== 32) {
      problems.push(`${label}: key "${kid}" must be 32 bytes, got ${bytes.length}`);
      continue;
    }
    map.set(kid, bytes);
  }
  if (typeof current === 'string' && KID.test(current) && !Object.hasOwn(keys, current)) {
    problems.push(`${label}: "current" key "${current}" is not in "keys"`);
  }
  if (problems.length > 0) return { problems };
  return { keyring: { current: current as string, keys: map }, problems };
}

/** Problems if two keyrings share any key material (compared by value, not by id). */
export function sharedKeyMaterial(a: Keyring, b: Keyring, labels: [string, string]): string[] {
  const seen = new Set([...a.keys.values()].map((k) => Buffer.from(k).toString('base64url')));
  for (const [kid, key] of b.keys) {
    if (seen.has(Buffer.from(key).toString('base64url'))) {
      return [`${labels[0]} and ${labels[1]} must not share key material (key "${kid}" appears in both)`];
    }
  }
  return [];
}

/** A fresh keyring with one random key, in the contract's JSON shape. */
export function generateKeyringJson(kid = defaultKid()): { current: string; keys: Record<string, string> } {
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  return { current: kid, keys: { [kid]: key } };
}

function defaultKid(): string {
  const now = new Date();
  return `k${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}
