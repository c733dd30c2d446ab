import { USER_ID_PATTERN } from '@livekit-mcp-dispatch/contract';
import { toJSONSchema, type ZodMiniType } from 'zod/mini';
import { listQuerySchema, tenantBodySchema, userBodySchema } from '../admin/app.js';
import { deleteTenantQuerySchema } from '../core/admin-input.js';
import { credentialsRequest } from '../credentials/app.js';
import {
  adminConnectionListSchema,
  authorizeResponseSchema,
  clientJwksSchema,
  clientMetadataSchema,
  connectionListSchema,
  connectionTestSchema,
  connectionViewSchema,
  discoveryViewSchema,
} from '../http/connection-responses.js';
import { retryAfterFor, statusFor, WEBHOOK_STATUS } from '../http/problem.js';
import {
  auditViewSchema,
  cascadeProgressSchema,
  pageSchema,
  problemSchema,
  revokedViewSchema,
  serverStateSchema,
  sessionResponseSchema,
  sessionViewSchema,
  tenantViewSchema,
  userViewSchema,
  webhookResponseSchema,
} from '../http/responses.js';
import {
  MAX_ATTRIBUTES,
  MAX_METADATA_BYTES,
  RESERVED_ATTRIBUTE_PREFIXES,
  sessionRequest as sessionRequestSchema,
} from '../session/app.js';
import { authorizeRequest, completeRequest, userTokenRequest } from '../session/connections.js';
import { adminConnectionPaths } from './admin-connections.js';
import { connectionPaths } from './connections.js';

/**
 * The OpenAPI 3.1 document, built at build time (`npm run openapi`, also run by `npm run build`)
 * from the zod/mini schemas the apps validate requests with and type their responses by
 * (functions/http/responses.ts), with each problem's status from the one code→status map
 * (functions/http/problem.ts), so the document cannot drift from the apps. Real responses are
 * checked against it in test/integration/openapi.test.ts, its operations against the route list
 * in test/contract/routes.test.ts, and scripts/schemathesis.sh fuzzes `npm start` with it.
 * Nothing here is bundled into a function: the functions serve the generated `openapi.json`.
 */

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: ZodMiniType, io: 'input' | 'output'): JsonSchema {
  // Refinements (byte limits, attribute counts) have no JSON Schema form: where the API enforces
  // one, sessionRequestJsonSchema() below states it in JSON Schema terms.
  const out = toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

/**
 * The session request as the API enforces it: `room_name` only absent, null or empty (anything
 * else is 400 `field_not_allowed`), at most 32 attributes with no reserved key prefix, and the
 * 4 KiB limits (in UTF-8 bytes, so at most 4096 characters).
 */
function sessionRequestJsonSchema(): JsonSchema {
  const out = jsonSchema(sessionRequestSchema, 'input') as JsonSchema & {
    properties: Record<string, JsonSchema & { anyOf?: JsonSchema[] }>;
  };
  const props = out.properties;
  props.room_name = {
    enum: ['', null],
    description:
      'Not the client’s to choose: the server names rooms. Any other value is refused with 400 `field_not_allowed`.',
  };
  const reserved = RESERVED_ATTRIBUTE_PREFIXES.map((p) => p.replace('.', '\\.')).join('|');
  const stringOf = (schema: JsonSchema | undefined): JsonSchema | undefined =>
    (schema?.anyOf as JsonSchema[] | undefined)?.find((s) => s.type === 'string' || s.type === 'object');
  Object.assign(stringOf(props.participant_metadata) ?? {}, {
    description: `At most ${MAX_METADATA_BYTES} bytes in UTF-8.`,
  });
  Object.assign(stringOf(props.participant_attributes) ?? {}, {
    maxProperties: MAX_ATTRIBUTES,
    propertyNames: { type: 'string', not: { pattern: `^(${reserved})` } },
    description: `At most ${MAX_ATTRIBUTES} attributes; keys starting ${RESERVED_ATTRIBUTE_PREFIXES.map((p) => `\`${p}\``).join(' or ')} are refused with 400 \`field_not_allowed\`.`,
  });
  return out;
}

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

