import type { Keyring } from '@livekit-mcp-dispatch/contract';

// The keyring shape and its one parser are the contract package's (docs/api.md §3); what is
// left here is server-only: the key-separation check and dev key generation.
export { type Keyring, parseKeyring } from '@livekit-mcp-dispatch/contract';

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
