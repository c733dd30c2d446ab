import {
  array,
  boolean,
  enum as enumOf,
  int,
  literal,
  looseObject,
  optional,
  strictObject,
  string,
  union,
} from 'zod/mini';

/**
 * The response bodies of the connection routes (docs/api.md §8), for the OpenAPI document
 * (functions/openapi/document.ts). Never a token: `token_set` and a fingerprint at most.
 */

/** One item of `GET /v1/connections`, and the body of `GET|PUT /v1/connections/{server}` and `complete`. */
export const connectionViewSchema = strictObject({
  server: string(),
  display_name: string(),
  description: optional(string()),
  icon_url: optional(string()),
  auth: enumOf(['none', 'static', 'user_token', 'oauth']),
  status: enumOf(['connected', 'not_connected', 'pending', 'needs_reauth']),
  reason: optional(enumOf(['invalid_grant', 'expired', 'resource_changed', 'insufficient_scope'])),
  scopes: optional(array(string())),
  required_scopes: optional(array(string())),
  authorization_host: optional(string()),
  connected_at: optional(string()),
  updated_at: optional(string()),
  token_set: optional(boolean()),
  token_fingerprint: optional(string()),
});

/** `GET /v1/connections`: every catalog server of the user's tenant. */
export const connectionListSchema = strictObject({ items: array(connectionViewSchema) });

/** The 201 of `POST /v1/connections/{server}/authorize`. */
export const authorizeResponseSchema = strictObject({ authorization_url: string(), expires_at: string() });

/** The 200 of `POST /v1/connections/{server}/test`. */
export const connectionTestSchema = union([
  strictObject({ ok: literal(true), tools: int() }),
  strictObject({ ok: literal(false), code: string() }),
]);

/** `GET /oauth/tenants/{tenantId}/client-metadata.json`: the tenant's Client ID Metadata Document. */
export const clientMetadataSchema = strictObject({
  client_id: string(),
  client_name: string(),
  redirect_uris: array(string()),
  grant_types: array(string()),
  response_types: array(string()),
  token_endpoint_auth_method: literal('private_key_jwt'),
  jwks_uri: string(),
});

/** `GET /oauth/jwks.json`: the public `OAUTH_CLIENT_KEYS`. */
export const clientJwksSchema = strictObject({
  keys: array(
    looseObject({ kty: literal('EC'), crv: literal('P-256'), kid: string(), x: string(), y: string() }),
  ),
});

/** One item of `GET /v1/admin/tenants/{tenantId}/users/{userId}/connections` (docs/api.md §6): never a token. */
export const adminConnectionSchema = strictObject({
  server: string(),
  auth: enumOf(['user_token', 'oauth']),
  status: enumOf(['connected', 'pending', 'needs_reauth']),
  reason: optional(enumOf(['invalid_grant', 'expired', 'resource_changed', 'insufficient_scope'])),
  issuer: optional(string()),
  scopes: optional(array(string())),
  connected_at: optional(string()),
  refreshed_at: optional(string()),
  last_error: optional(string()),
  updated_at: string(),
});

/** `GET /v1/admin/tenants/{tenantId}/users/{userId}/connections`: the user's stored connections. */
export const adminConnectionListSchema = strictObject({ items: array(adminConnectionSchema) });

/** One item of `GET /v1/admin/tenants/{tenantId}/connections`: a user's connection, naming the user. */
export const tenantConnectionSchema = strictObject({ user_id: string(), ...adminConnectionSchema.shape });

/** `POST /v1/admin/tenants/{tenantId}/servers/{server}/discover`: what §8's discovery found, nothing written. */
export const discoveryViewSchema = strictObject({
  resource: string(),
  authorization_server: strictObject({
    issuer: string(),
    authorization_endpoint: optional(string()),
    token_endpoint: optional(string()),
    revocation_endpoint: optional(string()),
    registration_endpoint: optional(string()),
    scopes_supported: optional(array(string())),
    code_challenge_methods_supported: optional(array(string())),
    client_id_metadata_document_supported: optional(boolean()),
  }),
  registration: enumOf(['preregistered', 'cimd', 'dcr', 'unavailable']),
});
