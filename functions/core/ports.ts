import type { AuditRecord, SessionPointer, SessionRecord, TenantRecord, UserRecord } from './model.js';

/**
 * The ports of the domain: every store and LiveKit interface the core and the apps depend on,
 * defined once. The DynamoDB store (adapters/dynamo) and the LiveKit gateway (adapters/livekit.ts)
 * implement them; unit tests pass in-memory fakes through the same types. The other aggregates'
 * ports have one home each beside their code: connections and OAuth tokens in
 * connections/ports.ts, the OAuth client's in oauth/ports.ts, the JWT verifier in caller.ts.
 */

/** Codes of the store's `ConditionFailedError`s. */
export const StoreConflict = {
  /** Create-only write, but the record exists (in the caller's own tenant for users). */
  alreadyExists: 'already_exists',
  /** The record's version is not the expected one, or the record is gone. */
  versionConflict: 'version_conflict',
  /** An E.164 number is claimed by another user of the tenant (docs/api.md §6). */
  phoneNumberTaken: 'phone_number_taken',
  /** A SIP trunk id is claimed by another tenant. */
  sipTrunkTaken: 'sip_trunk_taken',
  /** The session already ended; it cannot be written as active again. */
  sessionEnded: 'session_ended',
  /** The caller no longer owns the claim it tried to complete or update. */
  claimLost: 'claim_lost',
} as const;

/** One page of a list; `cursor` is the store's raw position (seal it before it leaves). */
export interface Page<T> {
  items: T[];
  cursor: Record<string, unknown> | undefined;
}

/** Paging input: at most `limit` items (default 50, at most 100) after `cursor`. */
export interface PageRequest {
  limit?: number;
  cursor?: Record<string, unknown> | undefined;
}

/**
 * What an expiring claim guards, by name; the adapter maps it to its key (adapters/schema.ts).
 * `dispatch.room` is the room sid when the room exists (webhook), else its name.
 */
export type ClaimRef =
  | { kind: 'event'; id: string }
  | { kind: 'dispatch'; room: string; agent: string; participant?: string }
  | { kind: 'idempotency'; tenant: string; user: string; key: string };

/** A claim as the store reads it back. */
export interface ClaimView {
  /** Random token of the attempt that holds the claim. */
  owner: string;
  state: 'in_progress' | 'completed';
  /** What its holder recorded (hashes, room, dispatch id; nothing secret). */
  attrs: Record<string, unknown>;
  /** In progress past its hold: its attempt died; a new attempt may take over. */
  stale: boolean;
}

/** Result of {@link ClaimStore.tryClaim}. */
export type ClaimAttempt<C extends ClaimView = ClaimView> =
  | {
      won: true;
      /** Owner token: pass it to complete/release so a late attempt cannot touch another's claim. */
      owner: string;
      /** The expired or stale claim this attempt took over, if any (check LiveKit before redoing its work). */
      previous: C | undefined;
    }
  | { won: false; current: C };

/** Options of {@link ClaimStore.tryClaim}. */
export interface ClaimOptions {
  /** Lifetime of the claim, in s. */
  ttlSeconds: number;
  /** How long an in-progress claim is held before another attempt may take it over, in s (default 30). */
  holdSeconds?: number;
  /** Caller data stored with the claim. */
  attrs?: Record<string, unknown>;
}

/** Tenants, and the SIP trunk ids each one owns. */
export interface TenantStore {
  getTenant(tenantId: string): Promise<TenantRecord | undefined>;
  /** Create-only, above every earlier incarnation's version; `already_exists` or `sip_trunk_taken`. */
  createTenant(record: TenantRecord): Promise<TenantRecord>;
  /** Replaces at `expectedVersion` (stored as `expectedVersion + 1`); `version_conflict` or `sip_trunk_taken`. */
  updateTenant(record: TenantRecord, expectedVersion: number): Promise<TenantRecord>;
  /** Deletes (at `expectedVersion` when given); the deleted record, or undefined if there was none. */
  deleteTenant(tenantId: string, expectedVersion?: number): Promise<TenantRecord | undefined>;
  listTenants(page?: PageRequest): Promise<Page<TenantRecord>>;
  /** The tenant whose `sip_trunk_ids` lists this trunk, or undefined. */
  tenantBySipTrunk(trunkId: string): Promise<TenantRecord | undefined>;
}

/**
 * Users, keyed by (tenant, user id): the same id in another tenant is another user; the phone
 * numbers each one owns, unique within its tenant.
 */
export interface UserStore {
  /** The user of this tenant, read strongly consistent, or undefined. */
  getUser(tenantId: string, userId: string): Promise<UserRecord | undefined>;
  /**
   * Create-only, at a version above every version an earlier incarnation of this (tenant, user)
   * had (versions never repeat for an id); `already_exists` or `phone_number_taken`.
   */
  createUser(record: UserRecord): Promise<UserRecord>;
  /** Replaces at `expectedVersion`; `version_conflict` or `phone_number_taken`. */
  updateUser(record: UserRecord, expectedVersion: number): Promise<UserRecord>;
  /** Deletes the user of `tenantId`; the deleted record, or undefined if this tenant has no such user. */
  deleteUser(tenantId: string, userId: string, expectedVersion?: number): Promise<UserRecord | undefined>;
  listUsers(tenantId: string, page?: PageRequest): Promise<Page<UserRecord>>;
  hasUsers(tenantId: string): Promise<boolean>;
  /** The user of this tenant whose `phone_numbers` lists this E.164 number, or undefined. */
  userByPhoneNumber(tenantId: string, e164: string): Promise<UserRecord | undefined>;
}

