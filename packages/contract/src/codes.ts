/** Every reason an opener rejects sealed metadata (docs/api.md §3); shared with the Python opener. */
export const DISPATCH_ERROR_CODES = [
  'unknown_kid',
  'bad_header',
  'decrypt_failed',
  'wrong_audience',
  'wrong_room',
  'expired',
  'malformed',
] as const;

/** One of {@link DISPATCH_ERROR_CODES}. */
export type DispatchErrorCode = (typeof DISPATCH_ERROR_CODES)[number];

/**
 * The code of a refused MCP URL, on both sides: the admin API's 400 problem (docs/api.md §6) and
 * the worker's connect-time refusal (docs/api.md §3).
 */
export const UNSAFE_MCP_URL_CODE = 'unsafe_mcp_url';
