import type { Context, Hono } from 'hono';
import { DomainError } from '../core/errors.js';

/** HTTP status for each stable error code of the contract. Unknown codes are 500. */
const STATUS: Record<string, number> = {
  field_not_allowed: 400,
  unsafe_mcp_url: 400,
  unsafe_oauth_url: 400,
  bad_request: 400,
  unauthenticated: 401,
  invalid_signature: 401,
  invalid_worker_assertion: 401,
  invalid_metadata: 401,
  forbidden: 403,
  identity_mismatch: 403,
  tenant_mismatch: 403,
  agent_not_allowed: 403,
  user_suspended: 403,
  tenant_suspended: 403,
  field_requires_superadmin: 403,
  session_ended: 403,
  oauth_user_mismatch: 403,
  not_found: 404,
  user_not_found: 404,
  tenant_not_found: 404,
  server_not_found: 404,
  method_not_allowed: 405,
  mcp_not_configured: 409,
  mcp_reauth_required: 409,
  idempotency_key_in_flight: 409,
  phone_number_taken: 409,
  sip_trunk_taken: 409,
  tenant_has_users: 409,
  wrong_auth_type: 409,
  oauth_registration_unavailable: 409,
  oauth_issuer_mismatch: 409,
  result_expired: 410,
  already_exists: 412,
  version_conflict: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_request: 422,
  idempotency_key_reused: 422,
  return_to_not_allowed: 422,
  precondition_required: 428,
  quota_exceeded: 429,
  rate_limited: 429,
  internal_error: 500,
  livekit_unavailable: 502,
  oauth_discovery_failed: 502,
  store_unavailable: 503,
  auth_unavailable: 503,
  event_in_progress: 503,
  dispatch_in_progress: 503,
};

const TITLE: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/**
 * Where the webhook answers otherwise than {@link STATUS}: LiveKit retries a delivery answered
 * 5xx, and a LiveKit failure is worth a retry, so 503, not 502.
 */
export const WEBHOOK_STATUS: Readonly<Record<string, number>> = { livekit_unavailable: 503 };

/** The status a code maps to (`overrides` first, e.g. {@link WEBHOOK_STATUS}). */
export function statusFor(code: string, overrides: Readonly<Record<string, number>> = {}): number {
  return overrides[code] ?? STATUS[code] ?? 500;
}

/** The `Retry-After` (seconds) a problem with this code carries, if any. */
export function retryAfterFor(code: string, status = statusFor(code)): string | undefined {
  if (code === 'rate_limited' || code === 'quota_exceeded') return '60';
  if (status === 503 || code === 'idempotency_key_in_flight') return '1';
  return undefined;
}

/** An RFC 9457 problem document with the contract's `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [extra: string]: unknown;
}

/** Builds a problem+json response. `extra` must hold nothing secret. */
export function problem(
  code: string,
  detail: string,
  extra?: Record<string, unknown>,
  headers?: Record<string, string>,
): Response {
  return problemWithStatus(statusFor(code), code, detail, extra, headers);
}

/**
 * A problem+json response with an explicit status, for a caller whose status for a code
 * differs from the table's (the webhook answers LiveKit failures 503 so LiveKit retries).
 */
export function problemWithStatus(
  status: number,
  code: string,
  detail: string,
  extra?: Record<string, unknown>,
  headers?: Record<string, string>,
): Response {
  const body: Problem = {
    type: `https://livekit-mcp-dispatch.dev/problems/${code}`,
    title: TITLE[status] ?? 'Error',
    status,
    code,
    detail,
    ...extra,
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
  });
}

/** Turns a thrown error into problem+json; unknown errors become a bare 500 with no detail. */
export function toProblem(
  err: unknown,
  log?: (message: string, meta: Record<string, unknown>) => void,
): Response {
  if (err instanceof DomainError) {
    const status = statusFor(err.code);
    if (status >= 500) log?.('request failed', { code: err.code, error: err.name });
    const headers: Record<string, string> = {};
    const retryAfter = retryAfterFor(err.code, status);
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    // RFC 9110 §11.6.1: a 401 carries a challenge; the APIs take bearer JWTs (RFC 6750).
    if (err.code === 'unauthenticated' || err.code === 'invalid_worker_assertion') {
      headers['www-authenticate'] = 'Bearer';
    }
    return problem(err.code, err.message, err.details, headers);
  }
  log?.('unhandled error', { error: err instanceof Error ? err.name : typeof err });
  return problem('internal_error', 'An unexpected error occurred.');
}

/** Installs the one error handler and the problem+json 404 on an app. */
export function withProblemHandling<T extends Hono>(
  app: T,
  log?: (message: string, meta: Record<string, unknown>) => void,
): T {
  app.onError((err, _c: Context) => toProblem(err, log));
  app.notFound(() => problem('not_found', 'No such resource.'));
  return app;
}