/** Expiring claims: webhook event ids, dispatches, Idempotency-Keys. */
export interface ClaimStore {
  /** Wins if absent, expired, or in progress past its hold; the winner gets a fresh owner token. */
  tryClaim(ref: ClaimRef, options: ClaimOptions): Promise<ClaimAttempt>;
  /** The claim, or undefined if absent or expired. */
  getClaim(ref: ClaimRef): Promise<ClaimView | undefined>;
  /** Marks it completed (never taken over until its TTL), merges `attrs`, sets its lifetime; `claim_lost`. */
  completeClaim(
    ref: ClaimRef,
    owner: string,
    attrs: Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<void>;
  /** Merges `attrs` into a held claim and, with `holdSeconds`, sets its hold from now; `claim_lost`. */
  updateClaim(
    ref: ClaimRef,
    owner: string,
    attrs: Record<string, unknown>,
    holdSeconds?: number,
  ): Promise<void>;
  /** Deletes it if `owner` holds it; whether it was deleted. */
  releaseClaim(ref: ClaimRef, owner: string): Promise<boolean>;
  /**
   * Whether the claim's key fits the store's key limits (no I/O). One that does not names
   * nothing of ours; every store call with it would throw `KeyTooLongError`.
   */
  fits(ref: ClaimRef): boolean;
}

/** Quota leases (a tenant's concurrent sessions) and the per-user start rate. */
export interface LeaseStore {
  /** One of `max` slots for `holder`, or null when all are taken. */
  acquireLease(tenantId: string, max: number, holder: string, ttlSeconds: number): Promise<number | null>;
  /** Frees the slot if `holder` still holds it. */
  releaseLease(tenantId: string, slot: number, holder: string): Promise<boolean>;
  /**
   * The (tenant, user) start rate window as it is now (strongly consistent), read ahead so that
   * {@link hitRate} can admit with one conditional write. Opaque to core.
   */
  rateWindow(tenantId: string, userId: string): Promise<RateWindowRead>;
  /**
   * Admits one start of (tenant, user) unless `limitPerMinute` were admitted in the last 60 s
   * (sliding window); false when refused (nothing written). `seen` (from {@link rateWindow})
   * spares its first read.
   */
  hitRate(tenantId: string, userId: string, limitPerMinute: number, seen?: RateWindowRead): Promise<boolean>;
}

/** Sessions: one per (room[ incarnation], agent, participant). */
export interface SessionStore {
  /** Writes (or rewrites while active) the session; `session_ended` if it already ended. */
  putSession(record: SessionRecord): Promise<void>;
  /** Every session of the room (strongly consistent), any state. */
  roomSessions(roomName: string): Promise<SessionRecord[]>;
  /** Ends an active session once; the ended session, or undefined if it was not active. */
  endSession(session: SessionRecord, endedAt?: Date): Promise<SessionRecord | undefined>;
  listSessions(tenantId: string, page?: PageRequest): Promise<Page<SessionRecord>>;
  /**
   * Records that this session may be live, in a base-table partition of its tenant
   * (docs/api.md §10). Written before its dispatch is created; removed by
   * {@link SessionStore.unmarkSessionActive} once it has ended and its room is gone.
   */
  markSessionActive(record: SessionRecord): Promise<void>;
  /** Removes the session's active marker (absent is success). */
  unmarkSessionActive(record: SessionRecord): Promise<void>;
  /**
   * The tenant's sessions that may be live: its active markers, read strongly consistent from
   * the base table (never an index). A session being created appears here as soon as its
   * dispatch may exist, possibly before its session record is written.
   */
  activeSessionsOfTenant(tenantId: string): Promise<SessionRecord[]>;
  /** One user's {@link SessionStore.activeSessionsOfTenant}. */
  activeSessionsOfUser(tenantId: string, userId: string): Promise<SessionRecord[]>;
  /**
   * Writes the pointer from the session's `sid` to its key (docs/api.md §9), base table, before
   * its dispatch is created, so a worker's first renewal finds the session.
   */
  putSessionPointer(record: SessionRecord & { sid: string }): Promise<void>;
  /** Deletes a session id's pointer (a failed start; absent is success). */
  deleteSessionPointer(sid: string): Promise<void>;
}

/** A rate window item as a store read it; only the store that read it looks inside. */
export interface RateWindowRead {
  readonly item: Readonly<Record<string, unknown>> | undefined;
}

/** What worker renewals (docs/api.md §9) read and write; every read strongly consistent. */
export interface RenewalStore {
  /** The pointer of a session id, or undefined. */
  sessionPointer(sid: string): Promise<SessionPointer | undefined>;
  /** The session at the pointer's key, any state, or undefined. */
  getSession(ref: SessionPointer): Promise<SessionRecord | undefined>;
  /** Uses a worker assertion's `jti` once (kept until `untilSeconds`); false when used before. */
  useAssertionJti(sid: string, jti: string, untilSeconds: number): Promise<boolean>;
  /**
   * The session's renewal rate window as it is now (strongly consistent), read ahead so that
   * {@link hitRenewalRate} can admit with one conditional write. Opaque to core.
   */
  renewalRateWindow(sid: string): Promise<RateWindowRead>;
  /**
   * One renewal of the session unless `limitPerMinute` were admitted in the last 60 s; `seen`
   * (from {@link renewalRateWindow}) spares its first read. Refused: nothing written.
   */
  hitRenewalRate(sid: string, limitPerMinute: number, seen?: RateWindowRead): Promise<boolean>;
  /** Sets the lease's expiry to now + `ttlSeconds` while `holder` holds it; whether it did. */
  extendLease(tenantId: string, slot: number, holder: string, ttlSeconds: number): Promise<boolean>;
}

/** Audit records, one per (target, version). */
export interface AuditStore {
  /** Writes it unless that version's record exists; whether this call wrote it. */
  putAudit(record: AuditRecord): Promise<boolean>;
  getAudit(target: string, version: number): Promise<AuditRecord | undefined>;
  listAudit(tenantId: string, page?: PageRequest): Promise<Page<AuditRecord>>;
}

/** Every store port: what the DynamoDB facade implements. */
export interface Store
  extends TenantStore,
    UserStore,
    ClaimStore,
    LeaseStore,
    SessionStore,
    AuditStore,
    RenewalStore {}

/** The store operations the dispatcher, the session service and the webhook need. */
export type DispatchStore = Pick<
  Store,
  | 'getTenant'
  | 'getUser'
  | 'tenantBySipTrunk'
  | 'userByPhoneNumber'
  | keyof ClaimStore
  | keyof LeaseStore
  | 'putSession'
  | 'roomSessions'
  | 'endSession'
  | 'markSessionActive'
  | 'unmarkSessionActive'
  | 'putSessionPointer'
  | 'deleteSessionPointer'
>;

/** What the credentials function (docs/api.md §9) reads and writes. */
export type CredentialsStore = Pick<Store, 'getTenant' | 'getUser' | keyof RenewalStore>;

/** What freeing an ended session's lease and claims takes. */
export type SessionResourceStore = Pick<Store, 'releaseLease' | 'getClaim' | 'releaseClaim'>;

/** The store operations the admin domain and the admin API use. */
export type AdminStore = Pick<
  Store,
  | Exclude<keyof TenantStore, 'tenantBySipTrunk'>
  | Exclude<keyof UserStore, 'userByPhoneNumber'>
  | keyof AuditStore
  | 'listSessions'
  | 'activeSessionsOfUser'
  | 'activeSessionsOfTenant'
  | 'endSession'
  | 'unmarkSessionActive'
  | keyof SessionResourceStore
>;

/** One agent dispatch as LiveKit reports it. */
export interface DispatchInfo {
  id: string;
  agentName: string;
  metadata: string;
}

/** The LiveKit agent-dispatch calls the dispatcher makes. */
export interface DispatchApi {
  /** AgentDispatchService.CreateDispatch; LiveKit creates the room when it does not exist. */
  createDispatch(room: string, agentName: string, metadata: string): Promise<{ dispatchId: string }>;
  /**
   * The room's dispatches; a room that does not exist has none. LiveKit also lists the automatic
   * dispatch it adds to a new room (`agentName` ""), so callers filter by agent name.
   */
  listDispatches(room: string): Promise<DispatchInfo[]>;
  /** AgentDispatchService.DeleteDispatch; a dispatch that is already gone (404) is success. */
  deleteDispatch(dispatchId: string, room: string): Promise<void>;
}

/** Deletes LiveKit rooms (sessions ended by revoke, suspension, deletion, or a replayed token). */
export interface RoomApi {
  /** RoomService.DeleteRoom; a room that does not exist is success. */
  deleteRoom(room: string): Promise<void>;
}

/** What a participant token carries. Grants are fixed: join this room, publish, subscribe, data. */
export interface ParticipantTokenInput {
  identity: string;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
  room: string;
  ttlSeconds: number;
  /** Agents LiveKit dispatches when the room is created by this participant (token dispatch mode). */
  agents?: { agentName: string; metadata: string }[];
}

/** Signs participant tokens. */
export interface ParticipantTokens {
  /** HS256 with the API secret; `expiresAt` is its `exp`. */
  participantToken(input: ParticipantTokenInput): Promise<{ token: string; expiresAt: Date }>;
}

/**
 * Every LiveKit call the functions make. Every failure (HTTP error, timeout, reset, a body that
 * is not the expected JSON) rejects with `LiveKitUnavailableError`.
 */
export interface LiveKitGateway extends DispatchApi, RoomApi, ParticipantTokens {}
