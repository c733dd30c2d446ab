import type { McpServerGrant, StoredMcp, TenantRecord, Transport, UserRecord } from './model.js';
import type { SecretBinding, SecretBox } from './sealing.js';

/** Name of the MCP server in a grant when neither the user nor the tenant names it. */
export const DEFAULT_MCP_NAME = 'mcp';
/** Transport when neither the user nor the tenant sets one. */
export const DEFAULT_MCP_TRANSPORT: Transport = 'streamable_http';

/** Most extra headers one MCP configuration may carry. */
export const MAX_MCP_HEADERS = 32;
/** Longest header name and value accepted. */
export const MAX_HEADER_NAME_LENGTH = 128;
export const MAX_HEADER_VALUE_LENGTH = 4096;

// Set by the token, by the HTTP client, or meaningful only hop by hop: a stored header must
// never override them (request smuggling, credential confusion, cookie injection).
const FORBIDDEN_HEADERS = new Set([
  'host',
  'cookie',
  'authorization',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
]);

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible ASCII, space and tab; no CR, LF or NUL (header injection), no leading/trailing space.
const HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/**
 * Why a header name may not be stored for an MCP server, or `null` when it may.
 * Refused: invalid tokens, `Host`, `Cookie`, `Authorization` (the token sets it), the hop-by-hop
 * headers (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
 * `Upgrade`), `Content-Length` and `Expect`.
 */
export function headerNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > MAX_HEADER_NAME_LENGTH) {
    return `must be 1 to ${MAX_HEADER_NAME_LENGTH} characters`;
  }
  if (!HEADER_NAME.test(name)) return 'is not a valid header name';
  const lower = name.toLowerCase();
  if (FORBIDDEN_HEADERS.has(lower) || lower.startsWith('proxy-')) return 'may not be set';
  return null;
}

/** Why a header value may not be stored, or `null`. The value itself is never echoed. */
export function headerValueProblem(value: string): string | null {
  if (value.length > MAX_HEADER_VALUE_LENGTH) return `must be at most ${MAX_HEADER_VALUE_LENGTH} characters`;
  if (!HEADER_VALUE.test(value)) return 'must be printable ASCII without leading or trailing spaces';
  return null;
}

/**
 * Checks a whole headers object: count, names (also case-insensitive duplicates) and values.
 * Returns the problems keyed by header name (names only; never values). Empty when valid.
 */
export function mcpHeadersProblems(headers: Record<string, string>): { name: string; message: string }[] {
  const problems: { name: string; message: string }[] = [];
  const names = Object.keys(headers);
  if (names.length > MAX_MCP_HEADERS) {
    problems.push({ name: '', message: `at most ${MAX_MCP_HEADERS} headers` });
    return problems;
  }
  const seen = new Set<string>();
  for (const name of names) {
    const shown = name.slice(0, MAX_HEADER_NAME_LENGTH);
    const nameProblem = headerNameProblem(name);
    if (nameProblem !== null) {
      problems.push({ name: shown, message: nameProblem });
      continue;
    }
    if (seen.has(name.toLowerCase())) {
      problems.push({ name: shown, message: 'is given twice (names are case-insensitive)' });
      continue;
    }
    seen.add(name.toLowerCase());
    const value = headers[name];
    const valueProblem = typeof value === 'string' ? headerValueProblem(value) : 'must be a string';
    if (valueProblem !== null) problems.push({ name: shown, message: valueProblem });
  }
  return problems;
}

/** The origin (`scheme://host[:port]`) of a URL, or `undefined` when it does not parse. */
export function originOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The slice of a {@link SecretBox} that {@link effectiveMcpConfig} needs. */
export type SecretOpener = Pick<SecretBox, 'open'>;

interface Credentials {
  mcp: StoredMcp;
  binding: Omit<SecretBinding, 'field'>;
}

/**
 * The MCP server a user's dispatch gets, or `null` when neither the user nor the tenant sets a URL.
 *
 * User fields override tenant fields one by one (`url`, `name`, `transport`, `allowed_tools`,
 * the token, the headers), except that a token and headers are only ever sent to the origin they
 * were set for (`credentials_origin`): a user who sets `url` gets none of the tenant's, and a
 * user's token set for the tenant's URL is dropped once that URL moves to another origin.
 * The token becomes `Authorization: Bearer <token>`.
 *
 * @throws SecretBoxError when a stored secret does not open (wrong key, tampered record).
 */
export async function effectiveMcpConfig(
  tenant: TenantRecord,
  user: UserRecord,
  secretBox: SecretOpener,
): Promise<McpServerGrant | null> {
  const t = tenant.mcp ?? {};
  const u = user.mcp ?? {};
  const url = u.url ?? t.url;
  if (url === undefined) return null;
  const origin = originOf(url);

  const userCreds: Credentials = { mcp: u, binding: { tenantId: user.tenant_id, userId: user.user_id } };
  const tenantCreds: Credentials = { mcp: t, binding: { tenantId: tenant.tenant_id, userId: '' } };
  // A user with an own URL never gets the tenant's secrets.
  const sources = u.url !== undefined ? [userCreds] : [userCreds, tenantCreds];
  const appliesHere = (c: Credentials) => origin !== undefined && c.mcp.credentials_origin === origin;

  const tokenSource = sources.find((c) => c.mcp.token_sealed !== undefined && appliesHere(c));
  const headersSource = sources.find((c) => c.mcp.headers_sealed !== undefined && appliesHere(c));

  const headers: Record<string, string> = {};
  if (headersSource !== undefined) {
    const opened = await secretBox.open(headersSource.mcp.headers_sealed!, {
      ...headersSource.binding,
      field: 'headers',
    });
    const parsed: unknown = JSON.parse(opened);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      for (const [name, value] of Object.entries(parsed)) {
        // Re-checked on the way out: a record written by older code must not smuggle a header.
        if (
          typeof value === 'string' &&
          headerNameProblem(name) === null &&
          headerValueProblem(value) === null
        ) {
          headers[name] = value;
        }
      }
    }
  }
  if (tokenSource !== undefined) {
    const token = await secretBox.open(tokenSource.mcp.token_sealed!, {
      ...tokenSource.binding,
      field: 'token',
    });
    headers.Authorization = `Bearer ${token}`;
  }

  const grant: McpServerGrant = {
    name: u.name ?? t.name ?? DEFAULT_MCP_NAME,
    url,
    transport: u.transport ?? t.transport ?? DEFAULT_MCP_TRANSPORT,
    headers,
  };
  const allowedTools = u.allowed_tools ?? t.allowed_tools;
  if (allowedTools !== undefined) grant.allowed_tools = [...allowedTools];
  return grant;
}
