import { claimKey } from '../../functions/adapters/schema.js';
import type {
  ConnectionReader,
  ConnectionStore,
  OneTimeItem,
  PendingPointer,
  StoredClient,
} from '../../functions/core/connections/ports.js';
import { ConditionFailedError, KeyTooLongError, StoreUnavailableError } from '../../functions/core/errors.js';
import type {
  ConnectionRecord,
  ReauthReason,
  SessionRecord,
  TenantRecord,
  UserRecord,
} from '../../functions/core/model.js';
import {
  type ClaimAttempt,
  type ClaimOptions,
  type ClaimRef,
  type ClaimView,
  type DispatchStore,
  type Page,
  type PageRequest,
  StoreConflict,
} from '../../functions/core/ports.js';

/** A claim as the fake keeps it: the port's view, its hold and its expiry (epoch ms). */
export type MemoryClaim = ClaimView & { holdUntil: number; expiresAt: number };

/** The fake's key of a claim reference (readable, and naming every part). */
export function refKey(ref: ClaimRef): string {
  switch (ref.kind) {
    case 'event':
      return JSON.stringify(['event', ref.id]);
    case 'dispatch':
      return JSON.stringify(['dispatch', ref.room, ref.agent, ref.participant ?? null]);
    case 'idempotency':
      return JSON.stringify(['idempotency', ref.tenant, ref.user, ref.key]);
  }
}

/** The fake's key of a user: users are keyed by (tenant, user id). */
export const userKey = (tenantId: string, userId: string) => JSON.stringify([tenantId, userId]);

const sessionKey = (s: SessionRecord) =>
  JSON.stringify([s.room_name, s.room_sid ?? null, s.agent_name, s.participant_identity]);

/**
 * The in-memory {@link DispatchStore} of the unit tests, with the claim, lease, rate and session
 * semantics of `DynamoStore`. test/integration/store-contract.test.ts runs the same suite against
 * both, and `implements DispatchStore` makes tsc fail when the port changes, so it cannot drift.
 * Its maps are public so tests can look inside (and age a claim by setting `holdUntil`).
 */
export class MemoryStore implements DispatchStore, ConnectionReader {
  tenants = new Map<string, TenantRecord>();
  users = new Map<string, UserRecord>();
  claims = new Map<string, MemoryClaim>();
  leases = new Map<string, string>();
  leaseExpiry = new Map<string, number>();
  /** Admission times (epoch ms) per (tenant, user), the sliding window of `hitRate`. */
  rates = new Map<string, number[]>();
  sessions = new Map<string, SessionRecord>();
  /** Active-session markers by session key. */
  markers = new Map<string, SessionRecord>();
  /** Session-id pointers (docs/api.md §9): sid → session key. */
  pointers = new Map<string, string>();
  /** Connections by (tenant, user, server), as `keys.connection` keys them. */
  connections = new Map<string, ConnectionRecord>();
  /** Makes `putSession` fail as an unavailable store would. */
  failPutSession = false;
  private n = 0;

  /** `clock`: epoch ms, `Date.now` by default. */
  constructor(private readonly clock: () => number = Date.now) {}

  async getTenant(id: string) {
    return this.tenants.get(id);
  }
  async getUser(tenantId: string, id: string) {
    return this.users.get(userKey(tenantId, id));
  }
  /** Seeds a user under its (tenant, user id). */
  setUser(record: UserRecord) {
    this.users.set(userKey(record.tenant_id, record.user_id), record);
  }
  async tenantBySipTrunk(trunk: string) {
    return [...this.tenants.values()].find((t) => t.sip_trunk_ids.includes(trunk));
  }
  async userByPhoneNumber(tenantId: string, e164: string) {
    return [...this.users.values()].find((u) => u.tenant_id === tenantId && u.phone_numbers.includes(e164));
  }

  /** Stores (or replaces) a connection, as the connections store writes one. */
  putConnection(record: ConnectionRecord): void {
    this.connections.set(JSON.stringify([record.tenant_id, record.user_id, record.server]), { ...record });
  }
  async listConnections(tenantId: string, userId: string) {
    return [...this.connections.values()]
      .filter((c) => c.tenant_id === tenantId && c.user_id === userId)
      .map((c) => ({ ...c }));
  }

