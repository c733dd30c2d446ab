import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { CryptoKey } from 'oauth4webapi';
import { ConfigError } from '../errors.js';

/** One ES256 signing key of `OAUTH_CLIENT_KEYS` (a private P-256 JWK with its `kid`). */
interface PrivateEcJwk extends JWK {
  kty: 'EC';
  crv: 'P-256';
  kid: string;
  x: string;
  y: string;
  d: string;
}

/**
 * `OAUTH_CLIENT_KEYS`, parsed: `{"current":"<kid>","keys":[<private P-256 JWK with kid>, …]}`.
 * `current` signs `private_key_jwt` assertions; every key is published (rotation is additive:
 * add a key, publish it, then make it current).
 */
export interface ClientKeyring {
  current: string;
  keys: readonly PrivateEcJwk[];
}

const KID = /^[A-Za-z0-9._-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** Parses and checks `OAUTH_CLIENT_KEYS`; throws {@link ConfigError} listing every problem (no key material). */
export function parseClientKeyring(raw: string): ClientKeyring {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(['OAUTH_CLIENT_KEYS is not JSON']);
  }
  const problems: string[] = [];
  const obj = (json ?? {}) as { current?: unknown; keys?: unknown };
  if (typeof obj.current !== 'string') problems.push('OAUTH_CLIENT_KEYS.current must name a kid');
  if (!Array.isArray(obj.keys) || obj.keys.length === 0)
    problems.push('OAUTH_CLIENT_KEYS.keys must list keys');
  const keys: PrivateEcJwk[] = [];
  const seen = new Set<string>();
  for (const [i, key] of (Array.isArray(obj.keys) ? obj.keys : []).entries()) {
    const k = (key ?? {}) as Record<string, unknown>;
    const where = `OAUTH_CLIENT_KEYS.keys[${i}]`;
    if (typeof k.kid !== 'string' || !KID.test(k.kid)) problems.push(`${where}.kid is missing or invalid`);
    else if (seen.has(k.kid)) problems.push(`${where}.kid repeats`);
    if (k.kty !== 'EC' || k.crv !== 'P-256') problems.push(`${where} must be an EC P-256 key (ES256)`);
    for (const field of ['x', 'y', 'd'] as const) {
      if (typeof k[field] !== 'string' || !B64URL.test(k[field] as string))
        problems.push(`${where}.${field} is missing`);
    }
    if (k.alg !== undefined && k.alg !== 'ES256') problems.push(`${where}.alg must be ES256`);
    if (typeof k.kid === 'string') seen.add(k.kid);
    keys.push({
      kty: 'EC',
      crv: 'P-256',
      kid: String(k.kid),
      x: String(k.x),
      y: String(k.y),
      d: String(k.d),
    });
  }
  if (typeof obj.current === 'string' && !seen.has(obj.current))
    problems.push('OAUTH_CLIENT_KEYS.current is not listed');
  if (problems.length > 0) throw new ConfigError(problems);
  return { current: obj.current as string, keys };
}

/** The public JWKS (`/oauth/jwks.json`): every key, public parts only. */
export function publicJwks(keyring: ClientKeyring): { keys: JWK[] } {
  return {
    keys: keyring.keys.map(({ kty, crv, x, y, kid }) => ({ kty, crv, x, y, kid, alg: 'ES256', use: 'sig' })),
  };
}

/** The current signing key, for oauth4webapi's `PrivateKeyJwt({ key, kid })`. */
export async function currentSigningKey(keyring: ClientKeyring): Promise<{ key: CryptoKey; kid: string }> {
  const jwk = keyring.keys.find((k) => k.kid === keyring.current);
  if (jwk === undefined) throw new ConfigError(['OAUTH_CLIENT_KEYS.current is not listed']);
  const key = (await importJWK({ ...jwk, alg: 'ES256' }, 'ES256')) as CryptoKey;
  return { key, kid: jwk.kid };
}

/** A new one-key keyring (what `npm start` generates into its dev keys). */
export async function generateClientKeyring(kid: string): Promise<ClientKeyring> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return {
    current: kid,
    keys: [{ kty: 'EC', crv: 'P-256', kid, x: String(jwk.x), y: String(jwk.y), d: String(jwk.d) }],
  };
}
