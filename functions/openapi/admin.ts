import { deleteTenantQuerySchema } from '../core/admin-input.js';
import {
  adminAuth,
  ETAG,
  ifMatch,
  ifNoneMatch,
  listOperation,
  ok,
  problems,
  queryParameter,
  ref,
  tenantId,
  tenantNotFound,
  unexpected,
  userId,
  userNotFound,
  writeProblems,
} from './helpers.js';

/** The `paths` entries of the admin API's tenants, users, revoke, audit and sessions (docs/api.md §6). */
export function adminPaths(): Record<string, unknown> {
  return {
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
}
