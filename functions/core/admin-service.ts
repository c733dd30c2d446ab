import type { AdminActor } from './admin-access.js';
import type { TenantBody, UserBody } from './admin-input.js';
import type { TenantRecord, UserRecord } from './model.js';
import type { Precondition } from './preconditions.js';
import type { Deadline } from './session-ends.js';

/**
 * The admin service's interface (docs/api.md §6): what the admin app calls, and what each call
 * answers. Built by `createAdminService` (admin.ts).
 */

/**
 * A write's effect: the stored record, whether it was created, how many sessions it ended, and
 * whether every session it had to end was reached before the deadline (else repeat it).
 */
export interface WriteResult<T> {
  record: T;
  created: boolean;
  endedSessions: number;
  done: boolean;
}

/** A tenant delete either finished or stopped on its deadline after deleting some users. */
export type TenantDeleteResult =
  | { done: true }
  | { done: false; deletedUsers: number; endedSessions: number };

/** A user delete either finished, or stopped on its deadline with the user gone and sessions left. */
export type UserDeleteResult = { done: true } | { done: false; endedSessions: number };

/**
 * What a delete does to the users' connections (docs/api.md §8: deleting a user, a catalog entry
 * or a tenant revokes the grants it held). Each connection is deleted first and its grant revoked
 * after (best effort at the authorization server), so a failed revocation never leaves a grant
 * we would still use. Implemented by the connection service's admin part.
 */
export interface GrantCleanup {
  /** Deletes every connection of the user and revokes their grants; how many there were. */
  removeAll(tenant: TenantRecord, userId: string): Promise<number>;
  /**
   * Deletes the tenant's connections to `servers` (or to every server), across its users,
   * revoking each grant with the client `tenant`'s catalog names for it, until the deadline
   * (one page at least); whether it finished.
   */
  removeServers(
    tenant: TenantRecord,
    servers: ReadonlySet<string> | 'all',
    deadline: Deadline,
  ): Promise<boolean>;
}

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
    deadline?: Deadline,
  ): Promise<WriteResult<TenantRecord>>;
  /** Deletes a tenant after ending its sessions (with its users only with `cascade`), within the time budget. */
  deleteTenant(
    actor: AdminActor,
    tenantId: string,
    pre: Precondition,
    cascade: boolean,
    deadline?: Deadline,
  ): Promise<TenantDeleteResult>;
  /** Creates or replaces a user of an existing tenant; a write that leaves it suspended ends its sessions. */
  putUser(
    actor: AdminActor,
    tenantId: string,
    userId: string,
    body: UserBody,
    pre: Precondition,
    deadline?: Deadline,
  ): Promise<WriteResult<UserRecord>>;
  /** Deletes and audits the user, then ends the user's sessions; 404 when nothing of it is left. */
  deleteUser(
    actor: AdminActor,
    tenantId: string,
    userId: string,
    pre: Precondition,
    deadline?: Deadline,
  ): Promise<UserDeleteResult>;
  /** Suspends the user (retrying on concurrent writes), then ends the user's live sessions. */
  revokeUser(
    actor: AdminActor,
    tenantId: string,
    userId: string,
    deadline?: Deadline,
  ): Promise<{ record: UserRecord; endedSessions: number; done: boolean }>;
}
