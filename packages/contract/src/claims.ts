import { DISPATCH_ISSUER, type DispatchClaims, type McpServerGrant } from './format.js';
import { isMcpTransport } from './ids.js';

/** Why a value is not an {@link McpServerGrant}: the field at fault (none: not an object) and how. */
export interface GrantProblem {
  field: 'name' | 'url' | 'transport' | 'headers' | 'allowed_tools' | undefined;
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
  const { name, url, transport, headers, allowed_tools: allowedTools } = value;
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
  // Object.fromEntries defines own properties, so a header named "__proto__" stays a header.
  const grant: McpServerGrant = {
    name,
    url,
    transport,
    headers: Object.fromEntries(Object.entries(headers)) as Record<string, string>,
  };
  if (allowedTools !== undefined) grant.allowed_tools = [...(allowedTools as string[])];
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
 * Parses the claims of opened dispatch metadata: a JSON object with `iss` = `livekit-mcp-dispatch`,
 * non-empty strings `aud`, `sub`, `tid`, `room`, `pid`, `jti`, non-negative numbers `iat` and
 * `exp`, an optional string `client` and an array of {@link parseMcpServerGrant} servers.
 *
 * @throws InvalidClaimsError naming the first claim at fault.
 */
export function parseDispatchClaims(text: string): DispatchClaims {
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
  for (const name of ['iat', 'exp'] as const) {
    const v = value[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalid(name);
  }
  if (value.client !== undefined && typeof value.client !== 'string') throw invalid('client');
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
    ...(value.client === undefined ? {} : { client: value.client as string }),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
