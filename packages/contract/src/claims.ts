import {
  DISPATCH_ISSUER,
  type DispatchClaims,
  MAX_CLAIMS_DEPTH,
  MAX_NUMERIC_DATE,
  MCP_SERVER_AUTHS,
  type McpServerAuth,
  type McpServerGrant,
  UNAVAILABLE_SERVER_CODES,
  type UnavailableServer,
} from './format.js';
import { isMcpTransport } from './ids.js';

/** Why a value is not an {@link McpServerGrant}: the field at fault (none: not an object) and how. */
export interface GrantProblem {
  field: 'name' | 'url' | 'transport' | 'headers' | 'allowed_tools' | 'auth' | 'expires_at' | undefined;
  message: string;
}

/**
 * Reads one MCP server of the `mcp_servers` claim (docs/api.md §3): non-empty `name` and `url`, a
 * known `transport`, `headers` mapping names to strings, optional `allowed_tools` strings. Returns
 * a fresh copy (a header named `__proto__` stays a header), or the problem. Never quotes a value.
 */
export function parseMcpServerGrant(value: unknown): { grant: McpServerGrant } | { problem: GrantProblem } {
  const problem = (field: GrantProblem['field'], message: string) => ({ problem: { field, message } });
  if (!isPlainObject(value)) return problem(undefined, 'must be an object');
  const { name, url, transport, headers, allowed_tools: allowedTools, auth, expires_at: expiresAt } = value;
  if (typeof name !== 'string' || name.length === 0) return problem('name', 'is invalid');
  if (typeof url !== 'string' || url.length === 0) return problem('url', 'is invalid');
  if (!isMcpTransport(transport)) return problem('transport', 'is invalid');
  if (!isPlainObject(headers) || !Object.values(headers).every((v) => typeof v === 'string')) {
    return problem('headers', 'must map names to strings');
  }
  if (
    allowedTools !== undefined &&
    !(Array.isArray(allowedTools) && allowedTools.every((t) => typeof t === 'string'))
  ) {
    return problem('allowed_tools', 'must be strings');
  }
  if (auth !== undefined && !MCP_SERVER_AUTHS.includes(auth as McpServerAuth))
    return problem('auth', 'is invalid');
  if (expiresAt !== undefined && !isNumericDate(expiresAt)) return problem('expires_at', 'is invalid');
  // Object.fromEntries defines own properties, so a header named "__proto__" stays a header.
  const grant: McpServerGrant = {
    name,
    url,
    transport,
    headers: Object.fromEntries(Object.entries(headers)) as Record<string, string>,
  };
  if (allowedTools !== undefined) grant.allowed_tools = [...(allowedTools as string[])];
  if (auth !== undefined) grant.auth = auth as McpServerAuth;
  if (expiresAt !== undefined) grant.expires_at = expiresAt as number;
  return { grant };
}

/**
 * The claims set is not the contract's. The message is fixed text naming at most the claim, never
 * its value.
 */
export class InvalidClaimsError extends Error {
  /** The claim at fault, when the set is an object but one claim is wrong. */
  readonly claim: string | undefined;
  constructor(message: string, claim?: string) {
    super(message);
    this.name = 'InvalidClaimsError';
    this.claim = claim;
  }
}

/**
 * Parses the claims of opened dispatch metadata: a JSON object nested at most
 * {@link MAX_CLAIMS_DEPTH} deep with `iss` = `livekit-mcp-dispatch`, non-empty strings `aud`,
 * `sub`, `tid`, `room`, `pid`, `jti`, NumericDates `iat` and `exp` (and `nbf` when present: finite
 * numbers from 0 to {@link MAX_NUMERIC_DATE}), an optional string `client` and an array of
 * {@link parseMcpServerGrant} servers.
 *
 * @throws InvalidClaimsError naming the first claim at fault.
 */
