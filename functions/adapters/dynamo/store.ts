import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionServiceStore } from '../../core/connections/context.js';
import type {
  AuditRecord,
  SessionPointer,
  SessionRecord,
  TenantRecord,
  UserRecord,
} from '../../core/model.js';
import type {
  ClaimAttempt,
  ClaimOptions,
  ClaimRef,
  Page,
  PageRequest,
  RateWindowRead,
  Store,
} from '../../core/ports.js';
import { Audit } from './audit.js';
import { type Claim, ExpiringClaims } from './claims.js';
import { TableClient } from './client.js';
import { Connections } from './connections.js';
import { Leases } from './leases.js';
import { Renewals } from './renewals.js';
import { Sessions } from './sessions.js';
import { Tenants } from './tenants.js';
import { UniqueClaims } from './unique-claims.js';
import { Users } from './users.js';

export { StoreConflict } from '../../core/ports.js';
export type { Claim } from './claims.js';

/** Epoch milliseconds. */
export type Clock = () => number;

/** Construction options of {@link DynamoStore}. */
export interface DynamoStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Epoch milliseconds; `Date.now` when omitted. Tests move it to expire claims and leases. */
  clock?: Clock;
  /** How long session items are kept after they were created, in s (default 90 days). */
  sessionRetentionSeconds?: number;
  /**
   * How old a phone/trunk claim must be before it may be taken over when its owner's record no
   * longer lists it (a write interrupted between its steps), in s (default 300).
   */
  orphanGraceSeconds?: number;
}

/**
 * DynamoDB persistence for every function, one table (schema.ts), one module per aggregate:
 * tenants, users, uniqueness claims (phone numbers, SIP trunks), expiring claims (event ids,
 * dispatches, Idempotency-Keys), quota leases and rate counters, sessions and audit records.
 *
 * Every write is a single-item conditional write: dynalite, the local store, has no
 * transactions, so multi-item changes are ordered, idempotent steps that a retry completes.
 * A lost condition becomes a `ConditionFailedError` (codes in `StoreConflict`); throttling, 5xx,
 * timeouts and network failures after the SDK's retries become `StoreUnavailableError`; a key
 * over DynamoDB's limits is a `KeyTooLongError`, an item that is not its record a
 * `MalformedItemError`. Records come back without key attributes.
 */
export class DynamoStore implements Store {
  private readonly tenants: Tenants;
  private readonly users: Users;
  private readonly claims: ExpiringClaims;
  private readonly leases: Leases;
  private readonly sessions: Sessions;
  private readonly audit: Audit;
  private readonly renewals: Renewals;
  /** Connections, pending authorizations, results and OAuth clients (docs/api.md §8). */
  readonly connections: Connections;

  constructor(options: DynamoStoreOptions) {
    const table = new TableClient(options.client, options.tableName);
    const clock = options.clock ?? Date.now;
    const unique = new UniqueClaims(table, {
      clock,
      orphanGraceSeconds: options.orphanGraceSeconds ?? 300,
      listedBy: async (space, ownerId, value) =>
        space.kind === 'phone'
          ? ((await this.users.get(space.tenantId, ownerId))?.phone_numbers.includes(value) ?? false)
          : ((await this.tenants.get(ownerId))?.sip_trunk_ids.includes(value) ?? false),
    });
    this.tenants = new Tenants(table, unique);
    this.users = new Users(table, unique);
    this.claims = new ExpiringClaims(table, clock);
    this.leases = new Leases(table, clock);
    const retention = options.sessionRetentionSeconds ?? 90 * 24 * 3600;
    this.sessions = new Sessions(table, clock, retention);
    this.renewals = new Renewals(table, clock, retention);
    this.audit = new Audit(table);
    this.connections = new Connections(table, this.leases, clock);
  }

  getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.tenants.get(tenantId);
  }
  createTenant(record: TenantRecord): Promise<TenantRecord> {
    return this.tenants.create(record);
  }
  updateTenant(record: TenantRecord, expectedVersion: number): Promise<TenantRecord> {
    return this.tenants.update(record, expectedVersion);
  }
  deleteTenant(tenantId: string, expectedVersion?: number): Promise<TenantRecord | undefined> {
    return this.tenants.delete(tenantId, expectedVersion);
  }
  listTenants(page?: PageRequest): Promise<Page<TenantRecord>> {
    return this.tenants.list(page);
  }
  tenantBySipTrunk(trunkId: string): Promise<TenantRecord | undefined> {
    return this.tenants.bySipTrunk(trunkId);
  }

  getUser(tenantId: string, userId: string): Promise<UserRecord | undefined> {
    return this.users.get(tenantId, userId);
  }
  createUser(record: UserRecord): Promise<UserRecord> {
    return this.users.create(record);
  }
  updateUser(record: UserRecord, expectedVersion: number): Promise<UserRecord> {
    return this.users.update(record, expectedVersion);
  }
  deleteUser(tenantId: string, userId: string, expectedVersion?: number): Promise<UserRecord | undefined> {
    return this.users.delete(tenantId, userId, expectedVersion);
  }
  listUsers(tenantId: string, page?: PageRequest): Promise<Page<UserRecord>> {
    return this.users.list(tenantId, page);
  }
  /** Whether the tenant has at least one user (eventually consistent index). */
  async hasUsers(tenantId: string): Promise<boolean> {
    return (await this.users.list(tenantId, { limit: 1 })).items.length > 0;
  }
  userByPhoneNumber(tenantId: string, e164: string): Promise<UserRecord | undefined> {
    return this.users.byPhoneNumber(tenantId, e164);
  }

  tryClaim(ref: ClaimRef, options: ClaimOptions): Promise<ClaimAttempt<Claim>> {
    return this.claims.tryClaim(ref, options);
  }
  getClaim(ref: ClaimRef): Promise<Claim | undefined> {
    return this.claims.get(ref);
  }
  completeClaim(
    ref: ClaimRef,
    owner: string,
    attrs: Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<void> {
    return this.claims.complete(ref, owner, attrs, ttlSeconds);
  }
  updateClaim(
    ref: ClaimRef,
    owner: string,
    attrs: Record<string, unknown>,
    holdSeconds?: number,
  ): Promise<void> {
    return this.claims.update(ref, owner, attrs, holdSeconds);
  }
  releaseClaim(ref: ClaimRef, owner: string): Promise<boolean> {
    return this.claims.release(ref, owner);
  }
  fits(ref: ClaimRef): boolean {
    return this.claims.fits(ref);
  }

  acquireLease(tenantId: string, max: number, holder: string, ttlSeconds: number): Promise<number | null> {
    return this.leases.acquire(tenantId, max, holder, ttlSeconds);
  }
  releaseLease(tenantId: string, slot: number, holder: string): Promise<boolean> {
    return this.leases.release(tenantId, slot, holder);
  }
  rateWindow(tenantId: string, userId: string): Promise<RateWindowRead> {
    return this.leases.rateWindow(tenantId, userId);
  }

  hitRate(tenantId: string, userId: string, limitPerMinute: number, seen?: RateWindowRead): Promise<boolean> {
    return this.leases.hitRate(tenantId, userId, limitPerMinute, undefined, seen);
  }

  putSession(record: SessionRecord): Promise<void> {
    return this.sessions.put(record);
  }
  roomSessions(roomName: string): Promise<SessionRecord[]> {
    return this.sessions.ofRoom(roomName);
  }
  endSession(session: SessionRecord, endedAt?: Date): Promise<SessionRecord | undefined> {
    return this.sessions.end(session, endedAt);
  }
  listSessions(tenantId: string, page?: PageRequest): Promise<Page<SessionRecord>> {
    return this.sessions.list(tenantId, page);
  }
  markSessionActive(record: SessionRecord): Promise<void> {
    return this.sessions.mark(record);
  }
  unmarkSessionActive(record: SessionRecord): Promise<void> {
    return this.sessions.unmark(record);
  }
  activeSessionsOfTenant(tenantId: string): Promise<SessionRecord[]> {
    return this.sessions.active(tenantId);
  }
  activeSessionsOfUser(tenantId: string, userId: string): Promise<SessionRecord[]> {
    return this.sessions.active(tenantId, userId);
  }

  putSessionPointer(record: SessionRecord & { sid: string }): Promise<void> {
    return this.renewals.putPointer(record);
  }
  deleteSessionPointer(sid: string): Promise<void> {
    return this.renewals.deletePointer(sid);
  }
  sessionPointer(sid: string): Promise<SessionPointer | undefined> {
    return this.renewals.pointer(sid);
  }
  getSession(ref: SessionPointer): Promise<SessionRecord | undefined> {
    return this.sessions.get(ref);
  }
  useAssertionJti(sid: string, jti: string, untilSeconds: number): Promise<boolean> {
    return this.renewals.useJti(sid, jti, untilSeconds);
  }
  renewalRateWindow(sid: string): Promise<RateWindowRead> {
    return this.leases.renewalRateWindow(sid);
  }

  hitRenewalRate(sid: string, limitPerMinute: number, seen?: RateWindowRead): Promise<boolean> {
    return this.leases.hitRenewalRate(sid, limitPerMinute, seen);
  }
  extendLease(tenantId: string, slot: number, holder: string, ttlSeconds: number): Promise<boolean> {
    return this.leases.extend(tenantId, slot, holder, ttlSeconds);
  }

  putAudit(record: AuditRecord): Promise<boolean> {
    return this.audit.put(record);
  }
  getAudit(target: string, version: number): Promise<AuditRecord | undefined> {
    return this.audit.get(target, version);
  }
  listAudit(tenantId: string, page?: PageRequest): Promise<Page<AuditRecord>> {
    return this.audit.list(tenantId, page);
  }

  /** What the connection service stores in (docs/api.md §8): connections plus the caller's records. */
  connectionStore(): ConnectionServiceStore {
    const c = this.connections;
    return {
      listConnections: c.listConnections.bind(c),
      listTenantConnections: c.listTenantConnections.bind(c),
      getConnection: c.getConnection.bind(c),
      putConnection: c.putConnection.bind(c),
      deleteConnection: c.deleteConnection.bind(c),
      takeRefreshLock: c.takeRefreshLock.bind(c),
      storeRefresh: c.storeRefresh.bind(c),
      markNeedsReauth: c.markNeedsReauth.bind(c),
      releaseRefreshLock: c.releaseRefreshLock.bind(c),
      listPending: c.listPending.bind(c),
      getPendingPointer: c.getPendingPointer.bind(c),
      setPendingPointer: c.setPendingPointer.bind(c),
      clearPendingPointer: c.clearPendingPointer.bind(c),
      putOneTime: c.putOneTime.bind(c),
      getOneTime: c.getOneTime.bind(c),
      takeOneTime: c.takeOneTime.bind(c),
      getClient: c.getClient.bind(c),
      putClient: c.putClient.bind(c),
      forgetDcrClient: c.forgetDcrClient.bind(c),
      hitAuthorizeRate: c.hitAuthorizeRate.bind(c),
      getTenant: (id) => this.getTenant(id),
      getUser: (tenantId, id) => this.getUser(tenantId, id),
      putAudit: (record) => this.putAudit(record),
    };
  }
}
