import { tenantBodySchema, userBodySchema } from '../admin/app.js';
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
  tenantConnectionSchema,
} from '../http/connection-responses.js';
import { WEBHOOK_STATUS } from '../http/problem.js';
import {
  auditViewSchema,
  cascadeProgressSchema,
  pageSchema,
  problemSchema,
  revokedViewSchema,
  sessionViewSchema,
  tenantViewSchema,
  userViewSchema,
  webhookResponseSchema,
} from '../http/responses.js';
import { authorizeRequest, completeRequest, userTokenRequest } from '../session/connections.js';
import { adminPaths } from './admin.js';
import { adminConnectionPaths } from './admin-connections.js';
import { connectionPaths } from './connections.js';
import { type JsonSchema, jsonSchema, ok, problems, ref, unexpected } from './helpers.js';
import { sessionPaths, sessionSchemas } from './session.js';

/**
 * The OpenAPI 3.1 document, built at build time (`npm run openapi`, also run by `npm run build`)
 * from the zod/mini schemas the apps validate requests with and type their responses by
 * (functions/http/responses.ts), with each problem's status from the one code→status map
 * (functions/http/problem.ts), so the document cannot drift from the apps. Real responses are
 * checked against it in test/integration/openapi.test.ts, its operations against the route list
 * in test/contract/routes.test.ts, and scripts/schemathesis.sh fuzzes `npm start` with it.
 * Nothing here is bundled into a function, nor is the generated `openapi.json`: the admin function
 * reads it from beside its bundle (scripts/build.ts copies it there) and serves it.
 */

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
    ...sessionSchemas(),
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
    TenantConnectionPage: jsonSchema(pageSchema(tenantConnectionSchema), 'output'),
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
    ...connectionPaths(),
    ...adminConnectionPaths(),
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
    ...sessionPaths(),
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
    ...adminPaths(),
  };

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