export function parseDispatchClaims(text: string): DispatchClaims {
  if (jsonNestingDepth(text, MAX_CLAIMS_DEPTH) > MAX_CLAIMS_DEPTH)
    throw new InvalidClaimsError('Sealed dispatch metadata claims are nested too deeply.');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidClaimsError('Sealed dispatch metadata claims are not JSON.');
  }
  if (!isPlainObject(value))
    throw new InvalidClaimsError('Sealed dispatch metadata claims are not a JSON object.');
  const invalid = (name: string) =>
    new InvalidClaimsError(`Sealed dispatch metadata claim "${name}" is missing or invalid.`, name);
  if (value.iss !== DISPATCH_ISSUER) throw invalid('iss');
  for (const name of ['aud', 'sub', 'tid', 'room', 'pid', 'jti'] as const) {
    const v = value[name];
    if (typeof v !== 'string' || v.length === 0) throw invalid(name);
  }
  for (const name of ['iat', 'exp'] as const) if (!isNumericDate(value[name])) throw invalid(name);
  if (value.nbf !== undefined && !isNumericDate(value.nbf)) throw invalid('nbf');
  if (value.client !== undefined && typeof value.client !== 'string') throw invalid('client');
  for (const name of ['sid', 'refresh_url'] as const) {
    const v = value[name];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw invalid(name);
  }
  if (value.refresh_at !== undefined && !isNumericDate(value.refresh_at)) throw invalid('refresh_at');
  const servers = value.mcp_servers;
  if (!Array.isArray(servers)) throw invalid('mcp_servers');
  const mcpServers: McpServerGrant[] = [];
  for (const server of servers) {
    const parsed = parseMcpServerGrant(server);
    if (!('grant' in parsed)) throw invalid('mcp_servers');
    mcpServers.push(parsed.grant);
  }
  return {
    iss: DISPATCH_ISSUER,
    aud: value.aud as string,
    sub: value.sub as string,
    tid: value.tid as string,
    room: value.room as string,
    pid: value.pid as string,
    iat: value.iat as number,
    exp: value.exp as number,
    jti: value.jti as string,
    mcp_servers: mcpServers,
    ...(value.nbf === undefined ? {} : { nbf: value.nbf as number }),
    ...(value.client === undefined ? {} : { client: value.client as string }),
    ...(value.sid === undefined ? {} : { sid: value.sid as string }),
    ...(value.refresh_at === undefined ? {} : { refresh_at: value.refresh_at as number }),
    ...(value.refresh_url === undefined ? {} : { refresh_url: value.refresh_url as string }),
    ...unavailableOf(value.unavailable),
  };
}

/**
 * The `unavailable` claim (docs/api.md §9) when it is a list of `{name, status, code}` the contract
 * knows, else nothing. Never a refusal: the openers' verdicts do not depend on it, so the Python
 * and TypeScript openers still agree on every byte string.
 */
function unavailableOf(value: unknown): { unavailable?: UnavailableServer[] } {
  if (!Array.isArray(value)) return {};
  const out: UnavailableServer[] = [];
  for (const entry of value) {
    if (
      !isPlainObject(entry) ||
      typeof entry.name !== 'string' ||
      !['not_connected', 'needs_reauth', 'unavailable'].includes(entry.status as string) ||
      !(UNAVAILABLE_SERVER_CODES as readonly unknown[]).includes(entry.code)
    )
      return {};
    out.push({
      name: entry.name,
      status: entry.status as UnavailableServer['status'],
      code: entry.code as UnavailableServer['code'],
    });
  }
  return { unavailable: out };
}

/** A NumericDate (RFC 7519 §2) both openers can represent: a number from 0 to {@link MAX_NUMERIC_DATE}. */
function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_NUMERIC_DATE;
}

/**
 * How deeply arrays and objects nest in JSON `text`, counting brackets outside strings; stops
 * counting once past `limit`. Exact for valid JSON; for any text it is the same number the Python
 * opener's `_json_nesting_depth` gives, so the two refuse the same bytes.
 */
export function jsonNestingDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) break;
    } else if (c === ']' || c === '}') depth--;
  }
  return deepest;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
