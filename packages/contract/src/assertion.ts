/**
 * The worker assertion (docs/api.md §9): how an agent worker proves to `POST /v1/worker/credentials`
 * that it holds the dispatch keyring. A compact JWS, protected header exactly
 * `{"alg":"HS256","kid":"<dispatch key id>","typ":"lk-mcp-worker+jwt"}`, HMAC key =
 * HKDF-SHA256(ikm = that dispatch key, salt = empty, info = {@link WORKER_ASSERTION_INFO}, 32 bytes),
 * claims `iss` = agent name, `aud` = `refresh_url`, `sub` = the metadata's `sid`, `iat`, `exp`
 * (≤ `iat` + 60), `jti`. The Python worker makes the same bytes (held to it by the vectors).
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { base64url, compactVerify, SignJWT } from 'jose';
import { parseExactHeader } from './header.js';
import type { Keyring } from './keyring.js';

/** Protected header `alg` of a worker assertion. */
export const WORKER_ASSERTION_ALG = 'HS256';
/** Protected header `typ` of a worker assertion. */
export const WORKER_ASSERTION_TYP = 'lk-mcp-worker+jwt';
/** HKDF `info` of the assertion key: a key used for nothing else. */
export const WORKER_ASSERTION_INFO = 'livekit-mcp-dispatch worker assertion v1';
/** The longest an assertion may live, `exp − iat`, in seconds. */
export const WORKER_ASSERTION_MAX_LIFETIME_SECONDS = 60;
/** How far in the future `iat` may be (clock skew between worker and function), in seconds. */
export const WORKER_ASSERTION_CLOCK_SKEW_SECONDS = 30;

/** The claims of a worker assertion. */
export interface WorkerAssertionClaims {
  iss: string;
  aud: string;
  sub: string;
  iat: number;
  exp: number;
  jti: string;
}

/** The 32-byte HMAC key of the assertions made with dispatch key `key` (HKDF-SHA256, empty salt). */
export function workerAssertionKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), WORKER_ASSERTION_INFO, 32));
}

/** What a worker needs to make one assertion. */
export interface WorkerAssertionInput {
  /** The dispatch keyring; the assertion is made with its current key. */
  keyring: Keyring;
  agentName: string;
  refreshUrl: string;
  sid: string;
  /** Seconds since the epoch; default now. */
  now?: number;
  /** Lifetime in seconds, at most {@link WORKER_ASSERTION_MAX_LIFETIME_SECONDS}; default 60. */
  lifetimeSeconds?: number;
  /** Default 16 random bytes, base64url. */
  jti?: string;
}

/**
 * Makes a worker assertion. The protected header is exactly the contract's, in its order.
 *
 * @throws TypeError on an input no caller should pass (empty strings, a lifetime over 60 s).
 */
export async function makeWorkerAssertion(input: WorkerAssertionInput): Promise<string> {
  const lifetime = input.lifetimeSeconds ?? WORKER_ASSERTION_MAX_LIFETIME_SECONDS;
  if (!(lifetime > 0 && lifetime <= WORKER_ASSERTION_MAX_LIFETIME_SECONDS))
    throw new TypeError('worker assertion: lifetime must be 1-60 s');
  for (const field of ['agentName', 'refreshUrl', 'sid'] as const) {
    if (typeof input[field] !== 'string' || input[field].length === 0)
      throw new TypeError(`worker assertion: ${field} must be a non-empty string`);
  }
  const kid = input.keyring.current;
  const raw = input.keyring.keys.get(kid);
  if (raw === undefined) throw new TypeError('worker assertion: the current key is missing');
  const now = Math.floor(input.now ?? Date.now() / 1000);
  // Claims in the contract's order, so the Python worker's assertion for the same inputs is the same bytes.
  const claims: WorkerAssertionClaims = {
    iss: input.agentName,
    aud: input.refreshUrl,
    sub: input.sid,
    iat: now,
    exp: now + lifetime,
    jti: input.jti ?? base64url.encode(randomBytes(16)),
  };
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: WORKER_ASSERTION_ALG, kid, typ: WORKER_ASSERTION_TYP })
    .sign(workerAssertionKey(raw));
}

/** Why an assertion was refused (the reason never quotes a value). */
export type WorkerAssertionFailure =
  | 'malformed'
  | 'bad_header'
  | 'unknown_kid'
  | 'bad_signature'
  | 'wrong_audience'
  | 'expired'
  | 'lifetime_too_long'
  | 'not_yet_valid';

/** A refused assertion. */
export class WorkerAssertionError extends Error {
  readonly reason: WorkerAssertionFailure;
  constructor(reason: WorkerAssertionFailure) {
    super(`Worker assertion refused: ${reason}.`);
    this.name = 'WorkerAssertionError';
    this.reason = reason;
  }
}

/**
 * Verifies a worker assertion against the dispatch keyring (any listed key, by `kid`) and the
 * expected `aud` (the `refresh_url`). Checks the exact header, the signature, `aud`, `iat`/`exp`
 * against `now` and the 60 s lifetime. `jti` single use is the caller's (it needs the store).
 *
 * @throws WorkerAssertionError with the first reason found.
 */
export async function verifyWorkerAssertion(
  token: string,
  options: { keyring: Keyring; audience: string; now?: number },
): Promise<WorkerAssertionClaims> {
  if (typeof token !== 'string' || token.length > 4096 || token.split('.').length !== 3)
    throw new WorkerAssertionError('malformed');
  const header = parseExactHeader(token.slice(0, token.indexOf('.')), ['alg', 'kid', 'typ']);
  if (
    header === undefined ||
    header.alg !== WORKER_ASSERTION_ALG ||
    header.typ !== WORKER_ASSERTION_TYP ||
    typeof header.kid !== 'string'
  )
    throw new WorkerAssertionError('bad_header');
  const raw = options.keyring.keys.get(header.kid);
  if (raw === undefined) throw new WorkerAssertionError('unknown_kid');
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, workerAssertionKey(raw), {
      algorithms: [WORKER_ASSERTION_ALG],
    }));
  } catch {
    throw new WorkerAssertionError('bad_signature');
  }
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    throw new WorkerAssertionError('malformed');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    throw new WorkerAssertionError('malformed');
  for (const name of ['iss', 'aud', 'sub', 'jti'] as const) {
    const v = claims[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > 2048)
      throw new WorkerAssertionError('malformed');
  }
  for (const name of ['iat', 'exp'] as const) {
    const v = claims[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new WorkerAssertionError('malformed');
  }
  if (claims.aud !== options.audience) throw new WorkerAssertionError('wrong_audience');
  const iat = claims.iat as number;
  const exp = claims.exp as number;
  if (exp - iat > WORKER_ASSERTION_MAX_LIFETIME_SECONDS) throw new WorkerAssertionError('lifetime_too_long');
  const now = options.now ?? Date.now() / 1000;
  if (exp <= now) throw new WorkerAssertionError('expired');
  if (iat > now + WORKER_ASSERTION_CLOCK_SKEW_SECONDS) throw new WorkerAssertionError('not_yet_valid');
  return {
    iss: claims.iss as string,
    aud: claims.aud as string,
    sub: claims.sub as string,
    iat,
    exp,
    jti: claims.jti as string,
  };
}
