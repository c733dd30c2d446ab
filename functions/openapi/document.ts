import {
  array,
  boolean,
  enum as enumOf,
  extend,
  int,
  literal,
  looseObject,
  nullable,
  optional,
  strictObject,
  string,
  toJSONSchema,
  type ZodMiniType,
} from 'zod/mini';
import { listQuerySchema, tenantBodySchema, userBodySchema } from '../admin/app.js';
import { sessionRequest as sessionRequestSchema } from '../session/app.js';

/**
 * The OpenAPI 3.1 document, built at build time (`npm run openapi`, also run by `npm run build`)
 * from the zod/mini schemas the apps validate requests with, so the document cannot drift from
 * the validation. Response schemas are declared here and checked against real responses in
 * test/integration/openapi.test.ts. Nothing here is bundled into a function: the functions
 * serve the generated `openapi.json`.
 */

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: ZodMiniType, io: 'input' | 'output'): JsonSchema {
  // Refinements (byte limits, attribute counts) have no JSON Schema form; the apps still enforce them.
  const out = toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

const problemSchema = looseObject({
  type: string(),
  title: string(),
  status: int(),
  code: string(),
  detail: string(),
  errors: optional(array(strictObject({ path: string(), message: string() }))),
  fields: optional(array(string())),
});

const mcpView = nullable(
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

const tenantView = strictObject({
  tenant_id: string(),
  name: string(),
  mcp: mcpView,
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

const userView = strictObject({
  tenant_id: string(),
  user_id: string(),
  display_name: nullable(string()),
  phone_numbers: array(string()),
  mcp: mcpView,
  status,
  version: int(),
  created_at: string(),
  updated_at: string(),
  ended_sessions: optional(int()),
});

const revokedView = extend(userView, { ended_sessions: int() });

const auditView = strictObject({
  target: string(),
  version: int(),
  action: enumOf(['create', 'update', 'delete', 'revoke']),
  actor: string(),
  changed_fields: array(string()),
  old_token_fingerprint: nullable(string()),
  new_token_fingerprint: nullable(string()),
  at: string(),
});

const sessionView = strictObject({
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

const page = (item: ZodMiniType) => strictObject({ items: array(item), next_cursor: nullable(string()) });

const sessionResponse = strictObject({
  server_url: string(),
  participant_token: string(),
  room_name: string(),
  participant_identity: string(),
  agent_name: string(),
  dispatch_id: nullable(string()),
  expires_at: string(),
});

const webhookResponse = strictObject({
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

const cascadeProgress = strictObject({
  status: literal('in_progress'),
  deleted_users: int(),
  detail: string(),
});

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'string' } },
};
const ETAG = {
  ETag: {
    description: 'The record version, `"<n>"`: send it back as `If-Match`.',
    schema: { type: 'string' },
  },
};

function ok(description: string, schema: string, headers?: Record<string, unknown>) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema: ref(schema) } },
  };
}

/** A problem+json response whose `code` is one of `codes`. */
function problem(description: string, codes: string[], headers?: Record<string, unknown>) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: {
      'application/problem+json': {
        schema: { $ref: '#/components/schemas/Problem', properties: { code: { enum: codes } } },
      },
    },
  };
}

const unexpected = {
  description:
    'Unexpected failure: 500 `internal_error`, 503 `store_unavailable` (DynamoDB failed after retries; retry), ' +
    '502 `livekit_unavailable` where LiveKit is called.',
  content: { 'application/problem+json': { schema: ref('Problem') } },
};

const adminAuth = {
  401: problem('No, bad or expired bearer token.', ['unauthenticated']),
  403: problem('The token has neither `dispatch:admin` (with a tenant) nor `dispatch:superadmin`.', [
    'forbidden',
  ]),
};

const tenantId = {
  name: 'tenantId',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{1,62}$' },
};
const userId = {
  name: 'userId',
  in: 'path',
  required: true,
  description: "The issuer's `sub` of the user (1-255 printable characters), URL-encoded.",
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  description: 'The version to replace, `"<n>"` from the `ETag`. A write to an existing record needs it.',
  schema: { type: 'string' },
};
const ifNoneMatch = {
  name: 'If-None-Match',
  in: 'header',
  description: '`*`: create only, never replace.',
  schema: { type: 'string', enum: ['*'] },
};

