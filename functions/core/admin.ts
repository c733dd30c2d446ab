import { type AdminActor, notFound, SUPERADMIN_FIELDS, tenantPath, userPath } from './admin-access.js';
import { auditTarget, createAuditor } from './admin-audit.js';
import type { TenantBody, UserBody } from './admin-input.js';
import { ConditionFailedError, DomainError } from './errors.js';
import type { Log } from './log.js';
import { storedMcp } from './mcp-settings.js';
import type { SessionRecord, Status, TenantRecord, UserRecord } from './model.js';
import type { AdminStore, RoomApi } from './ports.js';
import { deleteVersion, expectedVersion, type Precondition } from './preconditions.js';
import type { SecretBox } from './sealing.js';
import { releaseSessionResources } from './session-resources.js';
import type { UrlGuardOptions } from './url-guard.js';

export {
  ADMIN_SCOPE,
  type AdminActor,
  actorOf,
  checkSuperadminFields,
  checkTenantAccess,
  checkUserId,
  SUPERADMIN_FIELDS,
  SUPERADMIN_SCOPE,
  tenantPath,
  userPath,
} from './admin-access.js';

/** Users deleted per page of a cascading tenant delete. */
const CASCADE_PAGE = 25;

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
  /** How long one cascading delete works before it stops (repeat to continue). */
  cascadeBudgetMs: number;
}

/** A write's effect: the stored record, whether it was created, and how many sessions it ended. */
export interface WriteResult<T> {
  record: T;
  created: boolean;
  endedSessions: number;
}

/** A tenant delete either finished or stopped on its time budget after deleting some users. */
export type TenantDeleteResult = { done: true } | { done: false; deletedUsers: number };

/** The admin operations of docs/api.md §6 (tenants, users, revoke), behind {@link createAdminService}. */
export interface AdminService {
  /** The tenant, or 404 `tenant_not_found`. */
  getTenant(tenantId: string): Promise<TenantRecord>;
  /** The user of this tenant, or 404 `user_not_found` (a user of another tenant is not revealed). */
  getUser(tenantId: string, userId: string): Promise<UserRecord>;
  /** Creates or replaces a tenant; a write that leaves it suspended ends its live sessions. */
  putTenant(
    actor: AdminActor,
    tenantId: string,
    body: TenantBody,
    pre: Precondition,
  ): Promise<WriteResult<TenantRecord>>;
  /** Deletes a tenant after ending its sessions (with its users only with `cascade`), within the time budget. */
  deleteTenant(
    actor: AdminActor,
    tenantId: string,
    pre: Precondition,
    cascade: boolean,
  ): Promise<TenantDeleteResult>;
  /** Creates or replaces a user of an existing tenant; a write that leaves it suspended ends its sessions. */
  putUser(
    actor: AdminActor,
    tenantId: string,
    userId: string,
    body: UserBody,
    pre: Precondition,
  ): Promise<WriteResult<UserRecord>>;
  /** Ends the user's sessions, then deletes and audits the user; 404 when it is gone. */
  deleteUser(actor: AdminActor, tenantId: string, userId: string, pre: Precondition): Promise<void>;
  /** Suspends the user (retrying on concurrent writes), then ends the user's live sessions. */
  revokeUser(
    actor: AdminActor,
    tenantId: string,
    userId: string,
  ): Promise<{ record: UserRecord; endedSessions: number }>;
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

  async function sameTenantUser(tenantId: string, userId: string): Promise<UserRecord | undefined> {
    const user = await store.getUser(userId);
    return user?.tenant_id === tenantId ? user : undefined;
  }

  /** Deletes the LiveKit rooms of these sessions, then ends the sessions; returns how many ended. */
  async function endSessions(sessions: SessionRecord[]): Promise<number> {
    const active = sessions.filter((s) => s.status === 'active');
    for (const room of new Set(active.map((s) => s.room_name))) await livekit.deleteRoom(room);
    let ended = 0;
    const at = clock();
    for (const s of active) {
      if ((await store.endSession(s, at)) === undefined) continue;
      ended += 1;
      // Release what room_finished would have: that event now finds the sessions ended and
      // leaves them alone, so without this the tenant's lease stays taken until it expires.
      await releaseSessionResources(store, s);
    }
    return ended;
  }

  async function endUserSessions(tenantId: string, userId: string): Promise<number> {
    return endSessions(await store.activeSessionsOfUser(tenantId, userId));
  }

  async function deleteUserAndAudit(actor: AdminActor, tenantId: string, user: UserRecord, version?: number) {
    await endUserSessions(tenantId, user.user_id);
    const old = await store.deleteUser(tenantId, user.user_id, version);
    if (old === undefined) return false;
    await auditDeletion(actor, tenantId, userPath(tenantId, old.user_id), old);
    return true;
  }