/** The problem+json response of one status, whose `code` is one of `codes`. */
function problemResponse(description: string, codes: string[], headers?: Record<string, unknown>) {
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

/** Problem codes an operation answers, each with when. */
type Problems = Record<string, string>;

/**
 * The problem responses of an operation, keyed by the status each code has in the one
 * code→status map (`statusFor`, with the app's `overrides`); `Retry-After` where the code carries it.
 */
function problems(codes: Problems, overrides: Readonly<Record<string, number>> = {}) {
  const byStatus = new Map<number, [string, string][]>();
  for (const [code, when] of Object.entries(codes)) {
    const status = statusFor(code, overrides);
    byStatus.set(status, [...(byStatus.get(status) ?? []), [code, when]]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, entries]) => [
      status,
      problemResponse(
        entries.map(([code, when]) => `\`${code}\`: ${when}`).join(' '),
        entries.map(([code]) => code),
        entries.some(([code]) => retryAfterFor(code, status) !== undefined) ? RETRY_AFTER : undefined,
      ),
    ]),
  );
}

const unexpected = {
  description:
    'Unexpected failure: 500 `internal_error`, 503 `store_unavailable` (DynamoDB failed after retries; retry), ' +
    '502 `livekit_unavailable` where LiveKit is called.',
  content: { 'application/problem+json': { schema: ref('Problem') } },
};

const adminAuth: Problems = {
  unauthenticated: 'No, bad or expired bearer token.',
  forbidden: 'The token has neither `dispatch:admin` (with a tenant) nor `dispatch:superadmin`.',
};
const tenantNotFound: Problems = { tenant_not_found: "No such tenant, or another tenant's (same answer)." };
const userNotFound: Problems = {
  user_not_found: 'No such user in this tenant.',
  tenant_not_found: 'No such tenant (or another tenant’s).',
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
  description:
    "The issuer's `sub` of the user (1-255 printable characters: no spaces or controls), URL-encoded. " +
    'The same id in another tenant is another user.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: USER_ID_PATTERN },
};
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  description:
    'The version to replace, `"<n>"` from the `ETag` (or `*`). A write to an existing record needs it; not together with `If-None-Match`.',
  schema: { type: 'string' },
};
const ifNoneMatch = {
  name: 'If-None-Match',
  in: 'header',
  description: '`*`: create only, never replace.',
  schema: { type: 'string', enum: ['*'] },
};

function queryParameter(schema: ZodMiniType, name: string, description: string) {
  const query = jsonSchema(schema, 'input') as { properties: Record<string, JsonSchema> };
  return { name, in: 'query', description, schema: query.properties[name] };
}

function listParameters() {
  return [
    queryParameter(listQuerySchema, 'limit', 'Page size, 1-100 (default 50).'),
    queryParameter(
      listQuerySchema,
      'cursor',
      '`next_cursor` of the previous page (opaque, bound to this list and tenant).',
    ),
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
        ...problems({
          ...adminAuth,
          ...(withTenant ? tenantNotFound : {}),
          invalid_request: 'Invalid `limit` or `cursor`, or an unknown query parameter.',
        }),
        default: unexpected,
      },
    },
  };
}

const writeProblems = (resource: 'tenant' | 'user') => ({
  ...problems({
    unsafe_mcp_url:
      'An MCP URL (`mcp.url` or a catalog `url`) is not allowed (scheme, port, userinfo or a non-public address).',
    ...(resource === 'tenant'
      ? {
          unsafe_oauth_url:
            'A catalog entry’s OAuth `issuer` is not allowed (the same URL rule; no query or fragment).',
        }
      : {}),
    ...adminAuth,
    ...(resource === 'tenant'
      ? { field_requires_superadmin: 'A tenant admin set a superadmin-only field.' }
      : {}),
    ...tenantNotFound,
    ...(resource === 'tenant'
      ? { sip_trunk_taken: 'A SIP trunk id is already claimed by another tenant.' }
      : { phone_number_taken: 'A phone number belongs to another user of the tenant.' }),
    version_conflict: '`If-Match` names a stale version (or the record is gone).',
    already_exists: '`If-None-Match: *` and the record exists.',
    payload_too_large: 'The body is over 64 KiB.',
    invalid_request:
      'The body (or an id, or a precondition header) is invalid; `errors` lists each failing field.',
    precondition_required: 'An update without `If-Match` (or `If-None-Match: *`).',
  }),
  default: unexpected,
});

