import {
  type AdminActor,
  notFound,
  SUPERADMIN_FIELDS,
  sameTenantUser,
  tenantPath,
  userPath,
} from './admin-access.js';
import { auditTarget, createAuditor } from './admin-audit.js';
import { createAdminDeletes } from './admin-delete.js';
import type { AdminService, GrantCleanup, WriteResult } from './admin-service.js';
import { changedCatalogFields } from './catalog-audit.js';
import { storedCatalog, storedReturnUrls } from './catalog-settings.js';
import { ConditionFailedError } from './errors.js';
import type { Log } from './log.js';
import { storedMcp } from './mcp-settings.js';
import type { Status, TenantRecord, UserRecord } from './model.js';
import type { AdminStore, RoomApi } from './ports.js';
import { expectedVersion } from './preconditions.js';
import { DEFAULT_MCP_NAME } from './resolve.js';
import type { SecretBox } from './sealing.js';
import { createSessionEnder, type Deadline, type EndProgress } from './session-ends.js';
import type { UrlGuardOptions } from './url-guard.js';

export type { AdminService } from './admin-service.js';

/** Everything {@link createAdminService} is built from. */
export interface AdminServiceDeps {
  store: AdminStore;
  /** Seals tokens and headers at rest; makes their display fingerprints. */
  secretBox: SecretBox;
  /** Deletes the rooms of sessions ended by revoke, suspension or deletion. */
  livekit: RoomApi;
  /** Checks MCP URLs (docs/api.md §6). */
  urlGuard: UrlGuardOptions;
  clock: () => Date;
  log: Log;
  /**
   * How long one request's bulk work (a cascade, ending sessions) runs when the caller passes no
   * deadline (local server, tests); in Lambda the deadline comes from the invocation's
   * remaining time (functions/admin/app.ts).
   */
  cascadeBudgetMs: number;
  /** The users' connections: deleting a user, a catalog entry or a tenant revokes their grants (§8). */
  grants?: GrantCleanup | undefined;
}

/** The catalog servers whose users each hold their own credential: name → auth type. */
const perUserServers = (tenant: TenantRecord | undefined) =>
  new Map(
    (tenant?.mcp_servers ?? [])
      .filter((s) => s.auth.type === 'oauth' || s.auth.type === 'user_token')
      .map((s) => [s.name, s.auth.type]),
  );

/** A write's result, once the sessions it ends when it leaves the record suspended are ended. */
async function endedIfSuspended<T extends { status: string }>(
  stored: T,
  created: boolean,
  endLive: () => Promise<EndProgress>,
): Promise<WriteResult<T>> {
  const progress = stored.status === 'suspended' ? await endLive() : { ended: 0, done: true };
  return { record: stored, created, endedSessions: progress.ended, done: progress.done };
}

/**
 * Creates the admin domain: tenant and user writes with their preconditions, write-only secrets
 * bound to the origin they were set for (mcp-settings.ts), audit entries (admin-audit.ts), and
 * the effects of suspension, revoke and deletion on live sessions.
 */
