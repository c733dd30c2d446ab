import {
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { JwtVerifier } from '../core/caller.js';
import { AuthError, AuthUnavailableError, ConfigError } from '../core/errors.js';

export type { JwtVerifier, Principal } from '../core/caller.js';

/** Options of {@link createJwtVerifier}. Give `jwksUrl` or `getKey`. */
export interface JwtVerifierOptions {
  /** Issuer's JWKS; fetched with a timeout, cached, refetched at most once per cooldown. */
  jwksUrl?: string;
  /** A key resolver used instead of `jwksUrl` (tests, the local dev issuer). */
  getKey?: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  /** Claim naming the caller's tenant (`AUTH_TENANT_CLAIM`). */
  tenantClaim: string;
  /** Accepted signature algorithms; asymmetric only. */
  algorithms?: string[];
  /** JWKS fetch timeout in milliseconds (default 3000). */
  timeoutMs?: number;
}

/** Signature algorithms accepted by default. Symmetric and `none` are never accepted. */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'];

const ASYMMETRIC = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

/** Seconds of clock skew tolerated on `exp`/`nbf`/`iat`. */
const CLOCK_TOLERANCE_SECONDS = 30;
/** Longest token looked at; real ones are far smaller. */
const MAX_TOKEN_LENGTH = 8192;

/** Creates a {@link JwtVerifier} over jose. Throws {@link ConfigError} on bad options. */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const algorithms = options.algorithms ?? DEFAULT_JWT_ALGORITHMS;
  const problems: string[] = [];
  const refused = algorithms.filter((a) => !ASYMMETRIC.has(a));
  if (refused.length > 0) problems.push(`JWT algorithms not allowed: ${refused.join(', ')}`);
  if (algorithms.length === 0) problems.push('at least one JWT algorithm is required');
  if (!options.issuer) problems.push('AUTH_ISSUER is required');
  if (!options.audience) problems.push('AUTH_AUDIENCE is required');
  if (!options.tenantClaim) problems.push('AUTH_TENANT_CLAIM is required');
  if (!options.getKey && !options.jwksUrl) problems.push('AUTH_JWKS_URL is required');
  if (problems.length > 0) throw new ConfigError(problems);

  const getKey =
    options.getKey ??
    createRemoteJWKSet(new URL(options.jwksUrl!), {
      timeoutDuration: options.timeoutMs ?? 3000,
      // A token with an unknown kid refetches the JWKS at most this often (key rotation).
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      [customFetch]: fetchJwks,
    });

  return {
    async verify(header) {
      const token = bearerToken(header);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (err) {
        // Only a failed fetch is our outage; a key set that was fetched and lacks the token's kid
        // (JWKSNoMatchingKey) is the token's fault. The timeout check guards a jose that wraps it.
        if (err instanceof JwksFetchError) throw new AuthUnavailableError(err.message);
        if (err instanceof errors.JWKSTimeout) throw new AuthUnavailableError(`${err.code}: ${err.message}`);
        // jose's claim errors hold the decoded payload; only the code and message travel on.
        throw new AuthError(reasonOf(err));
      }
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new AuthError('empty sub');
      const tenant = payload[options.tenantClaim];
      return {
        sub: payload.sub,
        tenantId: typeof tenant === 'string' && tenant.length > 0 ? tenant : undefined,
        scopes: scopesOf(payload),
      };
    },
  };
}

/** Fetching the JWKS failed: no answer, a timeout, a status other than 200, or no JWK set. */
class JwksFetchError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'JwksFetchError';
  }
}

/**
 * jose's JWKS fetch, with every way it can fail turned into a {@link JwksFetchError}, so that
 * error tells "could not fetch" apart from "fetched, and the token is not good". jose passes an
 * error thrown here through unchanged (only one named `TimeoutError` becomes its JWKSTimeout).
 * The body is checked here as jose would (JSON, a `keys` array of objects) and handed on.
 */
const fetchJwks: FetchImplementation = async (url, init) => {
  const failed = (err: unknown, what: string) =>
    new JwksFetchError(
      err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
        ? `ERR_JWKS_TIMEOUT: ${what} timed out`
        : `ERR_JWKS_FETCH: ${what} failed (${err instanceof Error ? err.name : typeof err})`,
    );
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw failed(err, 'JWKS request');
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new JwksFetchError(`ERR_JWKS_STATUS: JWKS answered HTTP ${response.status}`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    throw failed(err, 'JWKS body');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new JwksFetchError('ERR_JWKS_INVALID: JWKS body is not JSON');
  }
  const keys = typeof body === 'object' && body !== null ? (body as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
    throw new JwksFetchError('ERR_JWKS_INVALID: JWKS body is not a JWK set');
  }
  return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
};

function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw new AuthError('no authorization header');
  const match = /^Bearer[ ]+([A-Za-z0-9\-_.~+/]+=*)[ ]*$/i.exec(header);
  if (!match) throw new AuthError('authorization header is not a bearer token');
  const token = match[1]!;
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('token too long');
  return token;
}

function reasonOf(err: unknown): string {
  if (err instanceof errors.JOSEError) {
    // For claim checks jose names the claim in the message; for others the code says enough.
    const detail =
      err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired
        ? `${err.claim} ${err.reason}`
        : err.message;
    return `${err.code}: ${detail}`;
  }
  return `verification failed: ${err instanceof Error ? err.name : typeof err}`;
}

function scopesOf(payload: JWTPayload): Set<string> {
  const scopes = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) scopes.add(s);
  };
  add(payload.scope);
  if (Array.isArray(payload.scp)) for (const s of payload.scp) add(s);
  else add(payload.scp);
  return scopes;
}
