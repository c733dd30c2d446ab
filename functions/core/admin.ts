import type { McpBody, TenantBody, UserBody } from './admin-input.js';
import { releaseSessionResources } from './dispatcher.js';
import { ConditionFailedError, DomainError, ValidationError } from './errors.js';
import { addLogContext, type Log } from './log.js';
import type { AuditRecord, SessionRecord, Status, StoredMcp, TenantRecord, UserRecord } from './model.js';
import type { AdminStore, RoomApi } from './ports.js';
import {
  createOrRequirePrecondition,
  deleteVersion,
  expectedVersion,
  type Precondition,
} from './preconditions.js';
import { mcpHeadersProblems, originOf } from './resolve.js';
import type { SecretBox } from './sealing.js';
import { checkMcpUrl, type UrlGuardOptions } from './url-guard.js';

/** Scope of a tenant admin (with the tenant claim naming the tenant). */
export const ADMIN_SCOPE = 'dispatch:admin';
/** Scope of an operator who administers every tenant. */
export const SUPERADMIN_SCOPE = 'dispatch:superadmin';

/** Tenant fields only a superadmin may set (CONTRACT §6). */
export const SUPERADMIN_FIELDS = [
  'agent_names',
  'max_concurrent_sessions',
  'status',
  'webhook_dispatch',
  'sip_trunk_ids',
] as const;

const TENANT_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;
// 1–255 printable characters: no control characters and no lone surrogates.
const USER_ID = /^[^\p{Cc}\p{Cs}]+$/u;
const MAX_USER_ID = 255;
/** How old a write must be before its missing audit entry counts as lost (ms). */
const AUDIT_REPAIR_GRACE_MS = 60_000;
/** Users deleted per page of a cascading tenant delete. */
const CASCADE_PAGE = 25;

/** Who calls the admin API. */
export interface AdminActor {
  sub: string;
  superadmin: boolean;
  /** The tenant a tenant admin administers; unset for a superadmin without the claim. */
  tenantId: string | undefined;
}