  async tryClaim(ref: ClaimRef, options: ClaimOptions): Promise<ClaimAttempt> {
    const k = refKey(ref);
    const now = this.clock();
    const found = this.claims.get(k);
    const current = found !== undefined && found.expiresAt >= now ? this.view(found) : undefined;
    if (current !== undefined && !current.stale) return { won: false, current };
    this.n += 1;
    const owner = `owner-${this.n}`;
    this.claims.set(k, {
      owner,
      state: 'in_progress',
      attrs: { ...(options.attrs ?? {}) },
      stale: false,
      holdUntil: now + (options.holdSeconds ?? 30) * 1000,
      expiresAt: now + options.ttlSeconds * 1000,
    });
    return { won: true, owner, previous: found === undefined ? undefined : this.view(found) };
  }
  async getClaim(ref: ClaimRef) {
    if (!this.fits(ref)) throw new KeyTooLongError();
    const c = this.claims.get(refKey(ref));
    return c === undefined || c.expiresAt < this.clock() ? undefined : this.view(c);
  }
  async completeClaim(ref: ClaimRef, owner: string, attrs: Record<string, unknown>, ttlSeconds: number) {
    const c = this.held(ref, owner);
    c.state = 'completed';
    c.attrs = { ...c.attrs, ...attrs };
    c.expiresAt = this.clock() + ttlSeconds * 1000;
  }
  async updateClaim(ref: ClaimRef, owner: string, attrs: Record<string, unknown>, holdSeconds?: number) {
    const c = this.held(ref, owner);
    c.attrs = { ...c.attrs, ...attrs };
    if (holdSeconds !== undefined) c.holdUntil = this.clock() + holdSeconds * 1000 - 1;
  }
  async releaseClaim(ref: ClaimRef, owner: string) {
    const k = refKey(ref);
    if (this.claims.get(k)?.owner !== owner) return false;
    return this.claims.delete(k);
  }

  /** The same key limits as DynamoStore (partition 2048, sort 1024 bytes), on the same keys. */
  fits(ref: ClaimRef) {
    const key = claimKey(ref);
    return Buffer.byteLength(key.pk, 'utf8') <= 2048 && Buffer.byteLength(key.sk, 'utf8') <= 1024;
  }

  async acquireLease(tenantId: string, max: number, holder: string, ttlSeconds: number) {
    const now = this.clock();
    for (let slot = 0; slot < max; slot++) {
      const k = `${tenantId}#${slot}`;
      if (!this.leases.has(k) || (this.leaseExpiry.get(k) ?? 0) < now) {
        this.leases.set(k, holder);
        this.leaseExpiry.set(k, now + ttlSeconds * 1000);
        return slot;
      }
    }
    return null;
  }
  async releaseLease(tenantId: string, slot: number, holder: string) {
    const k = `${tenantId}#${slot}`;
    if (this.leases.get(k) !== holder) return false;
    this.leaseExpiry.delete(k);
    return this.leases.delete(k);
  }
  async rateWindow() {
    // The fake's window is its own map, read by hitRate itself.
    return { item: undefined };
  }
  async hitRate(tenantId: string, userId: string, limitPerMinute: number) {
    const k = JSON.stringify([tenantId, userId]);
    const now = this.clock();
    const admitted = (this.rates.get(k) ?? []).filter((t) => t > now - 60_000);
    if (admitted.length >= limitPerMinute) return false;
    this.rates.set(k, [...admitted, now]);
    return true;
  }
  async markSessionActive(record: SessionRecord) {
    this.markers.set(sessionKey(record), { ...record, status: 'active' });
  }
  async unmarkSessionActive(record: SessionRecord) {
    this.markers.delete(sessionKey(record));
  }
  async putSessionPointer(record: SessionRecord & { sid: string }) {
    this.pointers.set(record.sid, sessionKey(record));
  }
  async deleteSessionPointer(sid: string) {
    this.pointers.delete(sid);
  }

  async putSession(record: SessionRecord) {
    if (this.failPutSession) throw new StoreUnavailableError();
    const k = sessionKey(record);
    if (this.sessions.get(k)?.status === 'ended') {
      throw new ConditionFailedError('Session already ended.', { code: StoreConflict.sessionEnded });
    }
    this.sessions.set(k, { ...record });
  }
  async roomSessions(room: string) {
    return [...this.sessions.values()].filter((s) => s.room_name === room).map((s) => ({ ...s }));
  }
  async endSession(session: SessionRecord, endedAt = new Date(this.clock())) {
    const s = this.sessions.get(sessionKey(session));
    if (s?.status !== 'active') return undefined;
    s.status = 'ended';
    s.ended_at = endedAt.toISOString();
    s.duration_seconds = Math.max(0, Math.round((endedAt.getTime() - Date.parse(s.created_at)) / 1000));
    return { ...s };
  }

