import { ok, problems, ref, unexpected } from './helpers.js';

/**
 * The connection routes of the OpenAPI document (docs/api.md §8); the problems' statuses come from
 * the one code→status map as everywhere else (helpers.ts).
 */

type Json = Record<string, unknown>;

const server = {
  name: 'server',
  in: 'path',
  required: true,
  description: 'A catalog server name of the user’s tenant.',
  schema: { type: 'string', pattern: '^[a-z0-9_-]{1,32}$' },
};

const caller = {
  unauthenticated: 'No, bad, expired or foreign JWT.',
  tenant_mismatch: 'The JWT’s tenant claim is missing or not a tenant id.',
  user_suspended: 'The user is suspended.',
  tenant_suspended: 'The tenant is suspended.',
  user_not_found:
    'No user record for the JWT `sub` in the tenant its tenant claim names (or no such tenant).',
};
const unknownServer = { server_not_found: 'No such server in the tenant’s catalog.' };

/** The `paths` entries of the connection routes. */
export function connectionPaths(): Record<string, Json> {
  const op = (operationId: string, summary: string, extra: Json, responses: Json): Json => ({
    operationId,
    summary,
    tags: ['connections'],
    security: [{ bearerAuth: [] }],
    ...extra,
    responses: { ...responses, default: unexpected },
  });
  const body = (schema: string) => ({
    requestBody: { required: true, content: { 'application/json': { schema: ref(schema) } } },
  });
  const params = { parameters: [server] };
  return {
    '/v1/connections': {
      get: op(
        'listConnections',
        'The user’s connections: one item per catalog server of the tenant, with its status.',
        {},
        {
          200: ok('Every catalog server with its status; never a token.', 'ConnectionList'),
          ...problems(caller),
        },
      ),
    },
    '/v1/connections/{server}': {
      get: op('getConnection', 'One catalog server’s connection status.', params, {
        200: ok('The connection.', 'Connection'),
        ...problems({ ...caller, ...unknownServer }),
      }),
      put: op(
        'putUserToken',
        'Set the user’s own token for a `user_token` server (write-only).',
        { ...params, ...body('UserTokenPut') },
        {
          200: ok('The connection, with `token_set` and `token_fingerprint`.', 'Connection'),
          ...problems({
            ...caller,
            ...unknownServer,
            wrong_auth_type: 'The server’s auth is not `user_token`.',
            invalid_request: 'Schema violation.',
          }),
        },
      ),
      delete: op(
        'deleteConnection',
        'Forget the user’s credential; an OAuth grant is revoked at its authorization server (RFC 7009).',
        params,
        {
          204: { description: 'Deleted (or there was none).' },
          ...problems({
            ...caller,
            ...unknownServer,
            wrong_auth_type: 'The server has no per-user credential (`none` or `static`).',
          }),
        },
      ),
    },
    '/v1/connections/{server}/authorize': {
      post: op(
        'authorizeConnection',
        'Start an OAuth authorization (code flow, PKCE S256, `resource`); replaces the user’s pending one.',
        { ...params, ...body('AuthorizeRequest') },
        {
          201: ok('Open `authorization_url` in a browser before `expires_at`.', 'AuthorizeResponse'),
          ...problems({
            ...caller,
            ...unknownServer,
            wrong_auth_type: 'The server’s auth is not `oauth`.',
            oauth_registration_unavailable: 'No registration path (pre-registered, CIMD, DCR) works.',
            return_to_not_allowed: '`return_to` is not one of the tenant’s `oauth_return_urls`.',
            invalid_request: 'Schema violation.',
            rate_limited: 'More than 10 authorizations by this user in a minute.',
            oauth_discovery_failed: 'Discovery refused the server or its authorization server (`reason`).',
          }),
        },
      ),
    },
    '/v1/connections/{server}/complete': {
      post: op(
        'completeConnection',
        'Store the grant of a finished authorization, under the JWT of the user who started it.',
        { ...params, ...body('CompleteRequest') },
        {
          200: ok('The connection, now `connected`.', 'Connection'),
          ...problems({
            ...caller,
            oauth_user_mismatch: 'Another user started this authorization (audited; nothing stored).',
            ...unknownServer,
            wrong_auth_type: 'The server’s auth is not `oauth`.',
            result_expired: 'The result handle was used, or is older than `OAUTH_STATE_TTL_SECONDS`.',
            invalid_request: 'Schema violation.',
          }),
        },
      ),
    },
    '/v1/connections/{server}/test': {
      post: op(
        'testConnection',
        'MCP `initialize` and `tools/list` with the user’s current credential.',
        params,
        {
          200: ok('`ok` with the tool count, or a `code`.', 'ConnectionTest'),
          ...problems({ ...caller, ...unknownServer }),
        },
      ),
    },
    '/v1/oauth/callback': {
      get: {
        operationId: 'oauthCallback',
        summary: 'The authorization server’s redirect target; completes nothing.',
        description:
          'Validates `state` (single use), compares `iss` with the recorded issuer, exchanges the code, and 303s ' +
          'to `return_to` with `?server=<name>&result=<one-time handle>` or `&error=<access_denied|issuer_mismatch|' +
          'token_exchange_failed|state_expired>`. Never a token or the authorization server’s own text in a URL.',
        tags: ['connections'],
        security: [],
        parameters: ['code', 'state', 'iss', 'error'].map((name) => ({
          name,
          in: 'query',
          required: false,
          schema: { type: 'string' },
        })),
        responses: {
          303: {
            description: 'To `return_to`, with `server` and `result` or `error`.',
            headers: { Location: { description: 'The app’s `return_to`.', schema: { type: 'string' } } },
          },
          400: {
            description: 'An unknown `state`: an HTML page, no redirect.',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
          default: unexpected,
        },
      },
    },
    '/oauth/tenants/{tenantId}/client-metadata.json': {
      get: {
        operationId: 'clientMetadata',
        summary: 'The tenant’s OAuth Client ID Metadata Document (its `client_id` is this URL).',
        tags: ['connections'],
        security: [],
        parameters: [
          {
            name: 'tenantId',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{1,62}$' },
          },
        ],
        responses: {
          200: ok('The document.', 'ClientMetadata'),
          ...problems({ tenant_not_found: 'No such tenant.' }),
          default: unexpected,
        },
      },
    },
    '/oauth/jwks.json': {
      get: {
        operationId: 'clientJwks',
        summary: 'The public keys of `OAUTH_CLIENT_KEYS` (`private_key_jwt`).',
        tags: ['connections'],
        security: [],
        responses: { 200: ok('A JWKS.', 'ClientJwks'), default: unexpected },
      },
    },
  };
}