function listParameters() {
  const query = jsonSchema(listQuerySchema, 'input') as { properties: Record<string, JsonSchema> };
  return [
    {
      name: 'limit',
      in: 'query',
      description: 'Page size, 1-100 (default 50).',
      schema: query.properties.limit,
    },
    {
      name: 'cursor',
      in: 'query',
      description: '`next_cursor` of the previous page (opaque, bound to this list and tenant).',
      schema: query.properties.cursor,
    },
  ];
}

function listOperation(summary: string, operationId: string, schema: string, withTenant: boolean) {
  return {
    get: {
      operationId,
      summary,
      tags: ['admin'],
      security: [{ bearerAuth: [] }],
      parameters: listParameters(),
      responses: {
        200: ok('One page; `next_cursor` is null on the last.', schema),
        ...adminAuth,
        ...(withTenant
          ? { 404: problem("No such tenant, or another tenant's (same answer).", ['tenant_not_found']) }
          : {}),
        422: problem('Invalid `limit` or `cursor`.', ['invalid_request']),
        default: unexpected,
      },
    },
  };
}

const writeProblems = (resource: 'tenant' | 'user') => ({
  400: problem('The MCP URL is not allowed (scheme, port, userinfo or a non-public address).', [
    'unsafe_mcp_url',
  ]),
  ...adminAuth,
  ...(resource === 'tenant'
    ? {
        403: problem('No admin scope, or a tenant admin set a superadmin-only field.', [
          'forbidden',
          'field_requires_superadmin',
        ]),
      }
    : {}),
  404: problem("No such tenant, or another tenant's (same answer).", ['tenant_not_found']),
  409: problem(
    resource === 'tenant'
      ? 'A SIP trunk id is already claimed by another tenant.'
      : 'The user id exists under another tenant, or a phone number belongs to another user.',
    resource === 'tenant' ? ['sip_trunk_taken'] : ['user_id_taken', 'phone_number_taken'],
  ),
  412: problem(
    '`If-Match` names a stale version (or the record is gone); `If-None-Match: *` and it exists.',
    ['version_conflict', 'already_exists'],
  ),
  413: problem('The body is over 64 KiB.', ['payload_too_large']),
  422: problem(
    'The body (or an id, or a precondition header) is invalid; `errors` lists each failing field.',
    ['invalid_request'],
  ),
  428: problem('An update without `If-Match` (or `If-None-Match: *`).', ['precondition_required']),
  default: unexpected,
});

/** The document as it is written to `functions/openapi/openapi.json`. */
export function renderOpenApiJson(version: string): string {
  return `${JSON.stringify(buildOpenApiDocument(version), null, 2)}\n`;
}