  private view(c: MemoryClaim): ClaimView {
    return {
      owner: c.owner,
      state: c.state,
      attrs: { ...c.attrs },
      stale: c.state === 'in_progress' && c.holdUntil < this.clock(),
    };
  }

  private held(ref: ClaimRef, owner: string): MemoryClaim {
    const c = this.claims.get(refKey(ref));
    if (c?.owner !== owner || c.expiresAt < this.clock()) {
      throw new ConditionFailedError('Claim is held by another attempt.', { code: StoreConflict.claimLost });
    }
    return c;
  }
}

/**
 * The in-memory {@link ConnectionStore} of unit tests, with the semantics of the DynamoDB one
 * (functions/adapters/dynamo/connections.ts): versioned puts, the §8 refresh lock conditions,
 * single-use one-time items. test/integration/connection-store.test.ts runs one suite on both.
 */
export class MemoryConnectionStore implements ConnectionStore {
  connections = new Map<string, ConnectionRecord>();
  pointers = new Map<string, PendingPointer>();
  oneTime = new Map<string, OneTimeItem>();
  clients = new Map<string, StoredClient>();
  rates = new Map<string, number[]>();

  constructor(private readonly clock: () => number = Date.now) {}

  private static key(...parts: string[]) {
    return JSON.stringify(parts);
  }
  private conn(r: Pick<ConnectionRecord, 'tenant_id' | 'user_id' | 'server'>) {
    return MemoryConnectionStore.key(r.tenant_id, r.user_id, r.server);
  }

