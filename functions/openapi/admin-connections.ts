import type { DocumentHelpers } from './connections.js';

/**
 * The admin connection routes of the OpenAPI document (docs/api.md §6): a user's connections and
 * deleting one. The document lends its helpers and the shared admin parameters and problems.
 */

type Json = Record<string, unknown>;

/** The `paths` entries of the admin connection routes. */
export function adminConnectionPaths(
  h: DocumentHelpers,
  shared: {
    tenantId: Json;
    userId: Json;
    adminAuth: Record<string, string>;
    userNotFound: Record<string, string>;
    tenantNotFound: Record<string, string>;
  },
): Record<string, Json> {
  const { tenantId, userId, adminAuth, userNotFound, tenantNotFound } = shared;
  const server = {
    name: 'server',
    in: 'path',
    required: true,
    description: 'A catalog server name of the tenant.',
    schema: { type: 'string', pattern: '^[a-z0-9_-]{1,32}$' },
  };
  return {
    '/v1/admin/tenants/{tenantId}/users/{userId}/connections': {
      parameters: [tenantId, userId],
      get: {
        operationId: 'listUserConnections',
        summary: 'A user’s stored connections: status, issuer, scopes, times, last error; never a token.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          200: h.ok('The user’s connections (servers never connected are absent).', 'AdminConnectionList'),
          ...h.problems({ ...adminAuth, ...userNotFound }),
          default: h.unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/users/{userId}/connections/{server}': {
      parameters: [tenantId, userId, server],
      delete: {
        operationId: 'deleteUserConnection',
        summary:
          'Delete a user’s connection; an OAuth grant is revoked at its recorded issuer when it offers revocation (RFC 7009). Audited.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          204: { description: 'Deleted (also when there was none).' },
          ...h.problems({
            ...adminAuth,
            ...userNotFound,
            server_not_found: 'No such server in the tenant’s catalog.',
            wrong_auth_type: 'The server’s `auth` is `none` or `static`: it has no per-user connection.',
          }),
          default: h.unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/servers/{server}/discover': {
      parameters: [tenantId, server],
      post: {
        operationId: 'discoverServer',
        summary:
          'A dry run of the OAuth discovery of a catalog entry: resource, authorization server metadata and the registration path that would be used. Writes nothing.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        responses: {
          200: h.ok('What discovery found.', 'Discovery'),
          ...h.problems({
            ...adminAuth,
            ...tenantNotFound,
            server_not_found: 'No such server in the tenant’s catalog.',
            wrong_auth_type: 'The server’s `auth` is not `oauth`.',
            oauth_discovery_failed:
              'Discovery was refused; `reason` is `unsafe_url`, `resource_mismatch`, `issuer_mismatch`, `no_s256`, `timeout` or `bad_metadata`.',
          }),
          default: h.unexpected,
        },
      },
    },
  };
}
