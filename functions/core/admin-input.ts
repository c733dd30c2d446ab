import { E164 } from '@livekit-mcp-dispatch/contract';
import {
  array,
  boolean,
  enum as enumOf,
  type infer as Infer,
  int,
  looseObject,
  maximum,
  maxLength,
  minimum,
  nullable,
  optional,
  regex,
  strictObject,
  string,
} from 'zod/mini';
import { catalogServersSchema, oauthReturnUrlsSchema } from './catalog-input.js';
import { bounded, mcpFields, printable } from './mcp-input.js';
import { MAX_MCP_URL_LENGTH } from './url-guard.js';

// The header rule and the other per-server input rules live in mcp-input.ts (shared with the
// catalog); re-exported for the callers that import them from here.
export {
  headerNameProblem,
  headerValueProblem,
  isPrototypeKey,
  MAX_HEADER_NAME_LENGTH,
  MAX_HEADER_VALUE_LENGTH,
  MAX_MCP_HEADERS,
  mcpHeadersProblems,
  PRINTABLE,
} from './mcp-input.js';

const statusSchema = enumOf(['active', 'suspended']);

const tenantMcpSchema = strictObject({ url: bounded(1, MAX_MCP_URL_LENGTH), ...mcpFields });
/** A user's MCP settings may leave out `url` to use the tenant's server with the user's own token. */
const userMcpSchema = strictObject({ url: optional(bounded(1, MAX_MCP_URL_LENGTH)), ...mcpFields });

/** Body of `PUT /v1/admin/tenants/{tenantId}` (also the OpenAPI request schema). */
export const tenantBodySchema = strictObject({
  name: printable(200),
  mcp: optional(nullable(tenantMcpSchema)),
  mcp_servers: optional(nullable(catalogServersSchema)),
  oauth_return_urls: optional(nullable(oauthReturnUrlsSchema)),
  dispatch_policy: optional(enumOf(['per_room', 'per_participant'])),
  agent_names: optional(
    array(
      string().check(regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be 1-128 characters [A-Za-z0-9_.-]')),
    ).check(maxLength(32)),
  ),
  max_concurrent_sessions: optional(nullable(int().check(minimum(1), maximum(100_000)))),
  status: optional(statusSchema),
  webhook_dispatch: optional(boolean()),
  sip_trunk_ids: optional(
    array(string().check(regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1-128 characters [A-Za-z0-9_-]'))).check(
      maxLength(64),
    ),
  ),
});

/** Body of `PUT /v1/admin/tenants/{tenantId}/users/{userId}` (also the OpenAPI request schema). */
export const userBodySchema = strictObject({
  display_name: optional(nullable(printable(200))),
  phone_numbers: optional(
    array(string().check(regex(E164, 'must be an E.164 number (+ and 2-15 digits)'))).check(maxLength(10)),
  ),
  mcp: optional(nullable(userMcpSchema)),
  status: optional(statusSchema),
});

/** Query of the admin list routes (also the OpenAPI parameters). */
export const listQuerySchema = strictObject({
  limit: optional(string().check(regex(/^(100|[1-9][0-9]?)$/, 'must be an integer from 1 to 100'))),
  cursor: optional(bounded(1, 2048)),
});

/** Query of `GET /v1/admin/tenants/{tenantId}/connections`: a list query, optionally one status. */
export const tenantConnectionsQuerySchema = strictObject({
  ...listQuerySchema.shape,
  status: optional(enumOf(['connected', 'pending', 'needs_reauth'])),
});

/** Query of `DELETE /v1/admin/tenants/{tenantId}`: `cascade` is `true` or `false`, nothing else. */
export const deleteTenantQuerySchema = looseObject({ cascade: optional(enumOf(['true', 'false'])) });

/** A validated tenant PUT body. */
export type TenantBody = Infer<typeof tenantBodySchema>;
/** A validated user PUT body. */
export type UserBody = Infer<typeof userBodySchema>;
/** The `mcp` of a PUT body (a tenant's always names a `url`). */
export type McpBody = Infer<typeof userMcpSchema>;
