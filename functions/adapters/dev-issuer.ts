import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  SignJWT,
} from 'jose';
import { ADMIN_SCOPE, SUPERADMIN_SCOPE } from '../core/admin-access.js';
import { readJsonFile, writeJsonFile } from './json-file.js';

/** `iss` of dev issuer tokens; `npm start` sets `AUTH_ISSUER` to it when `AUTH_JWKS_URL` is unset. */
export const DEV_ISSUER = 'livekit-mcp-dispatch-dev';
/** `aud` of dev issuer tokens; `npm start` sets `AUTH_AUDIENCE` to it when `AUTH_JWKS_URL` is unset. */
export const DEV_AUDIENCE = 'livekit-mcp-dispatch';
/** Where the local server serves the dev issuer's JWKS. */
export const DEV_JWKS_PATH = '/.well-known/jwks.json';
/** File under `DATA_DIR` holding the dev issuer's private key. */
export const DEV_ISSUER_FILE = 'dev-issuer.json';

/** What a dev token says about its holder. */
export interface DevTokenRequest {
  user: string;
  /** The tenant claim; a superadmin may have none. */
  tenant?: string;
  admin?: boolean;
  superadmin?: boolean;
  /** Lifetime, default 3600 s. */
  ttlSeconds?: number;
}

/** The local dev JWT issuer: one ES256 key kept under `DATA_DIR`. Never used in AWS. */
export interface DevIssuer {
  issuer: string;
  audience: string;
  /** Claim holding the tenant (`AUTH_TENANT_CLAIM`). */
  tenantClaim: string;
  /** Public keys, to serve at {@link DEV_JWKS_PATH}. */
  jwks(): JSONWebKeySet;
  /** Key resolver for {@link createJwtVerifier} without an HTTP round trip. */
  getKey: JWTVerifyGetKey;
  /** Signs a user (or admin) token. */
  mint(request: DevTokenRequest): Promise<string>;
}

interface StoredKey {
  kid: string;
  alg: 'ES256';
  private_jwk: JWK;
}

/**
 * Loads the dev issuer key from `dataDir/dev-issuer.json`, creating it (mode 0600) on first
 * use. Concurrent first runs (server and `dev:token`) agree on one key: the file is published
 * with an exclusive link and the loser reads the winner's key.
 */
export async function loadOrCreateDevIssuer(
  dataDir: string,
  options: { tenantClaim?: string } = {},
): Promise<DevIssuer> {
  const file = join(dataDir, DEV_ISSUER_FILE);
  const stored = readJsonFile<StoredKey>(file) ?? (await createStored(file));
  if (stored.alg !== 'ES256' || !stored.kid || stored.private_jwk?.kty !== 'EC') {
    throw new Error(`${file} is not a dev issuer key; delete it to generate a new one`);
  }
  const privateKey = await importJWK(stored.private_jwk, 'ES256');
  const { d: _d, ...publicJwk } = stored.private_jwk;
  const jwks: JSONWebKeySet = { keys: [{ ...publicJwk, kid: stored.kid, alg: 'ES256', use: 'sig' }] };
  const tenantClaim = options.tenantClaim ?? 'tenant_id';

  return {
    issuer: DEV_ISSUER,
    audience: DEV_AUDIENCE,
    tenantClaim,
    jwks: () => structuredClone(jwks),
    getKey: createLocalJWKSet(jwks),
    async mint({ user, tenant, admin, superadmin, ttlSeconds = 3600 }) {
      const scopes = [admin ? ADMIN_SCOPE : '', superadmin ? SUPERADMIN_SCOPE : ''].filter(Boolean);
      const claims: Record<string, unknown> = {};
      if (tenant !== undefined) claims[tenantClaim] = tenant;
      if (scopes.length > 0) claims.scope = scopes.join(' ');
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: stored.kid, typ: 'JWT' })
        .setSubject(user)
        .setIssuer(DEV_ISSUER)
        .setAudience(DEV_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .setJti(randomUUID())
        .sign(privateKey);
    },
  };
}

async function createStored(file: string): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const stored: StoredKey = {
    kid: await calculateJwkThumbprint(privateJwk),
    alg: 'ES256',
    private_jwk: privateJwk,
  };
  if (writeJsonFile(file, stored, { exclusive: true })) return stored;
  // Another first run published its key between our read and our write: use that one.
  const winner = readJsonFile<StoredKey>(file);
  if (winner === undefined) throw new Error(`${file} vanished while it was being created`);
  return winner;
}