/** Builds the OpenAPI 3.1 document. */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const schemas: Record<string, JsonSchema> = {
    Problem: {
      ...jsonSchema(problemSchema, 'output'),
      description:
        'RFC 9457 problem details with a stable `code`. `errors` (422) lists failing fields; `fields` names refused fields.',
    },
    SessionRequest: {
      ...jsonSchema(sessionRequestSchema, 'input'),
      description:
        "What LiveKit client SDKs' `TokenSource.endpoint` sends; every field optional, unknown fields ignored. " +
        '`participant_metadata` and agent `metadata` are at most 4 KiB (UTF-8), at most 32 attributes.',
    },
    SessionResponse: jsonSchema(sessionResponse, 'output'),
    WebhookEvent: {
      type: 'object',
      description:
        "LiveKit's `WebhookEvent` (protojson). Not validated by a schema: the raw body must reach the signature " +
        'check untouched, and is parsed only after it.',
    },
    WebhookResponse: jsonSchema(webhookResponse, 'output'),
    TenantPut: jsonSchema(tenantBodySchema, 'input'),
    UserPut: jsonSchema(userBodySchema, 'input'),
    Tenant: jsonSchema(tenantView, 'output'),
    User: jsonSchema(userView, 'output'),
    RevokedUser: jsonSchema(revokedView, 'output'),
    TenantPage: jsonSchema(page(tenantView), 'output'),
    UserPage: jsonSchema(page(userView), 'output'),
    AuditPage: jsonSchema(page(auditView), 'output'),
    SessionPage: jsonSchema(page(sessionView), 'output'),
    CascadeProgress: jsonSchema(cascadeProgress, 'output'),
  };

  const paths = {
    '/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document.',
        tags: ['meta'],
        security: [],
        responses: {
          200: {
            description: 'The OpenAPI 3.1 document.',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
        },
      },
    },
    '/v1/sessions': {
      post: {
        operationId: 'startSession',
        summary: 'Start a session: a participant token for a new room, and the user’s agent dispatched.',
        description:
          'A LiveKit token endpoint (`TokenSource.endpoint`): the server names the room and dispatches the agent ' +
          'with the user’s sealed MCP configuration. A repeat with the same `Idempotency-Key` within 10 minutes ' +
          'returns the same room and dispatch with a fresh token.',
        tags: ['session'],
        security: [{ bearerAuth: [] }],
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            description: '1-255 visible ASCII characters.',
            schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
          },
        ],
        requestBody: {
          required: false,
          content: { 'application/json': { schema: ref('SessionRequest') } },
        },
        responses: {
          201: ok(
            'The session: where to connect, the participant token and the dispatch.',
            'SessionResponse',
          ),
          400: problem('`room_name` given, or an `lk.`/`sip.` attribute key.', ['field_not_allowed']),
          401: problem('No, bad, expired or foreign JWT.', ['unauthenticated']),
          403: problem('The caller may not start this session.', [
            'identity_mismatch',
            'tenant_mismatch',
            'agent_not_allowed',
            'user_suspended',
            'tenant_suspended',
          ]),
          404: problem('No user record for the JWT `sub`.', ['user_not_found']),
          409: problem(
            'No MCP URL for this user, or the same `Idempotency-Key` is still being processed (retry).',
            ['mcp_not_configured', 'idempotency_key_in_flight'],
            RETRY_AFTER,
          ),
          413: problem('The body is over 64 KiB.', ['payload_too_large']),
          422: problem('Schema violation, or the same `Idempotency-Key` with another body.', [
            'invalid_request',
            'idempotency_key_reused',
          ]),
          429: problem(
            'The tenant’s concurrent sessions are all taken, or the user’s per-minute rate.',
            ['quota_exceeded', 'rate_limited'],
            RETRY_AFTER,
          ),
          502: problem('LiveKit failed or timed out; nothing was left behind.', ['livekit_unavailable']),
          503: problem(
            'DynamoDB failed after retries, or the dispatch is still being made; retry.',
            ['store_unavailable', 'dispatch_in_progress'],
            RETRY_AFTER,
          ),
          default: unexpected,
        },
      },
    },
    '/v1/livekit/webhook': {
      post: {
        operationId: 'livekitWebhook',
        summary:
          'LiveKit webhook target: dispatches on `participant_joined`, ends sessions on `room_finished`.',
        description:
          'The `Authorization` header is LiveKit’s signed JWT (no `Bearer`), checked against the raw body with ' +
          '`WebhookReceiver` before anything is parsed, read or written. Each event id is processed at most once.',
        tags: ['webhook'],
        security: [{ livekitWebhook: [] }],
        requestBody: {
          required: true,
          content: {
            'application/webhook+json': { schema: ref('WebhookEvent') },
            'application/json': { schema: ref('WebhookEvent') },
          },
        },
        responses: {
          200: ok('The event was handled (or deliberately ignored).', 'WebhookResponse'),
          401: problem('Missing or invalid signature; nothing was done.', ['invalid_signature']),
          413: problem('The body is over 1 MiB.', ['payload_too_large']),
          503: problem(
            'A retry can help: the event is being processed, LiveKit or DynamoDB failed.',
            ['event_in_progress', 'dispatch_in_progress', 'livekit_unavailable', 'store_unavailable'],
            RETRY_AFTER,
          ),
          default: unexpected,
        },
      },
    },
    '/v1/admin/tenants': listOperation('List tenants (superadmin).', 'listTenants', 'TenantPage', false),
    '/v1/admin/tenants/{tenantId}': {
      parameters: [tenantId],
      get: {
        operationId: 'getTenant',
        summary: 'Read a tenant. Secrets show as `token_set`, `token_fingerprint` and `header_names`.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          200: ok('The tenant.', 'Tenant', ETAG),
          ...adminAuth,
          404: problem("No such tenant, or another tenant's (same answer).", ['tenant_not_found']),
          default: unexpected,
        },
      },
      put: {
        operationId: 'putTenant',
        summary: 'Create (superadmin) or replace a tenant.',
        description:
          'Replaces the record, except write-only secrets: an omitted `mcp.token`/`mcp.headers` is kept, `null` ' +
          'clears it; a kept secret never follows the URL to another origin. An omitted `status` keeps the ' +
          'current one. Setting `status: suspended` ends the tenant’s live sessions (`ended_sessions`).',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [ifMatch, ifNoneMatch],
        requestBody: { required: true, content: { 'application/json': { schema: ref('TenantPut') } } },
        responses: {
          200: ok('Replaced.', 'Tenant', ETAG),
          201: ok('Created.', 'Tenant', {
            ...ETAG,
            Location: { description: 'The tenant’s path.', schema: { type: 'string' } },
          }),
          ...writeProblems('tenant'),
        },
      },
      delete: {
        operationId: 'deleteTenant',
        summary: 'Delete a tenant; one with users only with `?cascade=true`.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [
          ifMatch,
          {
            name: 'cascade',
            in: 'query',
            description: '`true`: also delete its users (their live sessions end first).',
            schema: { type: 'string', enum: ['true', 'false'] },
          },
        ],
        responses: {
          202: ok('A cascade ran out of time for this request; repeat it to continue.', 'CascadeProgress'),
          204: { description: 'Deleted.' },
          ...adminAuth,
          404: problem("No such tenant, or another tenant's (same answer).", ['tenant_not_found']),
          409: problem('The tenant has users and `cascade` is not `true`.', ['tenant_has_users']),
          412: problem('`If-Match` names a stale version.', ['version_conflict']),
          default: unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/users': {
      parameters: [tenantId],
      ...listOperation('List the tenant’s users.', 'listUsers', 'UserPage', true),
    },
    '/v1/admin/tenants/{tenantId}/users/{userId}': {
      parameters: [tenantId, userId],
      get: {
        operationId: 'getUser',
        summary: 'Read a user.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          200: ok('The user.', 'User', ETAG),
          ...adminAuth,
          404: problem('No such user in this tenant (or no such tenant).', [
            'user_not_found',
            'tenant_not_found',
          ]),
          default: unexpected,
        },
      },
      put: {
        operationId: 'putUser',
        summary: 'Create or replace a user.',
        description:
          'A user’s `mcp` overrides the tenant’s field by field; a user who sets `url` gets no tenant token. ' +
          'Write-only secrets and `status` behave as for tenants; `status: suspended` ends the user’s sessions.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [ifMatch, ifNoneMatch],
        requestBody: { required: true, content: { 'application/json': { schema: ref('UserPut') } } },
        responses: {
          200: ok('Replaced.', 'User', ETAG),
          201: ok('Created.', 'User', {
            ...ETAG,
            Location: { description: 'The user’s path.', schema: { type: 'string' } },
          }),
          ...writeProblems('user'),
        },
      },
      delete: {
        operationId: 'deleteUser',
        summary: 'Delete a user (their live sessions end first).',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [ifMatch],
        responses: {
          204: { description: 'Deleted.' },
          ...adminAuth,
          404: problem('No such user in this tenant (or no such tenant).', [
            'user_not_found',
            'tenant_not_found',
          ]),
          412: problem('`If-Match` names a stale version.', ['version_conflict']),
          default: unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/users/{userId}/revoke': {
      parameters: [tenantId, userId],
      post: {
        operationId: 'revokeUser',
        summary: 'Suspend the user and end their live sessions now (their LiveKit rooms are deleted).',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          200: ok('Suspended; `ended_sessions` says how many sessions ended.', 'RevokedUser', ETAG),
          ...adminAuth,
          404: problem('No such user in this tenant (or no such tenant).', [
            'user_not_found',
            'tenant_not_found',
          ]),
          default: unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/audit': {
      parameters: [tenantId],
      ...listOperation('Who changed what, when (secret values never shown).', 'listAudit', 'AuditPage', true),
    },
    '/v1/admin/tenants/{tenantId}/sessions': {
      parameters: [tenantId],
      ...listOperation('Recent sessions, dispatch ids and durations.', 'listSessions', 'SessionPage', true),
    },
  };

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'livekit-mcp-dispatch',
      version,
      description:
        'Per-user MCP servers for LiveKit agents: a session endpoint for apps, a LiveKit webhook target and an ' +
        'admin API. Errors are RFC 9457 `application/problem+json` with a stable `code`.',
    },
    tags: [
      { name: 'session', description: 'Mobile and web apps (LiveKit `TokenSource.endpoint`).' },
      { name: 'webhook', description: 'LiveKit webhooks.' },
      { name: 'admin', description: 'Tenants, users, audit and sessions.' },
      { name: 'meta', description: 'This document.' },
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'A JWT from the configured issuer (`AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`). App users: `sub` and ' +
            'the tenant claim. Admins: scope `dispatch:admin` (space-separated `scope` or `scp` array) with the tenant ' +
            'claim, or `dispatch:superadmin`.',
        },
        livekitWebhook: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description:
            'LiveKit’s webhook JWT (signed with the API secret, carrying the body’s sha256); no `Bearer`.',
        },
      },
    },
  };
}
