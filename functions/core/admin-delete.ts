import { type AdminActor, notFound, sameTenantUser, tenantPath, userPath } from './admin-access.js';
import type { Auditor } from './admin-audit.js';
import type { AdminService, GrantCleanup } from './admin-service.js';
import { DomainError } from './errors.js';
import type { Log } from './log.js';
import type { TenantRecord, UserRecord } from './model.js';
import type { AdminStore } from './ports.js';
import { deleteVersion } from './preconditions.js';
import type { createSessionEnder, Deadline, EndProgress } from './session-ends.js';

/** Users deleted per page of a cascading tenant delete. */
const CASCADE_PAGE = 25;

/** What the deletes are built from: the admin service's store, audit and session ender. */
export interface AdminDeleteDeps {
  store: AdminStore;
  clock: () => Date;
  log: Log;
  auditDeletion: Auditor['auditDeletion'];
  sessions: ReturnType<typeof createSessionEnder>;
  /** The request's deadline, or the default budget from now when it passed none. */
  deadlineOf: (deadline: Deadline | undefined) => Deadline;
  /** The users' connections: deleting a user or a tenant revokes their grants (§8). */
  grants?: GrantCleanup | undefined;
}

/**
 * The admin deletes (docs/api.md §6, §10): a user's, and a tenant's cascade over its sessions,
 * users and grants, each resumable after a deadline stopped it. The other half of the tenant
 * delete's ordering argument, the user create's fence, is `undoIfTenantGoing` in admin.ts.
 */
export function createAdminDeletes(deps: AdminDeleteDeps): Pick<AdminService, 'deleteTenant' | 'deleteUser'> {
  const { store, clock, log, auditDeletion, deadlineOf } = deps;
  const { endSessions, endUserSessions } = deps.sessions;
  const pastDeadline = (deadline: Deadline) => clock().getTime() >= deadline;

  /**
   * Deletes the user record first, then ends the user's sessions (the record's removal is the
   * write a racing session start's fence reads, see dispatch-saga.ts). Whether the user existed.
   */
  async function deleteUserAndAudit(
    actor: AdminActor,
    tenant: TenantRecord | undefined,
    tenantId: string,
    user: UserRecord,
    deadline: Deadline,
    version?: number,
  ): Promise<{ existed: boolean; progress: EndProgress }> {
    const old = await store.deleteUser(tenantId, user.user_id, version);
    if (old !== undefined) await auditDeletion(actor, tenantId, userPath(tenantId, old.user_id), old);
    const progress = await endUserSessions(tenantId, user.user_id, deadline);
    // Sessions first (they are live now); the grants after, once the sessions are all ended.
    if (progress.done) await removeGrants(tenant, user.user_id);
    return { existed: old !== undefined, progress };
  }

  /**
   * Deletes the user's connections and revokes their grants (docs/api.md §8), after the user
   * record is gone: `complete` reads the user strongly consistently before it stores a grant, so
   * none lands afterwards, except from a `complete` already past that read, which a repeated
   * DELETE (the user gone) cleans up. How many there were.
   */
  async function removeGrants(tenant: TenantRecord | undefined, userId: string): Promise<number> {
    if (deps.grants === undefined || tenant === undefined) return 0;
    return deps.grants.removeAll(tenant, userId);
  }

  return {
    /**
     * Deletes a tenant after ending its sessions; one with users only with `cascade` (else 409
     * `tenant_has_users`), deleting and auditing them a page at a time until the time budget
     * runs out (repeat to continue).
     */
    async deleteTenant(actor, tenantId, pre, cascade, deadline) {
      let tenant = await store.getTenant(tenantId);
      if (tenant === undefined) throw notFound('tenant_not_found');
      const until = deadlineOf(deadline);
      if (tenant.status !== 'deleting') {
        const version = deleteVersion(pre, tenant);
        if (!cascade && (await store.hasUsers(tenantId))) {
          throw new DomainError(
            'tenant_has_users',
            'The tenant has users; delete them or use ?cascade=true.',
          );
        }
        // Mark the tenant `deleting` first (docs/api.md §10), then list its sessions and users.
        // A user create writes its user, then re-reads the tenant (putUser): if that read missed
        // this mark, it came before it, so the user was written before the listing below and
        // is found; if it saw the mark, the create undoes itself. A session start's fence reads
        // the tenant after its marker the same way (dispatch-saga.ts). A repeat of this request
        // (after a 202) finds the tenant `deleting` and resumes, without its precondition again.
        tenant = await store.updateTenant(
          { ...tenant, status: 'deleting', updated_at: clock().toISOString() },
          version ?? tenant.version,
        );
      }
      const sessions = await endSessions(await store.activeSessionsOfTenant(tenantId), until);
      if (!sessions.done) return { done: false, deletedUsers: 0, endedSessions: sessions.ended };
      // In pages, each user deleted and audited on its own: an interrupted cascade resumes where
      // it stopped when the request is repeated.
      let deleted = 0;
      let ended = sessions.ended;
      let pages = 0;
      while (await store.hasUsers(tenantId)) {
        // Every request makes progress (one page at least) before the deadline may stop it.
        if (pages > 0 && pastDeadline(until))
          return { done: false, deletedUsers: deleted, endedSessions: ended };
        // Always the first page: the users of the previous page are gone.
        const page = await store.listUsers(tenantId, { limit: CASCADE_PAGE });
        pages += 1;
        for (const user of page.items) {
          const { existed, progress } = await deleteUserAndAudit(actor, tenant, tenantId, user, until);
          if (existed) deleted += 1;
          ended += progress.ended;
          if (!progress.done) return { done: false, deletedUsers: deleted, endedSessions: ended };
        }
      }
      // Connections no user listing found (a `complete` that raced its user's delete): swept
      // from the tenant-wide index, revoked while the tenant's catalog still names their clients.
      if (deps.grants !== undefined && !(await deps.grants.removeServers(tenant, 'all', until)))
        return { done: false, deletedUsers: deleted, endedSessions: ended };
      const old = await store.deleteTenant(tenantId, tenant.version);
      if (old !== undefined) {
        await auditDeletion(actor, tenantId, tenantPath(tenantId), old);
        log.info('tenant deleted', { tenant_id: tenantId });
      }
      return { done: true };
    },

    /**
     * Deletes and audits the user, then ends the user's sessions (until the deadline; a repeat
     * resumes and answers done). 404 when neither the user nor any of its sessions is left.
     */
    async deleteUser(actor, tenantId, userId, pre, deadline) {
      const user = await sameTenantUser(store, tenantId, userId);
      const tenant = deps.grants === undefined ? undefined : await store.getTenant(tenantId);
      if (user === undefined) {
        // A delete that stopped on its deadline is repeated with the user gone: finish its work.
        const left = await store.activeSessionsOfUser(tenantId, userId);
        const progress = await endSessions(left, deadlineOf(deadline));
        if (!progress.done) return { done: false, endedSessions: progress.ended };
        const grants = await removeGrants(tenant, userId);
        if (left.length === 0 && grants === 0) throw notFound('user_not_found');
        return { done: true };
      }
      const version = deleteVersion(pre, user);
      const { existed, progress } = await deleteUserAndAudit(
        actor,
        tenant,
        tenantId,
        user,
        deadlineOf(deadline),
        version,
      );
      if (!existed && progress.ended === 0) throw notFound('user_not_found');
      return progress.done ? { done: true } : { done: false, endedSessions: progress.ended };
    },
  };
}