/** Everything {@link createAdminService} is built from. */
export interface AdminServiceDeps {
  store: AdminStore;
  /** Seals tokens and headers at rest; makes their display fingerprints. */
  secretBox: SecretBox;
  /** Deletes the rooms of sessions ended by revoke, suspension or deletion. */
  livekit: RoomApi;
  /** Checks MCP URLs (CONTRACT §6). */
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

function notFound(code: 'tenant_not_found' | 'user_not_found'): DomainError {
  return new DomainError(code, code === 'tenant_not_found' ? 'No such tenant.' : 'No such user.');
}

function fieldErrors(message: string, errors: { path: string; message: string }[]): ValidationError {
  return new ValidationError(message, { details: { errors } });
}

/** The actor of a verified token, or 403 `forbidden` when it has no admin scope (or no tenant). */
export function actorOf(principal: { sub: string; scopes: Set<string>; tenantId?: string }): AdminActor {
  const superadmin = principal.scopes.has(SUPERADMIN_SCOPE);
  if (!superadmin && !(principal.scopes.has(ADMIN_SCOPE) && principal.tenantId !== undefined)) {
    throw new DomainError('forbidden', 'The token lacks the dispatch:admin scope or a tenant.');
  }
  return { sub: principal.sub, superadmin, tenantId: principal.tenantId };
}

/**
 * Checks that the actor may reach this tenant: 404 for a tenant the caller may not see, exactly
 * as for one that does not exist. Only a superadmin creating a tenant learns why an id is refused.
 */
export function checkTenantAccess(
  actor: AdminActor,
  tenantId: string,
  options: { creating?: boolean } = {},
): void {
  if (!actor.superadmin && actor.tenantId !== tenantId) throw notFound('tenant_not_found');
  addLogContext({ tenant_id: tenantId });
  if (!TENANT_ID.test(tenantId)) {
    if (options.creating && actor.superadmin) {
      throw fieldErrors('The tenant id is invalid.', [
        { path: 'tenantId', message: 'must match [a-z0-9][a-z0-9-]{1,62}' },
      ]);
    }
    throw notFound('tenant_not_found');
  }
}

/** Checks a user id from a path: 400 when it is being written, else 404 (no such user). */
export function checkUserId(userId: string, options: { writing?: boolean } = {}): void {
  if ([...userId].length <= MAX_USER_ID && USER_ID.test(userId)) return;
  if (options.writing) {
    throw fieldErrors('The user id is invalid.', [
      { path: 'userId', message: `must be 1-${MAX_USER_ID} printable characters` },
    ]);
  }
  throw notFound('user_not_found');
}

/** 403 `field_requires_superadmin` when a tenant admin's raw tenant body names a superadmin-only field. */
export function checkSuperadminFields(actor: AdminActor, raw: Record<string, unknown>): void {
  const restricted = SUPERADMIN_FIELDS.filter((f) => Object.hasOwn(raw, f));
  if (!actor.superadmin && restricted.length > 0) {
    throw new DomainError(
      'field_requires_superadmin',
      `Only a superadmin may set ${restricted.join(', ')}.`,
      {
        details: { fields: restricted },
      },
    );
  }
}

/** The resource path of a tenant below `/v1/admin/` (also its audit target). */
export function tenantPath(tenantId: string): string {
  return `tenants/${tenantId}`;
}

/** The resource path of a user below `/v1/admin/` (also its audit target). */
export function userPath(tenantId: string, userId: string): string {
  return `tenants/${tenantId}/users/${encodeURIComponent(userId)}`;
}

/**
 * Audit target of one incarnation of a record: its path plus its creation time, so a record
 * deleted and created again starts a new version series instead of colliding with the old one.
 */
function auditTarget(path: string, createdAt: string): string {
  return `${path}#${createdAt}`;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function changedMcpFields(
  before: StoredMcp | undefined,
  after: StoredMcp | undefined,
  headersGiven: boolean,
) {
  const out: string[] = [];
  for (const f of ['url', 'transport', 'allowed_tools', 'name'] as const) {
    if (!same(before?.[f], after?.[f])) out.push(`mcp.${f}`);
  }
  if (
    before?.token_fingerprint !== after?.token_fingerprint ||
    (before?.token_sealed === undefined) !== (after?.token_sealed === undefined)
  ) {
    out.push('mcp.token');
  }
  if (
    headersGiven ||
    !same(before?.header_names, after?.header_names) ||
    (before?.headers_sealed === undefined) !== (after?.headers_sealed === undefined)
  ) {
    out.push('mcp.headers');
  }
  return out;
}

function changedFields<T extends { mcp?: StoredMcp }>(
  before: T | undefined,
  after: T,
  fields: readonly (keyof T & string)[],
  headersGiven: boolean,
): string[] {
  const out: string[] = [];
  for (const f of fields) if (!same(before?.[f], after[f])) out.push(f);
  out.push(...changedMcpFields(before?.mcp, after.mcp, headersGiven));
  return out;
}

function tokenFingerprints(before: StoredMcp | undefined, after: StoredMcp | undefined) {
  const out: { old_token_fingerprint?: string; new_token_fingerprint?: string } = {};
  if (before?.token_fingerprint !== undefined) out.old_token_fingerprint = before.token_fingerprint;
  if (after?.token_fingerprint !== undefined) out.new_token_fingerprint = after.token_fingerprint;
  return out;
}

/** The admin operations of CONTRACT §6, behind {@link createAdminService}. */
export type AdminService = ReturnType<typeof createAdminService>;

/**
 * Creates the admin domain: tenant and user writes with their preconditions, write-only secrets
 * bound to the origin they were set for, audit entries (repaired when a write lost its own),
 * and the effects of suspension, revoke and deletion on live sessions.
 */
export function createAdminService(deps: AdminServiceDeps) {
  const { store, secretBox, livekit, clock, log } = deps;

  async function sameTenantUser(tenantId: string, userId: string): Promise<UserRecord | undefined> {
    const user = await store.getUser(userId);
    return user?.tenant_id === tenantId ? user : undefined;
  }

  /**
   * Builds the stored MCP settings from a PUT's `mcp`. Omitted `token`/`headers` keep the stored
   * ones, `null` clears them. Secrets are bound to the origin they are set for: kept secrets may
   * not follow this record's URL to another origin (422: send them again, or null).
   */
  async function storedMcp(
    input: McpBody | null | undefined,
    old: StoredMcp | undefined,
    binding: { tenantId: string; userId: string },
    inheritedUrl: string | undefined,
  ): Promise<StoredMcp | undefined> {
    if (input === undefined || input === null) return undefined;
    const errors: { path: string; message: string }[] = [];
    const url = input.url === undefined ? undefined : await checkMcpUrl(input.url, deps.urlGuard);
    const origin = originOf(url ?? inheritedUrl);
    const out: StoredMcp = {};
    if (url !== undefined) out.url = url;
    if (input.transport !== undefined) out.transport = input.transport;
    if (input.allowed_tools !== undefined) out.allowed_tools = [...new Set(input.allowed_tools)];
    if (input.name !== undefined) out.name = input.name;

    const headers =
      input.headers === null || (input.headers && Object.keys(input.headers).length === 0)
        ? null
        : input.headers;
    if (headers) {
      for (const p of mcpHeadersProblems(headers)) {
        errors.push({ path: p.name === '' ? 'mcp.headers' : `mcp.headers.${p.name}`, message: p.message });
      }
    }
    const newSecret =
      (input.token !== undefined && input.token !== null) || (headers !== undefined && headers !== null);
    const keepToken = input.token === undefined && old?.token_sealed !== undefined;
    const keepHeaders = headers === undefined && old?.headers_sealed !== undefined;
    // A kept secret may stay only where it was set: same origin, or this record names no URL of its own.
    const mustMatch = url !== undefined || newSecret;
    const mismatch = old?.credentials_origin === undefined || old.credentials_origin !== origin;
    if (keepToken && mustMatch && mismatch) {
      errors.push({
        path: 'mcp.token',
        message: 'must be sent again (or null) when the token would go to another origin',
      });
    }
    if (keepHeaders && mustMatch && mismatch) {
      errors.push({
        path: 'mcp.headers',
        message: 'must be sent again (or null) when the headers would go to another origin',
      });
    }
    if (newSecret && origin === undefined) {
      errors.push({
        path: 'mcp.url',
        message: 'is required here or on the tenant to set a token or headers',
      });
    }
    if (errors.length > 0) throw fieldErrors('The MCP settings are invalid.', errors);

    if (input.token !== undefined && input.token !== null) {
      out.token_sealed = await secretBox.seal(input.token, { ...binding, field: 'token' });
      out.token_fingerprint = secretBox.fingerprint(input.token);
    } else if (keepToken) {
      out.token_sealed = old!.token_sealed;
      if (old!.token_fingerprint !== undefined) out.token_fingerprint = old!.token_fingerprint;
    }
    if (headers) {
      out.headers_sealed = await secretBox.seal(JSON.stringify(headers), { ...binding, field: 'headers' });
      out.header_names = Object.keys(headers).sort();
    } else if (keepHeaders) {
      out.headers_sealed = old!.headers_sealed;
      out.header_names = old!.header_names ?? [];
    }
    if (out.token_sealed !== undefined || out.headers_sealed !== undefined) {
      out.credentials_origin = newSecret ? origin : old?.credentials_origin;
    }
    return out;
  }

  /** Writes the audit record of one write; retried, and a lost one is logged (the gap shows). */
  async function audit(entry: AuditRecord): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await store.putAudit(entry);
        return;
      } catch (err) {
        if (attempt === 3) {
          log.error('audit write failed', {
            target: entry.target,
            version: entry.version,
            error: (err as Error).name,
          });
        }
      }
    }
  }

  /**
   * Creates or updates a record as the precondition decided, then audits the write: which
   * fields changed and the token fingerprints before and after. `record.updated_at` is the
   * time of the write.
   */
  async function writeAudited<
    T extends { tenant_id: string; version: number; updated_at: string; mcp?: StoredMcp },
  >(
    actor: AdminActor,
    target: string,
    existing: T | undefined,
    record: T,
    write: {
      expected: number | 'create';
      pre: Precondition;
      create: (record: T) => Promise<T>;
      update: (record: T, expectedVersion: number) => Promise<T>;
      fields: readonly (keyof T & string)[];
      headersGiven: boolean;
    },
  ): Promise<T> {
    const { expected } = write;
    const stored =
      expected === 'create'
        ? await createOrRequirePrecondition(() => write.create(record), write.pre)
        : await write.update(record, expected);
    await audit({
      tenant_id: record.tenant_id,
      target,
      version: stored.version,
      actor: actor.sub,
      action: existing === undefined ? 'create' : 'update',
      changed_fields: changedFields(existing, stored, write.fields, write.headersGiven),
      ...tokenFingerprints(existing?.mcp, stored.mcp),
      at: record.updated_at,
    });
    return stored;
  }

  /** Audits the deletion of a record at `path` (its last version, one past the stored one). */
  async function auditDeletion(
    actor: AdminActor,
    tenantId: string,
    path: string,
    old: { version: number; created_at: string; mcp?: StoredMcp },
  ): Promise<void> {
    await audit({
      tenant_id: tenantId,
      target: auditTarget(path, old.created_at),
      version: old.version + 1,
      actor: actor.sub,
      action: 'delete',
      changed_fields: [],
      ...tokenFingerprints(old.mcp, undefined),
      at: clock().toISOString(),
    });
  }

  /**
   * Repairs a gap left by a write whose audit step was lost: the record's current version gets
   * an audit entry saying a write happened, by an unknown actor. A write younger than the grace
   * period may still be writing its own entry (which would then lose to the repair), so it is left.
   */
  async function repairAuditGap(
    tenantId: string,
    target: string,
    current: { version: number; updated_at: string },
  ) {
    if (clock().getTime() - Date.parse(current.updated_at) < AUDIT_REPAIR_GRACE_MS) return;
    if ((await store.getAudit(target, current.version)) !== undefined) return;
    log.warn('audit gap repaired', { target, version: current.version });
    await audit({
      tenant_id: tenantId,
      target,
      version: current.version,
      actor: 'unknown',
      action: current.version === 1 ? 'create' : 'update',
      changed_fields: ['unknown'],
      at: current.updated_at,
    });
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

      const mcp = await storedMcp(body.mcp, existing?.mcp, { tenantId, userId: '' }, undefined);
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

      const mcp = await storedMcp(body.mcp, existing?.mcp, { tenantId, userId }, tenant.mcp?.url);
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
