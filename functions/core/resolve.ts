import { headerNameProblem, headerValueProblem } from './mcp-input.js';
import type { McpServerGrant, StoredMcp, TenantRecord, Transport, UserRecord } from './model.js';
import type { SecretBinding, SecretBox } from './sealing.js';

/** Name of the MCP server in a grant when neither the user nor the tenant names it. */
export const DEFAULT_MCP_NAME = 'mcp';
/** Transport when neither the user nor the tenant sets one. */
export const DEFAULT_MCP_TRANSPORT: Transport = 'streamable_http';

// The header rule is the admin API's input rule (functions/core/mcp-input.ts, shared with the
// catalog); re-exported here for the callers that check a stored configuration again. From
// mcp-input.ts itself, not admin-input.ts: the dispatching bundles need no admin body schemas.
export {
  headerNameProblem,
  headerValueProblem,
  MAX_HEADER_NAME_LENGTH,
  MAX_HEADER_VALUE_LENGTH,
  MAX_MCP_HEADERS,
  mcpHeadersProblems,
} from './mcp-input.js';

/** The origin (`scheme://host[:port]`) of a URL, or `undefined` when it does not parse. */
export function originOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * The stored headers JSON, opened, as headers: each re-checked on the way out (a record written by
 * older code must not smuggle a header), non-strings and refused names or values dropped.
 */
export function checkedHeaders(openedJson: string): Record<string, string> {
  const headers: Record<string, string> = {};
  const parsed: unknown = JSON.parse(openedJson);
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    for (const [name, value] of Object.entries(parsed)) {
      if (
        typeof value === 'string' &&
        headerNameProblem(name) === null &&
        headerValueProblem(value) === null
      ) {
        // defineProperty: a header named "__proto__" stays a header, never a prototype.
        Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
      }
    }
  }
  return headers;
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
    Object.assign(headers, checkedHeaders(opened));
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