/** The document as it is written to `functions/openapi/openapi.json`. */
export function renderOpenApiJson(version: string): string {
  return `${JSON.stringify(buildOpenApiDocument(version), null, 2)}\n`;
}

/**
 * Builds the OpenAPI 3.1 document. Its `servers` is the origin it is served from (`/`); a server
 * with `PUBLIC_BASE_URL` serves it with that instead (functions/admin/app.ts).
 */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const schemas: Record<string, JsonSchema> = {
    Problem: {
      ...jsonSchema(problemSchema, 'output'),
      description:
        'RFC 9457 problem details with a stable `code`. `errors` (422) lists failing fields; `fields` names refused fields.',
    },
    SessionRequest: {
      ...sessionRequestJsonSchema(),
      description:
        "What LiveKit client SDKs' `TokenSource.endpoint` sends; every field optional, unknown fields ignored.",
    },
    SessionResponse: jsonSchema(sessionResponseSchema, 'output'),
    ServerState: {
      ...jsonSchema(serverStateSchema, 'output'),
      description:
        'One MCP server of the user (`mcp` and the tenant’s catalog) and its status; `reason` with `needs_reauth`.',
    },
    WebhookEvent: {
      type: 'object',
      description:
        "LiveKit's `WebhookEvent` (protojson). Not validated by a schema: the raw body must reach the signature " +
        'check untouched, and is parsed only after it.',
    },
    WebhookResponse: jsonSchema(webhookResponseSchema, 'output'),
    TenantPut: jsonSchema(tenantBodySchema, 'input'),
    UserPut: jsonSchema(userBodySchema, 'input'),
    Tenant: jsonSchema(tenantViewSchema, 'output'),
    User: jsonSchema(userViewSchema, 'output'),
    RevokedUser: jsonSchema(revokedViewSchema, 'output'),
    TenantPage: jsonSchema(pageSchema(tenantViewSchema), 'output'),
    UserPage: jsonSchema(pageSchema(userViewSchema), 'output'),
    AuditPage: jsonSchema(pageSchema(auditViewSchema), 'output'),
    SessionPage: jsonSchema(pageSchema(sessionViewSchema), 'output'),
    CascadeProgress: jsonSchema(cascadeProgressSchema, 'output'),
    CredentialsRequest: {
      ...jsonSchema(credentialsRequest, 'input'),
      description:
        'The job’s sealed metadata (expired is accepted while the session is active) and the servers that ' +
        'rejected their credential.',
    },
    CredentialsResponse: {
      type: 'object',
      required: ['metadata'],
      properties: {
        metadata: {
          type: 'string',
          description:
            'New sealed metadata: same `sid`, `room`, `pid` and `aud`; new `jti`, `iat`, `exp`, `refresh_at`; ' +
            '`mcp_servers` resolved afresh and `unavailable` for the servers left out.',
        },
      },
      additionalProperties: false,
    },
    Connection: jsonSchema(connectionViewSchema, 'output'),
    ConnectionList: jsonSchema(connectionListSchema, 'output'),
    AdminConnectionList: jsonSchema(adminConnectionListSchema, 'output'),
    Discovery: jsonSchema(discoveryViewSchema, 'output'),
    AuthorizeRequest: jsonSchema(authorizeRequest, 'input'),
    AuthorizeResponse: jsonSchema(authorizeResponseSchema, 'output'),
    CompleteRequest: jsonSchema(completeRequest, 'input'),
    UserTokenPut: jsonSchema(userTokenRequest, 'input'),
    ConnectionTest: jsonSchema(connectionTestSchema, 'output'),
    ClientMetadata: jsonSchema(clientMetadataSchema, 'output'),
    ClientJwks: jsonSchema(clientJwksSchema, 'output'),
  };

  const paths = {
    ...connectionPaths({ ok, problems: (codes) => problems(codes), unexpected, ref }),
    ...adminConnectionPaths(
      { ok, problems: (codes) => problems(codes), unexpected, ref },
      { tenantId, userId, adminAuth, userNotFound, tenantNotFound },
    ),
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
          ...problems({
            field_not_allowed: '`room_name` given, or an `lk.`/`sip.` attribute key.',
            unauthenticated: 'No, bad, expired or foreign JWT.',
            identity_mismatch: '`participant_identity` is not the JWT `sub`.',
            tenant_mismatch: 'The JWT’s tenant claim is missing or not a tenant id.',
            agent_not_allowed: 'The agent is not one the tenant allows.',
            user_suspended: 'The user is suspended.',
            tenant_suspended: 'The tenant is suspended.',
            user_not_found:
              'No user record for the JWT `sub` in the tenant its tenant claim names (or no such tenant).',
            mcp_not_configured: 'No MCP server at all for this user (no `mcp` URL, no catalog).',
            mcp_reauth_required:
              'Servers exist but none is `ready`; `mcp_servers` lists each with its status, so the app can connect one.',
            idempotency_key_in_flight: 'The same `Idempotency-Key` is still being processed (retry).',
            payload_too_large: 'The body is over 64 KiB.',
            invalid_request: 'Schema violation.',
            idempotency_key_reused: 'The same `Idempotency-Key` with another body.',
            quota_exceeded: 'The tenant’s concurrent sessions are all taken.',
            rate_limited: 'The user’s per-minute rate.',
            livekit_unavailable: 'LiveKit failed or timed out; nothing was left behind.',
            store_unavailable: 'DynamoDB failed after retries; retry.',
            dispatch_in_progress: 'The dispatch is still being made; retry.',
          }),
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
          ...problems(
            {
              invalid_signature: 'Missing or invalid signature; nothing was done.',
              payload_too_large: 'The body is over 1 MiB.',
              event_in_progress: 'The event is being processed; retry.',
              dispatch_in_progress: 'The dispatch is still being made; retry.',
              livekit_unavailable: 'LiveKit failed; retry.',
              store_unavailable: 'DynamoDB failed; retry.',
            },
            WEBHOOK_STATUS,
          ),
          default: unexpected,
        },
      },
    },
    '/v1/worker/credentials': {
      post: {
        operationId: 'renewWorkerCredentials',
        summary: 'Agent workers renew a live job’s MCP credentials.',
        description:
          'The bearer worker assertion is checked first (signature, `kid`, `aud` = `refresh_url`, lifetime ≤ 60 s, ' +
          'single-use `jti`), then the metadata as a worker would open it; the session record named by `sid` ' +
          'decides tenant, user, room, participant and agent. Each renewal extends the session’s quota lease.',
        tags: ['worker'],
        security: [{ workerAssertion: [] }],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref('CredentialsRequest') } },
        },
        responses: {
          200: ok('The renewed sealed metadata.', 'CredentialsResponse'),
          ...problems({
            invalid_worker_assertion:
              'The assertion is missing, forged, for another key, `aud` or agent, expired, too long-lived or used before (`reason`).',
            invalid_metadata:
              'The metadata does not open, or disagrees with the session record (`reason`: the opener’s code or `mismatch`).',
            session_ended:
              'The session ended, or its user or tenant is suspended, revoked or deleted: end the job.',
            payload_too_large: 'The body is over 64 KiB.',
            invalid_request: 'The body is not `{metadata, rejected?}`.',
            rate_limited: 'More than 20 renewals of this session in a minute.',
            store_unavailable:
              'DynamoDB failed after retries (or the session is still being created); retry.',
          }),
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
          ...problems({ ...adminAuth, ...tenantNotFound }),
          default: unexpected,
        },
      },
      put: {
        operationId: 'putTenant',
        summary: 'Create (superadmin) or replace a tenant.',
        description:
          'Replaces the record, except write-only secrets: an omitted `mcp.token`/`mcp.headers` is kept, `null` ' +
          'clears it; a kept secret never follows the URL to another origin. In `mcp_servers` the same holds per ' +
          'entry, matched by `name`: an omitted `auth.token`, `auth.client_secret` or `headers` is kept, `null` ' +
          'clears it; changing an entry’s `url` drops its kept token and headers, changing its `client_id` or ' +
          '`issuer` its kept client secret. An omitted `status` keeps the ' +
          'current one. Setting `status: suspended` ends the tenant’s live sessions (`ended_sessions`).',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [ifMatch, ifNoneMatch],
        requestBody: { required: true, content: { 'application/json': { schema: ref('TenantPut') } } },
        responses: {
          200: ok('Replaced.', 'Tenant', ETAG),
          202: ok(
            'Replaced and suspended, but ending its sessions ran out of time; repeat with the new ETag to continue.',
            'CascadeProgress',
            ETAG,
          ),
          201: ok('Created.', 'Tenant', {
            ...ETAG,
            Location: { description: 'The tenant’s path.', schema: { type: 'string' } },
          }),
          ...writeProblems('tenant'),
        },
      },
      delete: {
        operationId: 'deleteTenant',
        summary: 'Delete a tenant (superadmin); one with users only with `?cascade=true`.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [
          ifMatch,
          queryParameter(
            deleteTenantQuerySchema,
            'cascade',
            '`true`: also delete its users (their live sessions end first). Anything but `true`/`false` is 422.',
          ),
        ],
        responses: {
          202: ok(
            'Ending sessions or a cascade ran out of time for this request; repeat it to continue.',
            'CascadeProgress',
          ),
          204: { description: 'Deleted.' },
          ...problems({
            ...adminAuth,
            forbidden: 'No admin scope, or a tenant admin: only a superadmin deletes a tenant.',
            ...tenantNotFound,
            tenant_has_users: 'The tenant has users and `cascade` is not `true`.',
            version_conflict: '`If-Match` names a stale version.',
            invalid_request:
              '`cascade` is neither `true` nor `false`, or `If-None-Match` is sent (alone it must be `*`; never with `If-Match`).',
          }),
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
          ...problems({ ...adminAuth, ...userNotFound }),
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
          202: ok(
            'Replaced and suspended, but ending the sessions ran out of time; repeat with the new ETag to continue.',
            'CascadeProgress',
            ETAG,
          ),
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
          202: ok(
            'Deleted, but ending the sessions ran out of time; repeat the request to continue.',
            'CascadeProgress',
          ),
          204: { description: 'Deleted.' },
          ...problems({
            ...adminAuth,
            ...userNotFound,
            version_conflict: '`If-Match` names a stale version.',
            invalid_request: '`If-None-Match` is sent (alone it must be `*`; never with `If-Match`).',
          }),
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
          202: ok(
            'Suspended, but ending the sessions ran out of time; repeat the request to continue.',
            'CascadeProgress',
            ETAG,
          ),
          ...problems({ ...adminAuth, ...userNotFound }),
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

  // The 409 of a session start may carry every server's status (`mcp_reauth_required`).
  const conflict = (
    paths['/v1/sessions'].post.responses as Record<
      number,
      { content: Record<string, { schema: JsonSchema }> }
    >
  )[409];
  const conflictSchema = conflict?.content['application/problem+json']?.schema;
  if (conflictSchema !== undefined) {
    conflictSchema.properties = {
      ...(conflictSchema.properties as JsonSchema),
      mcp_servers: {
        type: 'array',
        items: ref('ServerState'),
        description: 'With `mcp_reauth_required`: every server of the user and its status.',
      },
    };
  }

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'livekit-mcp-dispatch',
      version,
      description:
        'Per-user MCP servers for LiveKit agents: a session endpoint for apps, a LiveKit webhook target and an ' +
        'admin API. Errors are RFC 9457 `application/problem+json` with a stable `code`; a method a path does ' +
        'not serve is 405 `method_not_allowed` with `Allow`.',
    },
    servers: [{ url: '/', description: 'The origin this document is served from.' }],
    tags: [
      { name: 'session', description: 'Mobile and web apps (LiveKit `TokenSource.endpoint`).' },
      {
        name: 'connections',
        description: 'Per-user MCP credentials, OAuth included (same JWT as sessions).',
      },
      { name: 'webhook', description: 'LiveKit webhooks.' },
      { name: 'admin', description: 'Tenants, users, audit and sessions.' },
      { name: 'worker', description: 'Agent workers (renewals of a live job’s credentials).' },
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
        workerAssertion: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'lk-mcp-worker+jwt',
          description:
            'A worker assertion: HS256 JWS, header `{"alg":"HS256","kid":<dispatch key id>,"typ":"lk-mcp-worker+jwt"}`, ' +
            'key = HKDF-SHA256 of that dispatch key (info `livekit-mcp-dispatch worker assertion v1`); claims `iss` = agent ' +
            'name, `aud` = `refresh_url`, `sub` = the metadata’s `sid`, `iat`, `exp` ≤ `iat` + 60, single-use `jti`.',
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
