/**
 * The id rules of the API (docs/api.md §2, §4, §6): what a tenant id, a user id, a phone number,
 * an `Idempotency-Key` and an MCP transport may be.
 */

/** Tenant ids: 2-63 characters, lowercase letters, digits and `-`, not starting with `-`. */
export const TENANT_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;

/** Longest user id, in code points. */
export const MAX_USER_ID = 255;

/**
 * User ids are the issuer's `sub`: printable characters, so no control characters, no spaces
 * or other separators (`\p{Z}`: U+0020, U+00A0, U+2028, …) and no lone surrogates (length
 * checked by {@link isUserId}).
 */
export const USER_ID = /^[^\p{Cc}\p{Cs}\p{Z}]+$/u;

/**
 * {@link USER_ID} spelled without Unicode property classes, so that ECMAScript and Python's `re`
 * (the OpenAPI document's validators and fuzzers) read it alike: no C0/C1 control, no space or
 * other `\p{Z}` separator. (Lone surrogates, which JSON text cannot carry, are refused by
 * {@link isUserId} only.)
 */
export const USER_ID_PATTERN =
  '^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+$';

/** Phone numbers: E.164, `+` and 2-15 digits. */
export const E164 = /^\+[1-9][0-9]{1,14}$/;

/** `Idempotency-Key` values: 1-255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** MCP transports a grant may name. */
export const MCP_TRANSPORTS = ['streamable_http', 'sse'] as const;

/** One of {@link MCP_TRANSPORTS}. */
export type McpTransport = (typeof MCP_TRANSPORTS)[number];

/** True when `value` is a valid tenant id. */
export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && TENANT_ID.test(value);
}

/** True when `value` is a valid user id: 1-255 code points, none a control character or a space. */
export function isUserId(value: unknown): value is string {
  return typeof value === 'string' && [...value].length <= MAX_USER_ID && USER_ID.test(value);
}

/** True when `value` names one of {@link MCP_TRANSPORTS}. */
export function isMcpTransport(value: unknown): value is McpTransport {
  return typeof value === 'string' && (MCP_TRANSPORTS as readonly string[]).includes(value);
}