export function createAdminService(deps: AdminServiceDeps): AdminService {
  const { store, livekit, clock, log } = deps;
  const { audit, writeAudited, auditDeletion, repairAuditGap } = createAuditor({ store, log, clock });
  const mcpSettings = { secretBox: deps.secretBox, urlGuard: deps.urlGuard };

  const deadlineOf = (deadline: Deadline | undefined): Deadline =>
    deadline ?? clock().getTime() + deps.cascadeBudgetMs;
  const sessions = createSessionEnder({ store, livekit, clock });
  const { endSessions, endUserSessions } = sessions;
  const deletes = createAdminDeletes({
    store,
    clock,
    log,
    auditDeletion,
    sessions,
    deadlineOf,
    grants: deps.grants,
  });

  /**
   * The user create's fence against a tenant delete (docs/api.md §10): the user is written, then
   * the tenant re-read strongly consistent; when it is `deleting` or gone, the create undoes
   * itself (the cascade may have listed the users before this write) and answers 404. See
   * deleteTenant (admin-delete.ts) for the other half of the ordering argument.
   */
  async function undoIfTenantGoing(actor: AdminActor, tenantId: string, created: UserRecord): Promise<void> {
    const now = await store.getTenant(tenantId);
    if (now !== undefined && now.status !== 'deleting') return;
    const old = await store.deleteUser(tenantId, created.user_id, created.version);
    if (old !== undefined) await auditDeletion(actor, tenantId, userPath(tenantId, old.user_id), old);
    throw notFound('tenant_not_found');
  }

  return {
    deleteTenant: deletes.deleteTenant,
    deleteUser: deletes.deleteUser,

    /** The tenant, or 404 `tenant_not_found`. */
    async getTenant(tenantId) {
      const tenant = await store.getTenant(tenantId);
      if (tenant === undefined || tenant.status === 'deleting') throw notFound('tenant_not_found');
      return tenant;
    },

    /** The user of this tenant, or 404 `user_not_found` (a user of another tenant is not revealed). */
    async getUser(tenantId, userId) {
      const user = await sameTenantUser(store, tenantId, userId);
      if (user === undefined) throw notFound('user_not_found');
      return user;
    },

    /**
     * Creates or replaces a tenant from a validated PUT body (superadmin-only fields already
     * checked). A tenant admin's write keeps the superadmin-only fields as they are. A write that
     * leaves the tenant suspended ends its live sessions.
     */
    async putTenant(actor, tenantId, body, pre, deadline) {
      const existing = await store.getTenant(tenantId);
      if (existing?.status === 'deleting') {
        if (!actor.superadmin) throw notFound('tenant_not_found');
        throw new ConditionFailedError('The tenant is being deleted; repeat its DELETE to finish.', {
          code: 'version_conflict',
        });
      }
      // Tenants are provisioned by a superadmin; a tenant admin cannot (re)create its tenant.
      if (existing === undefined && !actor.superadmin) throw notFound('tenant_not_found');
      const expected = expectedVersion(pre, existing);
      const now = clock().toISOString();
      const target = auditTarget(tenantPath(tenantId), existing?.created_at ?? now);
      if (existing !== undefined) await repairAuditGap(tenantId, target, existing);

      const mcp = await storedMcp(mcpSettings, body.mcp, existing?.mcp, { tenantId, userId: '' }, undefined);
      const returnUrls = storedReturnUrls(body.oauth_return_urls, deps.urlGuard.allowInsecure);
      const catalog = await storedCatalog(mcpSettings, body.mcp_servers, existing?.mcp_servers, {
        tenantId,
        mcpName: body.mcp?.name ?? DEFAULT_MCP_NAME,
      });
      const keep = <K extends (typeof SUPERADMIN_FIELDS)[number]>(field: K, fallback: TenantRecord[K]) =>
        actor.superadmin ? fallback : (existing as TenantRecord)[field];
      const record: TenantRecord = {
        tenant_id: tenantId,
        name: body.name,
        dispatch_policy: body.dispatch_policy ?? 'per_room',
        agent_names: keep('agent_names', [...new Set(body.agent_names ?? [])]),
        // An omitted status keeps the current one: lifting a suspension is always explicit.
        status: keep('status', body.status ?? existing?.status ?? 'active'),
        webhook_dispatch: keep('webhook_dispatch', body.webhook_dispatch ?? false),
        sip_trunk_ids: keep('sip_trunk_ids', [...new Set(body.sip_trunk_ids ?? [])]),
        version: existing?.version ?? 0,
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      const max = keep('max_concurrent_sessions', body.max_concurrent_sessions ?? undefined);
      if (max !== undefined) record.max_concurrent_sessions = max;
      if (mcp !== undefined) record.mcp = mcp;
      if (catalog.length > 0) record.mcp_servers = catalog;
      if (returnUrls.length > 0) record.oauth_return_urls = returnUrls;
      const catalogHeadersGiven = new Set(
        (body.mcp_servers ?? [])
          .filter((e) => e.headers && Object.keys(e.headers).length > 0)
          .map((e) => e.name),
      );

      const stored = await writeAudited(actor, target, existing, record, {
        expected,
        pre,
        create: (r) => store.createTenant(r),
        update: (r, v) => store.updateTenant(r, v),
        fields: ['name', 'dispatch_policy', 'oauth_return_urls', ...SUPERADMIN_FIELDS],
        headersGiven: body.mcp?.headers !== undefined,
        moreChanged: changedCatalogFields(existing?.mcp_servers, record.mcp_servers, catalogHeadersGiven),
      });
      log.info('tenant written', { tenant_id: tenantId, version: stored.version });
      // A catalog entry removed (or no longer per-user, or of another auth type): its users'
      // connections go, their grants revoked with the clients the old entry named (docs/api.md
      // §8). Until the deadline: what is left is never sealed again (a dispatch reads only the
      // servers the catalog names) and goes with its user's or the tenant's delete.
      const after = perUserServers(stored);
      const retired = [...perUserServers(existing)].filter(([name, type]) => after.get(name) !== type);
      if (retired.length > 0 && existing !== undefined && deps.grants !== undefined) {
        await deps.grants.removeServers(
          existing,
          new Set(retired.map(([name]) => name)),
          deadlineOf(deadline),
        );
      }
      // Every write that leaves the tenant suspended ends what is still live, so repeating a
      // write whose LiveKit step failed finishes the job.
      // Ordering (docs/api.md §10): the status is written before the markers are listed; see the
      // fence in dispatch-saga.ts for why a session start racing this cannot be missed.
      return endedIfSuspended(stored, existing === undefined, async () =>
        endSessions(await store.activeSessionsOfTenant(tenantId), deadlineOf(deadline)),
      );
    },

    /**
     * Creates or replaces a user of an existing tenant from a validated PUT body. A write that
     * leaves the user suspended ends the user's live sessions.
     */
    async putUser(actor, tenantId, userId, body, pre, deadline) {
      const tenant = await store.getTenant(tenantId);
      if (tenant === undefined || tenant.status === 'deleting') throw notFound('tenant_not_found');
      // A user of another tenant is treated as absent here: nothing of it is read or revealed.
      const existing = await sameTenantUser(store, tenantId, userId);
      const expected = expectedVersion(pre, existing);
      const now = clock().toISOString();
      const target = auditTarget(userPath(tenantId, userId), existing?.created_at ?? now);
      if (existing !== undefined) await repairAuditGap(tenantId, target, existing);

      const mcp = await storedMcp(
        mcpSettings,
        body.mcp,
        existing?.mcp,
        { tenantId, userId },
        tenant.mcp?.url,
      );
      const record: UserRecord = {
        tenant_id: tenantId,
        user_id: userId,
        phone_numbers: [...new Set(body.phone_numbers ?? [])],
        // An omitted status keeps the current one: lifting a suspension (revoke) is always explicit.
        status: body.status ?? existing?.status ?? 'active',
        version: existing?.version ?? 0,
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      if (body.display_name !== undefined && body.display_name !== null)
        record.display_name = body.display_name;
      if (mcp !== undefined) record.mcp = mcp;

      const stored = await writeAudited(actor, target, existing, record, {
        expected,
        pre,
        create: (r) => store.createUser(r),
        update: (r, v) => store.updateUser(r, v),
        fields: ['display_name', 'phone_numbers', 'status'],
        headersGiven: body.mcp?.headers !== undefined,
      });
      if (existing === undefined) await undoIfTenantGoing(actor, tenantId, stored);
      log.info('user written', { tenant_id: tenantId, version: stored.version });
      // The status is written before the markers are listed (the fence in dispatch-saga.ts).
      return endedIfSuspended(stored, existing === undefined, () =>
        endUserSessions(tenantId, userId, deadlineOf(deadline)),
      );
    },

    /** Suspends the user (retrying on concurrent writes), then ends the user's live sessions. */
    async revokeUser(actor, tenantId, userId, deadline) {
      // Suspend first, then list the markers: a session start racing this either is listed or
      // sees the suspension in its fence (dispatch-saga.ts, docs/api.md §10).
      let stored: UserRecord | undefined;
      let before: UserRecord | undefined;
      for (let attempt = 0; stored === undefined; attempt++) {
        before = await sameTenantUser(store, tenantId, userId);
        if (before === undefined) throw notFound('user_not_found');
        const status: Status = 'suspended';
        try {
          stored = await store.updateUser(
            { ...before, status, updated_at: clock().toISOString() },
            before.version,
          );
        } catch (err) {
          if (!(err instanceof ConditionFailedError && err.code === 'version_conflict') || attempt >= 4)
            throw err;
        }
      }
      await audit({
        tenant_id: tenantId,
        target: auditTarget(userPath(tenantId, userId), stored.created_at),
        version: stored.version,
        actor: actor.sub,
        action: 'revoke',
        changed_fields: before?.status === 'suspended' ? [] : ['status'],
        at: stored.updated_at,
      });
      const progress = await endUserSessions(tenantId, userId, deadlineOf(deadline));
      log.info('user revoked', { tenant_id: tenantId, ended_sessions: progress.ended, done: progress.done });
      return { record: stored, endedSessions: progress.ended, done: progress.done };
    },
  };
}