  return {
    /** The tenant, or 404 `tenant_not_found`. */
    async getTenant(tenantId: string): Promise<TenantRecord> {
      const tenant = await store.getTenant(tenantId);
      if (tenant === undefined) throw notFound('tenant_not_found');
      return tenant;
    },

    /** The user of this tenant, or 404 `user_not_found` (a user of another tenant is not revealed). */
    async getUser(tenantId: string, userId: string): Promise<UserRecord> {
      const user = await sameTenantUser(tenantId, userId);
      if (user === undefined) throw notFound('user_not_found');
      return user;
    },

    /**
     * Creates or replaces a tenant from a validated PUT body (superadmin-only fields already
     * checked). A tenant admin's write keeps the superadmin-only fields as they are. A write that
     * leaves the tenant suspended ends its live sessions.
     */
    async putTenant(
      actor: AdminActor,
      tenantId: string,
      body: TenantBody,
      pre: Precondition,
    ): Promise<WriteResult<TenantRecord>> {
      const existing = await store.getTenant(tenantId);
      // Tenants are provisioned by a superadmin; a tenant admin cannot (re)create its tenant.
      if (existing === undefined && !actor.superadmin) throw notFound('tenant_not_found');
      const expected = expectedVersion(pre, existing);
      const now = clock().toISOString();
      const target = auditTarget(tenantPath(tenantId), existing?.created_at ?? now);
      if (existing !== undefined) await repairAuditGap(tenantId, target, existing);

      const mcp = await storedMcp(mcpSettings, body.mcp, existing?.mcp, { tenantId, userId: '' }, undefined);
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

      const stored = await writeAudited(actor, target, existing, record, {
        expected,
        pre,
        create: (r) => store.createTenant(r),
        update: (r, v) => store.updateTenant(r, v),
        fields: ['name', 'dispatch_policy', ...SUPERADMIN_FIELDS],
        headersGiven: body.mcp?.headers !== undefined,
      });
      log.info('tenant written', { tenant_id: tenantId, version: stored.version });
      // Every write that leaves the tenant suspended ends what is still live, so repeating a
      // write whose LiveKit step failed finishes the job.
      const endedSessions =
        stored.status === 'suspended' ? await endSessions(await store.activeSessionsOfTenant(tenantId)) : 0;
      return { record: stored, created: existing === undefined, endedSessions };
    },

    /**
     * Deletes a tenant after ending its sessions; one with users only with `cascade` (else 409
     * `tenant_has_users`), deleting and auditing them a page at a time until the time budget
     * runs out (repeat to continue).
     */
    async deleteTenant(
      actor: AdminActor,
      tenantId: string,
      pre: Precondition,
      cascade: boolean,
    ): Promise<TenantDeleteResult> {
      const existing = await store.getTenant(tenantId);
      if (existing === undefined) throw notFound('tenant_not_found');
      const version = deleteVersion(pre, existing);
      const started = Date.now();

      const hasUsers = await store.hasUsers(tenantId);
      if (hasUsers && !cascade) {
        throw new DomainError('tenant_has_users', 'The tenant has users; delete them or use ?cascade=true.');
      }
      await endSessions(await store.activeSessionsOfTenant(tenantId));
      if (hasUsers) {
        // In pages, each user deleted and audited on its own: an interrupted cascade resumes
        // where it stopped when the request is repeated.
        let deleted = 0;
        let pages = 0;
        while (await store.hasUsers(tenantId)) {
          // Every request makes progress (one page at least) before the budget may stop it.
          if (pages > 0 && Date.now() - started > deps.cascadeBudgetMs) {
            return { done: false, deletedUsers: deleted };
          }
          // Always the first page: the users of the previous page are gone.
          const page = await store.listUsers(tenantId, { limit: CASCADE_PAGE });
          pages += 1;
          for (const user of page.items) {
            if (await deleteUserAndAudit(actor, tenantId, user)) deleted += 1;
          }
        }
      }
      const old = await store.deleteTenant(tenantId, version);
      if (old !== undefined) {
        await auditDeletion(actor, tenantId, tenantPath(tenantId), old);
        log.info('tenant deleted', { tenant_id: tenantId });
      }
      return { done: true };
    },

    /**
     * Creates or replaces a user of an existing tenant from a validated PUT body. A write that
     * leaves the user suspended ends the user's live sessions.
     */
    async putUser(
      actor: AdminActor,
      tenantId: string,
      userId: string,
      body: UserBody,
      pre: Precondition,
    ): Promise<WriteResult<UserRecord>> {
      const tenant = await store.getTenant(tenantId);
      if (tenant === undefined) throw notFound('tenant_not_found');
      // A user of another tenant is treated as absent here: nothing of it is read or revealed.
      const existing = await sameTenantUser(tenantId, userId);
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
      log.info('user written', { tenant_id: tenantId, version: stored.version });
      const endedSessions = stored.status === 'suspended' ? await endUserSessions(tenantId, userId) : 0;
      return { record: stored, created: existing === undefined, endedSessions };
    },

    /** Ends the user's sessions, then deletes and audits the user; 404 when it is gone. */
    async deleteUser(actor: AdminActor, tenantId: string, userId: string, pre: Precondition): Promise<void> {
      const user = await sameTenantUser(tenantId, userId);
      if (user === undefined) throw notFound('user_not_found');
      const version = deleteVersion(pre, user);
      if (!(await deleteUserAndAudit(actor, tenantId, user, version))) throw notFound('user_not_found');
    },

    /** Suspends the user (retrying on concurrent writes), then ends the user's live sessions. */
    async revokeUser(
      actor: AdminActor,
      tenantId: string,
      userId: string,
    ): Promise<{ record: UserRecord; endedSessions: number }> {
      // Suspend first, so no new session starts while the live ones are being ended.
      let stored: UserRecord | undefined;
      let before: UserRecord | undefined;
      for (let attempt = 0; stored === undefined; attempt++) {
        before = await sameTenantUser(tenantId, userId);
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
      const ended = await endUserSessions(tenantId, userId);
      log.info('user revoked', { tenant_id: tenantId, ended_sessions: ended });
      return { record: stored, endedSessions: ended };
    },
  };
}
