import { userPath } from '../admin-access.js';
import { DomainError } from '../errors.js';
import type { ConnectionRecord, TenantRecord } from '../model.js';
import { type ConnectionDeps, catalogServer, iso } from './context.js';
import { removeConnection } from './revoke.js';

/** A connection as an admin sees it (docs/api.md §6): where it stands, never a token. */
export interface AdminConnectionView {
  server: string;
  auth: 'oauth' | 'user_token';
  status: ConnectionRecord['status'];
  reason?: string;
  issuer?: string;
  scopes?: string[];
  connected_at?: string;
  refreshed_at?: string;
  last_error?: string;
  updated_at: string;
}

/** What the admin API does with any user's connections (the tenant and user already checked). */
export interface ConnectionAdmin {
  /** The user's stored connections, strongly consistent. */
  list(tenantId: string, userId: string): Promise<AdminConnectionView[]>;
  /**
   * Deletes the user's connection to a catalog server and revokes its grant (the same code as the
   * user's own DELETE), audited as `actor`. 404 `server_not_found` / 409 `wrong_auth_type` as there.
   */
  remove(actor: string, tenant: TenantRecord, userId: string, server: string): Promise<void>;
  /** Deletes every connection of a user (the user is being deleted) and revokes their grants; how many. */
  removeAll(tenant: TenantRecord, userId: string): Promise<number>;
}

/** The admin view of a record: an allow-list of fields, so no sealed value can slip through. */
export function adminViewOf(r: ConnectionRecord): AdminConnectionView {
  return {
    server: r.server,
    auth: r.auth,
    status: r.status,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(r.issuer !== undefined ? { issuer: r.issuer } : {}),
    ...(r.scopes !== undefined ? { scopes: r.scopes } : {}),
    ...(r.connected_at !== undefined ? { connected_at: r.connected_at } : {}),
    ...(r.refreshed_at !== undefined ? { refreshed_at: r.refreshed_at } : {}),
    ...(r.last_error !== undefined ? { last_error: r.last_error } : {}),
    updated_at: r.updated_at,
  };
}

/** Creates the {@link ConnectionAdmin}. */
export function createConnectionAdmin(deps: ConnectionDeps): ConnectionAdmin {
  return {
    async list(tenantId, userId) {
      return (await deps.store.listConnections(tenantId, userId)).map(adminViewOf);
    },

    async remove(actor, tenant, userId, serverName) {
      const server = catalogServer(tenant, serverName);
      if (server.auth.type !== 'oauth' && server.auth.type !== 'user_token') {
        throw new DomainError('wrong_auth_type', 'This server has no per-user connection.');
      }
      const deleted = await removeConnection(deps, tenant, userId, server.name);
      if (deleted === undefined) return;
      await deps.store.putAudit({
        tenant_id: tenant.tenant_id,
        target: `${userPath(tenant.tenant_id, userId)}/connections/${server.name}`,
        version: deps.clock(),
        actor,
        action: 'delete',
        changed_fields: [],
        ...(deleted.token_fingerprint !== undefined
          ? { old_token_fingerprint: deleted.token_fingerprint }
          : {}),
        at: iso(deps.clock()),
      });
    },

    async removeAll(tenant, userId) {
      const records = await deps.store.listConnections(tenant.tenant_id, userId);
      // One at a time, each deleted before it is revoked (revoke.ts); a repeat finds what is left.
      for (const r of records) await removeConnection(deps, tenant, userId, r.server);
      return records.length;
    },
  };
}
