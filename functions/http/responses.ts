import {
  array,
  boolean,
  discriminatedUnion,
  enum as enumOf,
  extend,
  type infer as Infer,
  int,
  literal,
  looseObject,
  nullable,
  optional,
  strictObject,
  string,
  type ZodMiniType,
} from 'zod/mini';

/**
 * The response bodies of the API, defined once: the OpenAPI document is generated from these
 * schemas (functions/openapi/document.ts), and the apps' response builders are typed with
 * their `Infer<>` (functions/admin/views.ts, the session and webhook apps), so a view that
 * drifts from its schema fails `tsc`. The apps import only the types: no zod runs per response.
 */

/** RFC 9457 problem details with a stable `code`. */
export const problemSchema = looseObject({
  type: string(),
  title: string(),
  status: int(),
  code: string(),
  detail: string(),
  errors: optional(array(strictObject({ path: string(), message: string() }))),
  fields: optional(array(string())),
});

/** MCP settings as responses show them: secrets only as `token_set`, fingerprint and header names. */
export const mcpViewSchema = nullable(
  strictObject({
    url: nullable(string()),
    transport: nullable(enumOf(['streamable_http', 'sse'])),
    allowed_tools: nullable(array(string())),
    name: nullable(string()),
    token_set: boolean(),
    token_fingerprint: nullable(string()),
    header_names: array(string()),
  }),
);

const status = enumOf(['active', 'suspended']);

/** A catalog entry's `auth` as responses show it: secrets only as `*_set` and a fingerprint. */
export const catalogAuthViewSchema = discriminatedUnion('type', [
  strictObject({ type: literal('none') }),
  strictObject({ type: literal('static'), token_set: boolean(), token_fingerprint: nullable(string()) }),
  strictObject({ type: literal('user_token') }),
  strictObject({
    type: literal('oauth'),
    client_id: nullable(string()),
    issuer: nullable(string()),
    client_secret_set: boolean(),
    scopes: nullable(array(string())),
  }),
]);

/** One server of a tenant's catalog (`mcp_servers`) as responses show it: header names, never values. */
export const catalogServerViewSchema = strictObject({
  name: string(),
  display_name: nullable(string()),
  description: nullable(string()),
  icon_url: nullable(string()),
  url: string(),
  transport: nullable(enumOf(['streamable_http', 'sse'])),
  allowed_tools: nullable(array(string())),
  header_names: array(string()),
  webhook: boolean(),
  auth: catalogAuthViewSchema,
});

/** A server of a session and its status (docs/api.md §4, §8). */
export const serverStateSchema = strictObject({
  name: string(),
  status: enumOf(['ready', 'not_connected', 'needs_reauth', 'unavailable']),
  reason: optional(enumOf(['invalid_grant', 'expired', 'resource_changed', 'insufficient_scope'])),
});

/** A tenant as the admin API shows it; `ended_sessions` when the write ended any. */
export const tenantViewSchema = strictObject({
  tenant_id: string(),
  name: string(),
  mcp: mcpViewSchema,
  mcp_servers: array(catalogServerViewSchema),
  oauth_return_urls: array(string()),
  dispatch_policy: enumOf(['per_room', 'per_participant']),
  agent_names: array(string()),
  max_concurrent_sessions: nullable(int()),
  status,
  webhook_dispatch: boolean(),
  sip_trunk_ids: array(string()),
  version: int(),
  created_at: string(),
  updated_at: string(),
  ended_sessions: optional(int()),
});

/** A user as the admin API shows it; `ended_sessions` when the write ended any. */
export const userViewSchema = strictObject({
  tenant_id: string(),
  user_id: string(),
  display_name: nullable(string()),
  phone_numbers: array(string()),
  mcp: mcpViewSchema,
  status,
  version: int(),
  created_at: string(),
  updated_at: string(),
  ended_sessions: optional(int()),
});

/** The answer of a revoke: the suspended user and how many sessions ended. */
export const revokedViewSchema = extend(userViewSchema, { ended_sessions: int() });

/** An audit entry. */
export const auditViewSchema = strictObject({
  target: string(),
  version: int(),
  action: enumOf(['create', 'update', 'delete', 'revoke']),
  actor: string(),
  changed_fields: array(string()),
  old_token_fingerprint: nullable(string()),
  new_token_fingerprint: nullable(string()),
  at: string(),
});

/** A session as the admin API lists it. */
export const sessionViewSchema = strictObject({
  room_name: string(),
  user_id: string(),
  participant_identity: string(),
  agent_name: string(),
  dispatch_id: nullable(string()),
  mode: enumOf(['api', 'token']),
  origin: enumOf(['session', 'webhook']),
  status: enumOf(['active', 'ended']),
  created_at: string(),
  ended_at: nullable(string()),
  duration_seconds: nullable(int()),
});

/** One page of a list. */
export const pageSchema = <T extends ZodMiniType>(item: T) =>
  strictObject({ items: array(item), next_cursor: nullable(string()) });

/** The 201 of `POST /v1/sessions`. */
export const sessionResponseSchema = strictObject({
  server_url: string(),
  participant_token: string(),
  room_name: string(),
  participant_identity: string(),
  agent_name: string(),
  dispatch_id: nullable(string()),
  expires_at: string(),
  mcp_servers: array(serverStateSchema),
});

/** The 409 `mcp_reauth_required` of `POST /v1/sessions`: a problem with every server's status. */
export const reauthProblemSchema = extend(problemSchema, { mcp_servers: array(serverStateSchema) });

/** The 200 of `POST /v1/livekit/webhook`. */
export const webhookResponseSchema = strictObject({
  ok: literal(true),
  action: enumOf([
    'dispatched',
    'already_dispatched',
    'duplicate_event',
    'ended',
    'ignored',
    'quota_exceeded',
  ]),
});

/**
 * The 202 of bulk work that ran out of time (a `?cascade=true` delete, a revoke, a suspension, a
 * user delete): what this request did; repeating it continues.
 */
export const cascadeProgressSchema = strictObject({
  status: literal('in_progress'),
  deleted_users: int(),
  ended_sessions: int(),
  detail: string(),
});

/** A tenant response body. */
export type TenantView = Infer<typeof tenantViewSchema>;
/** A user response body. */
export type UserView = Infer<typeof userViewSchema>;
/** A revoke response body. */
export type RevokedView = Infer<typeof revokedViewSchema>;
/** An audit list item. */
export type AuditView = Infer<typeof auditViewSchema>;
/** A session list item. */
export type SessionView = Infer<typeof sessionViewSchema>;
/** A list page of `V`. */
export type PageView<V> = { items: V[]; next_cursor: string | null };
/** The session endpoint's 201 body. */
export type SessionResponse = Infer<typeof sessionResponseSchema>;
/** The webhook's 200 body. */
export type WebhookResponse = Infer<typeof webhookResponseSchema>;
/** A cascade delete's 202 body. */
export type CascadeProgress = Infer<typeof cascadeProgressSchema>;
