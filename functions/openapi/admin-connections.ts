import { tenantConnectionsQuerySchema } from '../core/admin-input.js';
import {
  adminAuth,
  listParameters,
  ok,
  problems,
  queryParameter,
  tenantId,
  tenantNotFound,
  unexpected,
  userId,
  userNotFound,
} from './helpers.js';

/**
 * The admin connection routes of the OpenAPI document (docs/api.md §6): a user's connections,
 * deleting one, and the discovery dry run.
 */

type Json = Record<string, unknown>;

/** The `paths` entries of the admin connection routes. */
export function adminConnectionPaths(): Record<string, Json> {
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
          200: ok('The user’s connections (servers never connected are absent).', 'AdminConnectionList'),
          ...problems({ ...adminAuth, ...userNotFound }),
          default: unexpected,
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
          ...problems({
            ...adminAuth,
            ...userNotFound,
            server_not_found: 'No such server in the tenant’s catalog.',
            wrong_auth_type: 'The server’s `auth` is `none` or `static`: it has no per-user connection.',
          }),
          default: unexpected,
        },
      },
    },
    '/v1/admin/tenants/{tenantId}/connections': {
      parameters: [tenantId],
      get: {
        operationId: 'listTenantConnections',
        summary:
          'The tenant’s connections across its users, optionally of one status (`?status=needs_reauth`: who must reconnect). Never a token.',
        description:
          'Read from an index: a connection written in the last moments may not be listed yet. Ordered by status, user and server.',
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        parameters: [
          ...listParameters(),
          queryParameter(tenantConnectionsQuerySchema, 'status', 'Only connections with this status.'),
        ],
        responses: {
          200: ok('One page; `next_cursor` is null on the last.', 'TenantConnectionPage'),
          ...problems({
            ...adminAuth,
            ...tenantNotFound,
            invalid_request: 'Invalid `limit`, `cursor` or `status`, or an unknown query parameter.',
          }),
          default: unexpected,
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
          200: ok('What discovery found.', 'Discovery'),
          ...problems({
            ...adminAuth,
            ...tenantNotFound,
            server_not_found: 'No such server in the tenant’s catalog.',
            wrong_auth_type: 'The server’s `auth` is not `oauth`.',
            oauth_discovery_failed:
              'Discovery was refused; `reason` is `unsafe_url`, `resource_mismatch`, `issuer_mismatch`, `no_s256`, `timeout` or `bad_metadata`.',
          }),
          default: unexpected,
        },
      },
    },
  };
}
