import { userPath } from '../admin-access.js';
import type { GrantCleanup } from '../admin-service.js';
import { DomainError } from '../errors.js';
import type { ConnectionRecord, TenantRecord } from '../model.js';
import { clientMetadataUrl } from '../oauth/client-metadata.js';
import { discover } from '../oauth/discovery.js';
import { type RegistrationPath, registrationPath } from '../oauth/registration-path.js';
import type { Page, PageRequest } from '../ports.js';
import { type ConnectionDeps, catalogServer, iso, requireAuth } from './context.js';
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

/** A connection in the tenant-wide list (docs/api.md §6): whose it is, and where it stands. */
export type TenantConnectionView = AdminConnectionView & { user_id: string };

/** The answer of an admin's discovery dry run (docs/api.md §6): metadata only, no client secret. */
export interface DiscoveryView {
  resource: string;
  authorization_server: {
    issuer: string;
    authorization_endpoint?: string;
    token_endpoint?: string;
    revocation_endpoint?: string;
    registration_endpoint?: string;
    scopes_supported?: string[];
    code_challenge_methods_supported?: string[];
    client_id_metadata_document_supported?: boolean;
  };
  registration: RegistrationPath;
}

/** What the admin API does with any user's connections (the tenant and user already checked). */
export interface ConnectionAdmin extends GrantCleanup {
  /** The user's stored connections, strongly consistent. */
  list(tenantId: string, userId: string): Promise<AdminConnectionView[]>;
  /**
   * Deletes the user's connection to a catalog server and revokes its grant (the same code as the
   * user's own DELETE), audited as `actor`. 404 `server_not_found` / 409 `wrong_auth_type` as there.
   */
  remove(actor: string, tenant: TenantRecord, userId: string, server: string): Promise<void>;
  /**
   * The tenant's connections across its users, by status when given (`needs_reauth`: who must
   * reconnect). From an index, so a write of the last moments may not show yet.
   */
  listTenant(
    tenantId: string,
    status: ConnectionRecord['status'] | undefined,
    page: PageRequest,
  ): Promise<Page<TenantConnectionView>>;
  /**
   * §8's discovery for a catalog entry, and the registration path it would take, writing nothing:
   * no client registered or recorded, no cache filled. 404 `server_not_found`, 409
   * `wrong_auth_type` / `oauth_issuer_mismatch`, 502 `oauth_discovery_failed` with its `reason`.
   */
  discover(tenant: TenantRecord, server: string): Promise<DiscoveryView>;
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

/** Connections read per page of a sweep. */
const SWEEP_PAGE = 100;
/** Revocations in flight at once (each up to the safe fetch's 5 s at one authorization server). */
const REVOKE_CONCURRENCY = 5;

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Creates the {@link ConnectionAdmin}. */
export function createConnectionAdmin(deps: ConnectionDeps): ConnectionAdmin {
  return {
    async list(tenantId, userId) {
      return (await deps.store.listConnections(tenantId, userId)).map(adminViewOf);
    },

    async listTenant(tenantId, status, page) {
      const found = await deps.store.listTenantConnections(
        tenantId,
        status === undefined ? {} : { status },
        page,
      );
      return {
        items: found.items.map((r) => ({ user_id: r.user_id, ...adminViewOf(r) })),
        cursor: found.cursor,
      };
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

    async discover(tenant, serverName) {
      const server = catalogServer(tenant, serverName);
      requireAuth(server, 'oauth');
      // No cache: a dry run looks afresh, and leaves nothing behind for the next authorization.
      const found = await discover(server.url, {
        fetch: deps.fetch,
        clock: deps.clock,
        allowInsecure: deps.config.allowInsecureMcpUrls,
      });
      const auth = server.auth.type === 'oauth' ? server.auth : undefined;
      const registration = registrationPath(found, {
        ...(auth?.client_id !== undefined && auth.issuer !== undefined
          ? { preregistered: { issuer: auth.issuer } }
          : {}),
        clientMetadataUrl: clientMetadataUrl(deps.config.publicBaseUrl, tenant.tenant_id),
      });
      const as = found.authorizationServer;
      const pick = <K extends keyof DiscoveryView['authorization_server']>(key: K) =>
        as[key] === undefined ? {} : { [key]: as[key] };
      return {
        resource: found.resource,
        authorization_server: {
          issuer: found.issuer,
          ...pick('authorization_endpoint'),
          ...pick('token_endpoint'),
          ...pick('revocation_endpoint'),
          ...pick('registration_endpoint'),
          ...pick('scopes_supported'),
          ...pick('code_challenge_methods_supported'),
          ...pick('client_id_metadata_document_supported'),
        },
        registration,
      };
    },

    async removeAll(tenant, userId) {
      const records = await deps.store.listConnections(tenant.tenant_id, userId);
      // Each deleted before it is revoked (revoke.ts); a repeat finds what is left.
      await eachLimited(records, REVOKE_CONCURRENCY, (r) => removeConnection(deps, tenant, userId, r.server));
      return records.length;
    },

    async removeServers(tenant, servers, deadline) {
      // The tenant-wide index is eventually consistent: a connection completed in the last
      // moments may be missed here. What is missed is never sealed (a dispatch reads only the
      // servers the catalog names) and goes with its user's or the tenant's delete.
      let cursor: Record<string, unknown> | undefined;
      let pages = 0;
      do {
        // Every call makes progress (one page at least) before the deadline may stop it.
        if (pages > 0 && deps.clock() >= deadline) return false;
        const page = await deps.store.listTenantConnections(
          tenant.tenant_id,
          {},
          { limit: SWEEP_PAGE, cursor },
        );
        pages += 1;
        const gone = servers === 'all' ? page.items : page.items.filter((r) => servers.has(r.server));
        await eachLimited(gone, REVOKE_CONCURRENCY, (r) =>
          removeConnection(deps, tenant, r.user_id, r.server),
        );
        cursor = page.cursor;
      } while (cursor !== undefined);
      return true;
    },
  };
}