  async listConnections(tenantId: string, userId: string) {
    return [...this.connections.values()]
      .filter((c) => c.tenant_id === tenantId && c.user_id === userId)
      .sort((a, b) => (a.server < b.server ? -1 : 1))
      .map((c) => structuredClone(c));
  }
  async listTenantConnections(
    tenantId: string,
    filter: { status?: ConnectionRecord['status'] },
    page: PageRequest = {},
  ): Promise<Page<ConnectionRecord>> {
    const order = (c: ConnectionRecord) => MemoryConnectionStore.key(c.status, c.user_id, c.server);
    const all = [...this.connections.values()]
      .filter((c) => c.tenant_id === tenantId && (filter.status === undefined || c.status === filter.status))
      .sort((a, b) => (order(a) < order(b) ? -1 : 1));
    const after = typeof page.cursor?.after === 'string' ? page.cursor.after : undefined;
    const rest = after === undefined ? all : all.filter((c) => order(c) > after);
    const items = rest.slice(0, Math.min(page.limit ?? 50, 100));
    const last = items.at(-1);
    return {
      items: items.map((c) => structuredClone(c)),
      cursor: rest.length > items.length && last !== undefined ? { after: order(last) } : undefined,
    };
  }
  async getConnection(tenantId: string, userId: string, server: string) {
    const c = this.connections.get(MemoryConnectionStore.key(tenantId, userId, server));
    return c === undefined ? undefined : structuredClone(c);
  }
  async putConnection(record: ConnectionRecord, expectedVersion: number | null) {
    const current = this.connections.get(this.conn(record));
    if (expectedVersion === null ? current !== undefined : current?.version !== expectedVersion) {
      throw new ConditionFailedError('The connection changed.', {
        code: expectedVersion === null ? StoreConflict.alreadyExists : StoreConflict.versionConflict,
      });
    }
    this.connections.set(this.conn(record), structuredClone(record));
  }
  async deleteConnection(tenantId: string, userId: string, server: string, expectedVersion?: number) {
    const k = MemoryConnectionStore.key(tenantId, userId, server);
    const current = this.connections.get(k);
    if (current === undefined) return undefined;
    if (expectedVersion !== undefined && current.version !== expectedVersion) {
      throw new ConditionFailedError('Version is stale.', { code: StoreConflict.versionConflict });
    }
    this.connections.delete(k);
    return current;
  }
  async takeRefreshLock(record: ConnectionRecord, lock: { owner: string; until: number; now: number }) {
    const current = this.connections.get(this.conn(record));
    if (current === undefined || current.rt_version !== record.rt_version) return undefined;
    if (current.refresh_lock !== undefined && !(current.refresh_lock.until < lock.now)) return undefined;
    current.refresh_lock = { owner: lock.owner, until: lock.until };
    return structuredClone(current);
  }
  async storeRefresh(
    record: ConnectionRecord,
    owner: string,
    changes: Parameters<ConnectionStore['storeRefresh']>[2],
  ) {
    const current = this.connections.get(this.conn(record));
    if (current?.rt_version !== record.rt_version || current.refresh_lock?.owner !== owner) return false;
    const next: ConnectionRecord = { ...current, status: 'connected', updated_at: changes.refreshed_at };
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete (next as unknown as Record<string, unknown>)[k];
      else (next as unknown as Record<string, unknown>)[k] = v;
    }
    delete next.refresh_lock;
    delete next.reason;
    delete next.last_error;
    next.rt_version = record.rt_version + 1;
    next.version = current.version + 1;
    this.connections.set(this.conn(record), next);
    return true;
  }
  async markNeedsReauth(
    record: ConnectionRecord,
    reason: ReauthReason,
    options: { owner?: string; lastError?: string; requiredScopes?: string[]; now: string },
  ) {
    const current = this.connections.get(this.conn(record));
    if (current?.rt_version !== record.rt_version) return false;
    if (options.owner !== undefined && current.refresh_lock?.owner !== options.owner) return false;
    current.status = 'needs_reauth';
    current.reason = reason;
    current.updated_at = options.now;
    if (options.lastError !== undefined) current.last_error = options.lastError;
    if (options.requiredScopes !== undefined) current.required_scopes = options.requiredScopes;
    current.version += 1;
    delete current.refresh_lock;
    return true;
  }
  async releaseRefreshLock(record: ConnectionRecord, owner: string) {
    const current = this.connections.get(this.conn(record));
    if (current?.refresh_lock?.owner === owner) delete current.refresh_lock;
  }
  async listPending(tenantId: string, userId: string) {
    const prefix = MemoryConnectionStore.key(tenantId, userId).slice(0, -1);
    return [...this.pointers.entries()].filter(([k]) => k.startsWith(prefix)).map(([, p]) => ({ ...p }));
  }
  async getPendingPointer(tenantId: string, userId: string, server: string) {
    const p = this.pointers.get(MemoryConnectionStore.key(tenantId, userId, server));
    return p === undefined ? undefined : { ...p };
  }
  async setPendingPointer(tenantId: string, userId: string, pointer: PendingPointer) {
    const k = MemoryConnectionStore.key(tenantId, userId, pointer.server);
    const old = this.pointers.get(k);
    this.pointers.set(k, { ...pointer });
    return old;
  }
  async clearPendingPointer(tenantId: string, userId: string, server: string, stateHash: string) {
    const k = MemoryConnectionStore.key(tenantId, userId, server);
    if (this.pointers.get(k)?.state_hash === stateHash) this.pointers.delete(k);
  }
  async putOneTime(kind: 'state' | 'result', hash: string, item: OneTimeItem) {
    const k = MemoryConnectionStore.key(kind, hash);
    if (this.oneTime.has(k)) throw new ConditionFailedError('The conditional write lost.');
    this.oneTime.set(k, { ...item });
  }
  async getOneTime(kind: 'state' | 'result', hash: string) {
    const item = this.oneTime.get(MemoryConnectionStore.key(kind, hash));
    return item === undefined ? undefined : { ...item };
  }
  async takeOneTime(kind: 'state' | 'result', hash: string, condition: { now: number; userId?: string }) {
    const item = this.oneTime.get(MemoryConnectionStore.key(kind, hash));
    if (item === undefined || item.used || !(condition.now < item.expires_at)) return false;
    if (condition.userId !== undefined && item.user_id !== condition.userId) return false;
    item.used = true;
    return true;
  }
  async getClient(tenantId: string, issuer: string) {
    const c = this.clients.get(MemoryConnectionStore.key(tenantId, issuer));
    return c === undefined ? undefined : structuredClone(c);
  }
  async putClient(client: StoredClient) {
    this.clients.set(MemoryConnectionStore.key(client.tenant_id, client.issuer), structuredClone(client));
  }
  async forgetDcrClient(tenantId: string, issuer: string, clientId: string) {
    const c = this.clients.get(MemoryConnectionStore.key(tenantId, issuer));
    if (c?.dcr?.client_id !== clientId) return false;
    delete c.dcr;
    return true;
  }
  async hitAuthorizeRate(tenantId: string, userId: string, limitPerMinute: number) {
    const k = MemoryConnectionStore.key(tenantId, userId);
    const now = this.clock();
    const admitted = (this.rates.get(k) ?? []).filter((t) => t > now - 60_000);
    if (admitted.length >= limitPerMinute) return false;
    this.rates.set(k, [...admitted, now]);
    return true;
  }
}
