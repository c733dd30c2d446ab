import { randomUUID } from 'node:crypto';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConditionFailedError, DomainError, StoreUnavailableError } from '../core/errors.js';
import type { AuditRecord, SessionRecord, TenantRecord, UserRecord } from '../core/model.js';
import { keys, tableSchema } from './schema.js';

/** Codes of the store's {@link ConditionFailedError}s. */
export const StoreConflict = {
  /** Create-only write, but the record exists (in the caller's own tenant for users). */
  alreadyExists: 'already_exists',
  /** The record's version is not the expected one, or the record is gone. */
  versionConflict: 'version_conflict',
  /** The user id exists under another tenant (CONTRACT §6). */
  userIdTaken: 'user_id_taken',
  /** An E.164 number is claimed by another user (CONTRACT §6). */
  phoneNumberTaken: 'phone_number_taken',
  /** A SIP trunk id is claimed by another tenant. */
  sipTrunkTaken: 'sip_trunk_taken',
  /** The session already ended; it cannot be written as active again. */
  sessionEnded: 'session_ended',
  /** The caller no longer owns the claim it tried to complete or update. */
  claimLost: 'claim_lost',
} as const;

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

/** One page of a list; `cursor` is DynamoDB's raw `LastEvaluatedKey` (seal it before it leaves). */
export interface Page<T> {
  items: T[];
  cursor: Record<string, unknown> | undefined;
}

/** Paging input: at most `limit` items (default 50, at most 100) after `cursor`. */
export interface PageRequest {
  limit?: number;
  cursor?: Record<string, unknown> | undefined;
}

/** The primary key of one item, as built by `keys.*` in schema.ts. */
export interface ItemKey {
  pk: string;
  sk: string;
}

/** A claim item (event id, dispatch, Idempotency-Key) as read back. */
export interface Claim {
  /** Random token of the attempt that holds the claim. */
  owner: string;
  state: 'in_progress' | 'completed';
  /** Until when (epoch ms) an in-progress claim is held; after that it may be taken over. */
  lease_until: number;
  /** When (epoch s) the claim expires whatever its state (the TTL attribute). */
  expires_at: number;
  /** Epoch ms of the attempt that took it. */
  created_at: number;
  /** Caller data: body hash, room, dispatch id, … */
  attrs: Record<string, unknown>;
  /** In progress and past `lease_until`: its attempt died; a new attempt may take over. */
  stale: boolean;
}

/** Result of {@link DynamoStore.tryClaim}. */
export type ClaimAttempt =
  | {
      won: true;
      /** Owner token: pass it to complete/release so a late attempt cannot touch another's claim. */
      owner: string;
      /** The expired or stale claim this attempt took over, if any (check LiveKit before redoing its work). */
      previous: Claim | undefined;
    }
  | { won: false; current: Claim };

/** Options of {@link DynamoStore.tryClaim}. */
export interface ClaimOptions {
  /** Lifetime of the claim item, in s (also its TTL). */
  ttlSeconds: number;
  /** How long an in-progress claim is held before another attempt may take it over, in s (default 30). */
  holdSeconds?: number;
  /** Caller data stored with the claim. */
  attrs?: Record<string, unknown>;
}

/** Where a phone number or SIP trunk claim points. */
type ClaimKind = 'phone' | 'sipTrunk';

const KEY_ATTRIBUTES = [
  tableSchema.partitionKey,
  tableSchema.sortKey,
  ...Object.values(tableSchema.indexes).flatMap((i) => [i.partitionKey, i.sortKey]),
  tableSchema.ttlAttribute,
];

const DEFAULT_PAGE = 50;
const MAX_PAGE = 100;
const DEFAULT_HOLD_SECONDS = 30;
const RATE_WINDOW_TTL_SECONDS = 120;

/**
 * A piece of a condition or update expression with its placeholders. Conditions are built from
 * the small named parts below and combined with {@link allOf} / {@link anyOf}, so each write
 * reads like a sentence: `anyOf(itemAbsent(), expiredAt(now), allOf(inProgress(), leaseEndedAt(now)))`.
 */
interface Expr {
  text: string;
  names: Record<string, string>;
  values: Record<string, unknown>;
}

const expr = (text: string, names: Record<string, string>, values: Record<string, unknown> = {}): Expr => ({
  text,
  names,
  values,
});
const combine = (op: 'AND' | 'OR', parts: Expr[]): Expr => ({
  text: parts.map((p) => `(${p.text})`).join(` ${op} `),
  names: Object.assign({}, ...parts.map((p) => p.names)),
  values: Object.assign({}, ...parts.map((p) => p.values)),
});
const allOf = (...parts: Expr[]) => combine('AND', parts);
const anyOf = (...parts: Expr[]) => combine('OR', parts);

const itemAbsent = () => expr('attribute_not_exists(#pk)', { '#pk': tableSchema.partitionKey });
const itemPresent = () => expr('attribute_exists(#pk)', { '#pk': tableSchema.partitionKey });
const versionIs = (version: number) =>
  expr('#version = :expectedVersion', { '#version': 'version' }, { ':expectedVersion': version });
const tenantIs = (tenantId: string) =>
  expr('#tenant = :tenantId', { '#tenant': 'tenant_id' }, { ':tenantId': tenantId });
/** The TTL has passed (DynamoDB deletes lazily; dynalite never does). */
const expiredAt = (nowSeconds: number) =>
  expr('#ttl < :nowSeconds', { '#ttl': tableSchema.ttlAttribute }, { ':nowSeconds': nowSeconds });
const claimInProgress = () =>
  expr('#state = :inProgress', { '#state': 'claim_state' }, { ':inProgress': 'in_progress' });
const claimLeaseEndedAt = (nowMs: number) =>
  expr('#leaseUntil < :nowMs', { '#leaseUntil': 'lease_until' }, { ':nowMs': nowMs });
const claimOwnedBy = (owner: string) =>
  expr('#owner = :owner', { '#owner': 'claim_owner' }, { ':owner': owner });
const claimedFor = (ownerId: string) =>
  expr('#ownerId = :ownerId', { '#ownerId': 'owner_id' }, { ':ownerId': ownerId });
const claimedAt = (at: number) =>
  expr('#claimedAt = :claimedAt', { '#claimedAt': 'claimed_at' }, { ':claimedAt': at });
const leaseHeldBy = (holder: string) =>
  expr('#holder = :holder', { '#holder': 'holder' }, { ':holder': holder });
const countBelow = (limit: number) =>
  anyOf(
    expr('attribute_not_exists(#count)', { '#count': 'count' }),
    expr('#count < :limit', { '#count': 'count' }, { ':limit': limit }),
  );
const sessionActive = () => expr('#status = :active', { '#status': 'status' }, { ':active': 'active' });

/** Spreads an expression into a command's `ConditionExpression` and placeholder maps. */
function condition(e: Expr) {
  return {
    ConditionExpression: e.text,
    ExpressionAttributeNames: e.names,
    ...(Object.keys(e.values).length > 0 ? { ExpressionAttributeValues: e.values } : {}),
  };
}

/**
 * DynamoDB persistence for every function: tenants, users, uniqueness claims (phone numbers,
 * SIP trunks), generic expiring claims (event ids, dispatches, Idempotency-Keys), quota leases,
 * rate counters, sessions and audit records, all in one table (schema.ts).
 *
 * Every write is a single-item conditional write: dynalite, the local store, has no
 * transactions, so multi-item changes are ordered, idempotent steps that a retry completes.
 * A lost condition becomes a {@link ConditionFailedError} (codes in {@link StoreConflict});
 * throttling, 5xx, timeouts and network failures after the SDK's retries become
 * {@link StoreUnavailableError}. Records come back without key attributes.
 */
export class DynamoStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly clock: Clock;
  private readonly sessionRetentionSeconds: number;
  private readonly orphanGraceSeconds: number;

  constructor(options: DynamoStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.clock = options.clock ?? Date.now;
    this.sessionRetentionSeconds = options.sessionRetentionSeconds ?? 90 * 24 * 3600;
    this.orphanGraceSeconds = options.orphanGraceSeconds ?? 300;
  }

  // Tenants

  /** The tenant, read strongly consistent, or undefined. */
  async getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.getRecord<TenantRecord>(keys.tenant(tenantId));
  }

  /**
   * Creates the tenant (create-only) at version 1, after claiming its `sip_trunk_ids`.
   * @throws ConditionFailedError `already_exists`, or `sip_trunk_taken` (no claim is left behind).
   */
  async createTenant(record: TenantRecord): Promise<TenantRecord> {
    const stored = { ...record, version: 1 };
    await this.writeWithClaims('sipTrunk', record.tenant_id, [], record.sip_trunk_ids, () =>
      this.put(this.tenantItem(stored), itemAbsent(), () =>
        this.conflict(StoreConflict.alreadyExists, 'Tenant exists.'),
      ),
    );
    return stored;
  }

  /**
   * Replaces the tenant if its version is `expectedVersion`; the stored version becomes
   * `expectedVersion + 1`. SIP trunks: new ones are claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict` (stale or missing), or `sip_trunk_taken`.
   */
  async updateTenant(record: TenantRecord, expectedVersion: number): Promise<TenantRecord> {
    const stored = { ...record, version: expectedVersion + 1 };
    const current = await this.getTenant(record.tenant_id);
    await this.writeWithClaims(
      'sipTrunk',
      record.tenant_id,
      current?.sip_trunk_ids ?? [],
      record.sip_trunk_ids,
      () =>
        this.put(this.tenantItem(stored), versionIs(expectedVersion), () =>
          this.conflict(StoreConflict.versionConflict, 'Tenant version is stale.'),
        ),
    );
    return stored;
  }

  /**
   * Deletes the tenant (only at `expectedVersion` when given) and releases its SIP trunks.
   * Users, sessions and audit items are not touched (the admin layer cascades users).
   * @returns the deleted record, or undefined if there was none.
   * @throws ConditionFailedError `version_conflict`.
   */
  async deleteTenant(tenantId: string, expectedVersion?: number): Promise<TenantRecord | undefined> {
    const old = await this.deleteRecord<TenantRecord>(keys.tenant(tenantId), expectedVersion);
    if (old !== undefined) await this.releaseAll('sipTrunk', tenantId, old.sip_trunk_ids ?? []);
    return old;
  }

  /** All tenants by id (eventually consistent index). */
  async listTenants(page: PageRequest = {}): Promise<Page<TenantRecord>> {
    return this.queryPage<TenantRecord>(tableSchema.indexes.byTenant.name, keys.allTenants(), page, true);
  }

  /**
   * The tenant whose `sip_trunk_ids` lists this trunk (claim item read strongly consistent,
   * confirmed against the tenant record), or undefined.
   */
  async tenantBySipTrunk(trunkId: string): Promise<TenantRecord | undefined> {
    const ownerId = await this.claimOwner('sipTrunk', trunkId);
    if (ownerId === undefined) return undefined;
    const tenant = await this.getTenant(ownerId);
    return tenant?.sip_trunk_ids.includes(trunkId) ? tenant : undefined;
  }

  // Users

  /** The user (ids are unique across tenants), read strongly consistent, or undefined. */
  async getUser(userId: string): Promise<UserRecord | undefined> {
    return this.getRecord<UserRecord>(keys.user(userId));
  }

  /**
   * Creates the user (create-only) at version 1, after claiming its phone numbers.
   * @throws ConditionFailedError `already_exists` (same tenant), `user_id_taken` (another tenant;
   *   nothing about it is revealed) or `phone_number_taken`; no claim is left behind.
   */
  async createUser(record: UserRecord): Promise<UserRecord> {
    const stored = { ...record, version: 1 };
    await this.writeWithClaims('phone', record.user_id, [], record.phone_numbers, () =>
      this.put(this.userItem(stored), itemAbsent(), async () => {
        const existing = await this.getUser(record.user_id);
        return existing !== undefined && existing.tenant_id !== record.tenant_id
          ? this.conflict(StoreConflict.userIdTaken, 'User id is taken.')
          : this.conflict(StoreConflict.alreadyExists, 'User exists.');
      }),
    );
    return stored;
  }

  /**
   * Replaces the user if it belongs to `record.tenant_id` at `expectedVersion`; the version
   * becomes `expectedVersion + 1`. Phone numbers: new ones claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict`, `user_id_taken` or `phone_number_taken`.
   */
  async updateUser(record: UserRecord, expectedVersion: number): Promise<UserRecord> {
    const stored = { ...record, version: expectedVersion + 1 };
    const current = await this.getUser(record.user_id);
    if (current !== undefined && current.tenant_id !== record.tenant_id) {
      this.conflict(StoreConflict.userIdTaken, 'User id is taken.');
    }
    await this.writeWithClaims(
      'phone',
      record.user_id,
      current?.phone_numbers ?? [],
      record.phone_numbers,
      () =>
        this.put(this.userItem(stored), allOf(versionIs(expectedVersion), tenantIs(record.tenant_id)), () =>
          this.conflict(StoreConflict.versionConflict, 'User version is stale.'),
        ),
    );
    return stored;
  }

  /**
   * Deletes the user of `tenantId` (only at `expectedVersion` when given) and releases its phone numbers.
   * @returns the deleted record, or undefined if this tenant has no such user.
   * @throws ConditionFailedError `version_conflict`.
   */
  async deleteUser(
    tenantId: string,
    userId: string,
    expectedVersion?: number,
  ): Promise<UserRecord | undefined> {
    const old = await this.deleteRecord<UserRecord>(keys.user(userId), expectedVersion, tenantId);
    if (old !== undefined) await this.releaseAll('phone', userId, old.phone_numbers ?? []);
    return old;
  }

  /** Users of a tenant by user id (eventually consistent index). */
  async listUsers(tenantId: string, page: PageRequest = {}): Promise<Page<UserRecord>> {
    return this.queryPage<UserRecord>(
      tableSchema.indexes.byTenant.name,
      keys.tenantUsers(tenantId),
      page,
      true,
    );
  }

  /** Whether the tenant has at least one user (eventually consistent index). */
  async hasUsers(tenantId: string): Promise<boolean> {
    const { items } = await this.listUsers(tenantId, { limit: 1 });
    return items.length > 0;
  }

  /**
   * The user whose `phone_numbers` lists this E.164 number (claim item read strongly
   * consistent, confirmed against the user record), or undefined.
   */
  async userByPhoneNumber(e164: string): Promise<UserRecord | undefined> {
    const ownerId = await this.claimOwner('phone', e164);
    if (ownerId === undefined) return undefined;
    const user = await this.getUser(ownerId);
    return user?.phone_numbers.includes(e164) ? user : undefined;
  }

  // Expiring claims: webhook event ids, dispatches, Idempotency-Keys

  /**
   * Claims `key` for a new attempt. Wins if the item is absent, past its TTL, or in progress
   * past its hold (its attempt died); all three are checked inside the write's condition, as
   * TTL deletion is lazy. The winner gets a random owner token.
   * @returns `{ won: true, owner, previous }` (previous = the claim taken over), or
   *   `{ won: false, current }`.
   */
  async tryClaim(key: ItemKey, options: ClaimOptions): Promise<ClaimAttempt> {
    const owner = randomUUID();
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock();
      const item = {
        ...key,
        claim_owner: owner,
        claim_state: 'in_progress',
        lease_until: now + (options.holdSeconds ?? DEFAULT_HOLD_SECONDS) * 1000,
        created_at: now,
        [tableSchema.ttlAttribute]: seconds(now) + options.ttlSeconds,
        attrs: options.attrs ?? {},
      };
      const takeable = anyOf(
        itemAbsent(),
        expiredAt(seconds(now)),
        allOf(claimInProgress(), claimLeaseEndedAt(now)),
      );
      try {
        const result = await this.call(() =>
          this.client.send(
            new PutCommand({
              TableName: this.tableName,
              Item: item,
              ReturnValues: 'ALL_OLD',
              // DynamoDB returns the item that failed the condition, so a lost claim (a
              // duplicate webhook, a repeated Idempotency-Key) costs this one request.
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              ...condition(takeable),
            }),
          ),
        );
        return {
          won: true,
          owner,
          previous: result.Attributes ? this.toClaim(result.Attributes, now) : undefined,
        };
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
        // The condition used `now`: the item it failed on is present, unexpired and not stale.
        const failedOn = unmarshallItem((error.cause as { Item?: unknown } | undefined)?.Item);
        if (failedOn !== undefined) return { won: false, current: this.toClaim(failedOn, now) };
      }
      // Servers without ReturnValuesOnConditionCheckFailure (dynalite) need a read.
      const current = await this.getClaim(key);
      // Absent, expired or stale again by now (released or timed out in between): try again.
      if (current !== undefined && !current.stale) return { won: false, current };
    }
    throw new StoreUnavailableError();
  }

  /** The claim at `key`, read strongly consistent; undefined if absent or past its TTL. */
  async getClaim(key: ItemKey): Promise<Claim | undefined> {
    const item = await this.getItem(key);
    const now = this.clock();
    if (item === undefined || Number(item[tableSchema.ttlAttribute]) < seconds(now)) return undefined;
    return this.toClaim(item, now);
  }

  /**
   * Marks the claim completed (it is then never taken over until its TTL), merges `attrs` into
   * its data and sets its lifetime to `ttlSeconds` from now.
   * @throws ConditionFailedError `claim_lost` if `owner` no longer holds it.
   */
  async completeClaim(
    key: ItemKey,
    owner: string,
    attrs: Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<void> {
    const now = this.clock();
    await this.updateClaimItem(key, owner, attrs, {
      '#state': ['claim_state', 'completed'],
      '#ttl': [tableSchema.ttlAttribute, seconds(now) + ttlSeconds],
    });
  }

  /**
   * Merges `attrs` into an in-progress claim's data and, with `holdSeconds`, extends its hold
   * (for work that outlasts the first hold).
   * @throws ConditionFailedError `claim_lost` if `owner` no longer holds it.
   */
  async updateClaim(
    key: ItemKey,
    owner: string,
    attrs: Record<string, unknown>,
    holdSeconds?: number,
  ): Promise<void> {
    const now = this.clock();
    await this.updateClaimItem(
      key,
      owner,
      attrs,
      holdSeconds === undefined ? {} : { '#leaseUntil': ['lease_until', now + holdSeconds * 1000] },
    );
  }

  /**
   * Deletes the claim if `owner` holds it, so a retry can claim again; a late, failing attempt
   * cannot delete a claim another attempt has taken over.
   * @returns whether it was deleted.
   */
  async releaseClaim(key: ItemKey, owner: string): Promise<boolean> {
    return this.deleteIf(key, claimOwnedBy(owner));
  }

  // Quota leases

  /**
   * Takes one of the tenant's `max` lease slots for `holder`, for `ttlSeconds`. Reads all slots
   * with one strongly consistent Query and writes a free one (absent or past its TTL) with a
   * conditional put, trying other free slots and re-reading when racing writers win.
   * @returns the slot number (0-based), or null when `max` leases are active.
   */
  async acquireLease(
    tenantId: string,
    max: number,
    holder: string,
    ttlSeconds: number,
  ): Promise<number | null> {
    for (let round = 0; round < max + 2; round++) {
      const now = this.clock();
      const items = await this.queryAll({
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': tableSchema.partitionKey },
        ExpressionAttributeValues: { ':pk': keys.leasePartition(tenantId) },
        ConsistentRead: true,
      });
      const active = new Set(
        items.filter((i) => Number(i[tableSchema.ttlAttribute]) >= seconds(now)).map((i) => Number(i.slot)),
      );
      if (active.size >= max) return null;
      const free = Array.from({ length: max }, (_, slot) => slot).filter((slot) => !active.has(slot));
      // Start at a random free slot so concurrent acquirers rarely collide.
      const offset = Math.floor(Math.random() * free.length);
      for (const slot of [...free.slice(offset), ...free.slice(0, offset)]) {
        const item = {
          ...keys.lease(tenantId, slot),
          tenant_id: tenantId,
          slot,
          holder,
          acquired_at: now,
          [tableSchema.ttlAttribute]: seconds(now) + ttlSeconds,
        };
        if (await this.putIf(item, anyOf(itemAbsent(), expiredAt(seconds(now))))) return slot;
      }
    }
    return null;
  }

  /**
   * Frees the slot if `holder` still holds it (a lease that expired and was retaken by another
   * holder is left alone).
   * @returns whether it was freed.
   */
  async releaseLease(tenantId: string, slot: number, holder: string): Promise<boolean> {
    return this.deleteIf(keys.lease(tenantId, slot), leaseHeldBy(holder));
  }

  // Rate limit

  /**
   * Counts one session start for the user in the current minute, atomically, unless the count
   * has reached `limitPerMinute`.
   * @returns true if counted (allowed), false if the user is over the limit.
   */
  async hitRate(userId: string, limitPerMinute: number): Promise<boolean> {
    const now = this.clock();
    const below = countBelow(limitPerMinute);
    try {
      await this.call(() =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.rate(userId, Math.floor(now / 60_000)),
            UpdateExpression: 'ADD #count :one SET #ttl = :ttl',
            ConditionExpression: below.text,
            ExpressionAttributeNames: { ...below.names, '#ttl': tableSchema.ttlAttribute },
            ExpressionAttributeValues: {
              ...below.values,
              ':one': 1,
              ':ttl': seconds(now) + RATE_WINDOW_TTL_SECONDS,
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  // Sessions

  /**
   * Writes the session of (room, agent, participant), listed under its tenant by `created_at`
   * and, while active, under its user. Rewriting an active session is allowed (a retry).
   * @throws ConditionFailedError `session_ended` if that session already ended.
   */
  async putSession(record: SessionRecord): Promise<void> {
    const active = record.status === 'active';
    const item = {
      ...record,
      ...keys.session(record.room_name, record.agent_name, record.participant_identity, record.room_sid),
      gsi1pk: keys.tenantSessions(record.tenant_id),
      gsi1sk: `${record.created_at}#${record.room_name}`,
      ...(active
        ? {
            gsi2pk: keys.tenantActiveSessions(record.tenant_id),
            gsi2sk: keys.activeSessionSort(record.user_id, record.created_at),
          }
        : {}),
      [tableSchema.ttlAttribute]: seconds(Date.parse(record.created_at)) + this.sessionRetentionSeconds,
    };
    await this.put(item, anyOf(itemAbsent(), sessionActive()), () =>
      this.conflict(StoreConflict.sessionEnded, 'Session already ended.'),
    );
  }

  /** Every session of the room (strongly consistent), any state. */
  async roomSessions(roomName: string): Promise<SessionRecord[]> {
    const items = await this.queryAll({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :session)',
      ExpressionAttributeNames: { '#pk': tableSchema.partitionKey, '#sk': tableSchema.sortKey },
      ExpressionAttributeValues: { ':pk': keys.roomPartition(roomName), ':session': 'SESSION#' },
      ConsistentRead: true,
    });
    return items.map((i) => stripKeys<SessionRecord>(i));
  }

  /**
   * Ends an active session: `status` ended, `ended_at`, `duration_seconds` from `created_at`.
   * Ends it once: a second call (a repeated `room_finished`) changes nothing.
   * @returns the ended session, or undefined if it was not active (or does not exist).
   */
  async endSession(
    session: SessionRecord,
    endedAt: Date = new Date(this.clock()),
  ): Promise<SessionRecord | undefined> {
    const active = sessionActive();
    const duration = Math.max(0, Math.round((endedAt.getTime() - Date.parse(session.created_at)) / 1000));
    try {
      const result = await this.call(() =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.session(
              session.room_name,
              session.agent_name,
              session.participant_identity,
              session.room_sid,
            ),
            UpdateExpression:
              'SET #status = :ended, #endedAt = :endedAt, #duration = :duration REMOVE #g2pk, #g2sk',
            ConditionExpression: active.text,
            ExpressionAttributeNames: {
              ...active.names,
              '#endedAt': 'ended_at',
              '#duration': 'duration_seconds',
              '#g2pk': tableSchema.indexes.activeSessions.partitionKey,
              '#g2sk': tableSchema.indexes.activeSessions.sortKey,
            },
            ExpressionAttributeValues: {
              ...active.values,
              ':ended': 'ended',
              ':endedAt': endedAt.toISOString(),
              ':duration': duration,
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return result.Attributes ? stripKeys<SessionRecord>(result.Attributes) : undefined;
    } catch (error) {
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  /** Sessions of a tenant, newest first (eventually consistent index). */
  async listSessions(tenantId: string, page: PageRequest = {}): Promise<Page<SessionRecord>> {
    return this.queryPage<SessionRecord>(
      tableSchema.indexes.byTenant.name,
      keys.tenantSessions(tenantId),
      page,
      false,
    );
  }

  /** The tenant's active sessions (sparse index, eventually consistent), e.g. to end them on suspension. */
  async activeSessionsOfTenant(tenantId: string): Promise<SessionRecord[]> {
    return this.activeSessions(tenantId);
  }

  /** The user's active sessions (sparse index, eventually consistent), e.g. to revoke them. */
  async activeSessionsOfUser(tenantId: string, userId: string): Promise<SessionRecord[]> {
    return this.activeSessions(tenantId, keys.activeSessionUserPrefix(userId));
  }

  // Audit

  /**
   * Writes the audit record keyed by (target, version), listed under its tenant by time.
   * Idempotent: if that version's record exists, the first one stays.
   * @returns whether this call wrote it.
   */
  async putAudit(record: AuditRecord): Promise<boolean> {
    const item = {
      ...record,
      ...keys.audit(record.target, record.version),
      gsi1pk: keys.tenantAudit(record.tenant_id),
      gsi1sk: `${record.at}#${record.target}#${String(record.version).padStart(12, '0')}`,
    };
    return this.putIf(item, itemAbsent());
  }

  /** The audit record of (target, version), or undefined: a gap shows a write whose audit step was lost. */
  async getAudit(target: string, version: number): Promise<AuditRecord | undefined> {
    return this.getRecord<AuditRecord>(keys.audit(target, version));
  }

  /** Audit records of a tenant, newest first (eventually consistent index). */
  async listAudit(tenantId: string, page: PageRequest = {}): Promise<Page<AuditRecord>> {
    return this.queryPage<AuditRecord>(
      tableSchema.indexes.byTenant.name,
      keys.tenantAudit(tenantId),
      page,
      false,
    );
  }

  // Building blocks

  private async activeSessions(tenantId: string, sortPrefix?: string): Promise<SessionRecord[]> {
    const index = tableSchema.indexes.activeSessions;
    const items = await this.queryAll({
      IndexName: index.name,
      KeyConditionExpression:
        sortPrefix === undefined ? '#pk = :pk' : '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: {
        '#pk': index.partitionKey,
        ...(sortPrefix === undefined ? {} : { '#sk': index.sortKey }),
      },
      ExpressionAttributeValues: {
        ':pk': keys.tenantActiveSessions(tenantId),
        ...(sortPrefix === undefined ? {} : { ':prefix': sortPrefix }),
      },
    });
    return items.map((i) => stripKeys<SessionRecord>(i)).filter((s) => s.status === 'active');
  }

  private tenantItem(record: TenantRecord) {
    return {
      ...record,
      ...keys.tenant(record.tenant_id),
      gsi1pk: keys.allTenants(),
      gsi1sk: record.tenant_id,
    };
  }

  private userItem(record: UserRecord) {
    return {
      ...record,
      ...keys.user(record.user_id),
      gsi1pk: keys.tenantUsers(record.tenant_id),
      gsi1sk: record.user_id,
    };
  }

  private toClaim(item: Record<string, unknown>, now: number): Claim {
    const state = item.claim_state === 'completed' ? 'completed' : 'in_progress';
    const leaseUntil = Number(item.lease_until);
    return {
      owner: String(item.claim_owner),
      state,
      lease_until: leaseUntil,
      expires_at: Number(item[tableSchema.ttlAttribute]),
      created_at: Number(item.created_at),
      attrs: (item.attrs ?? {}) as Record<string, unknown>,
      stale: state === 'in_progress' && leaseUntil < now,
    };
  }

  private async updateClaimItem(
    key: ItemKey,
    owner: string,
    attrs: Record<string, unknown>,
    sets: Record<string, [string, unknown]>,
  ): Promise<void> {
    const owned = claimOwnedBy(owner);
    const names: Record<string, string> = { ...owned.names };
    const values: Record<string, unknown> = { ...owned.values };
    const assignments: string[] = [];
    for (const [placeholder, [name, value]] of Object.entries(sets)) {
      names[placeholder] = name;
      values[`:${placeholder.slice(1)}`] = value;
      assignments.push(`${placeholder} = :${placeholder.slice(1)}`);
    }
    if (Object.keys(attrs).length > 0) names['#attrs'] = 'attrs';
    Object.entries(attrs).forEach(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = value;
      assignments.push(`#attrs.#a${i} = :a${i}`);
    });
    if (assignments.length === 0) return;
    try {
      await this.call(() =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: key,
            UpdateExpression: `SET ${assignments.join(', ')}`,
            ConditionExpression: owned.text,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        ),
      );
    } catch (error) {
      if (error instanceof ConditionFailedError)
        this.conflict(StoreConflict.claimLost, 'Claim is held by another attempt.');
      throw error;
    }
  }

  /**
   * Writes a record whose uniqueness claims change from `before` to `after` as ordered,
   * idempotent steps: claim the added values, run `write`, release the dropped ones. If a claim
   * or the write fails, the claims this call took are released again.
   */
  private async writeWithClaims(
    kind: ClaimKind,
    ownerId: string,
    before: string[],
    after: string[],
    write: () => Promise<void>,
  ): Promise<void> {
    const taken: string[] = [];
    try {
      for (const value of [...new Set(after)].sort()) {
        if (await this.claimValue(kind, value, ownerId)) taken.push(value);
      }
      await write();
    } catch (error) {
      await this.releaseAll(kind, ownerId, taken);
      throw error;
    }
    await this.releaseAll(
      kind,
      ownerId,
      before.filter((v) => !after.includes(v)),
    );
  }

  /**
   * Claims one phone number / SIP trunk for `ownerId`. Idempotent for the same owner.
   * @returns true if this call created the claim, false if the owner already held it.
   */
  private async claimValue(kind: ClaimKind, value: string, ownerId: string): Promise<boolean> {
    const key = kind === 'phone' ? keys.phone(value) : keys.sipTrunk(value);
    const now = seconds(this.clock());
    const item = { ...key, owner_id: ownerId, claimed_at: now };
    const result = await this.call(async () => {
      try {
        return await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            ReturnValues: 'ALL_OLD',
            ...condition(anyOf(itemAbsent(), claimedFor(ownerId))),
          }),
        );
      } catch (error) {
        if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
        throw error;
      }
    });
    if (result !== undefined) return result.Attributes === undefined;
    if (await this.takeOverOrphan(kind, value, item)) return true;
    const code = kind === 'phone' ? StoreConflict.phoneNumberTaken : StoreConflict.sipTrunkTaken;
    return this.conflict(code, kind === 'phone' ? 'Phone number is taken.' : 'SIP trunk is taken.');
  }

  /**
   * Takes over a claim whose owner's record does not list the value (a write interrupted
   * between its steps), once it is older than the grace period that covers a write in flight.
   */
  private async takeOverOrphan(
    kind: ClaimKind,
    value: string,
    item: { pk: string; sk: string; owner_id: string; claimed_at: number },
  ) {
    const current = await this.getItem({ pk: item.pk, sk: item.sk });
    if (current === undefined) return this.putIf(item, itemAbsent());
    const claimedAtSeconds = Number(current.claimed_at);
    if (claimedAtSeconds > item.claimed_at - this.orphanGraceSeconds) return false;
    const staleOwner = String(current.owner_id);
    const owner = kind === 'phone' ? await this.getUser(staleOwner) : await this.getTenant(staleOwner);
    const listed =
      owner !== undefined &&
      ('phone_numbers' in owner ? owner.phone_numbers : owner.sip_trunk_ids).includes(value);
    if (listed) return false;
    return this.putIf(item, allOf(claimedFor(staleOwner), claimedAt(claimedAtSeconds)));
  }

  private async releaseAll(kind: ClaimKind, ownerId: string, values: string[]): Promise<void> {
    for (const value of values) {
      await this.deleteIf(kind === 'phone' ? keys.phone(value) : keys.sipTrunk(value), claimedFor(ownerId));
    }
  }

  private async claimOwner(kind: ClaimKind, value: string): Promise<string | undefined> {
    const item = await this.getItem(kind === 'phone' ? keys.phone(value) : keys.sipTrunk(value));
    return item === undefined ? undefined : String(item.owner_id);
  }

  private async getItem(key: ItemKey): Promise<Record<string, unknown> | undefined> {
    const result = await this.call(() =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return result.Item;
  }

  private async getRecord<T>(key: ItemKey): Promise<T | undefined> {
    const item = await this.getItem(key);
    return item === undefined ? undefined : stripKeys<T>(item);
  }

  /** Conditional put; on a lost condition runs `onConflict`, which throws the domain error. */
  private async put(item: Record<string, unknown>, when: Expr, onConflict: () => unknown): Promise<void> {
    try {
      await this.call(() =>
        this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ...condition(when) })),
      );
    } catch (error) {
      if (error instanceof ConditionFailedError) await onConflict();
      throw error;
    }
  }

  /** Conditional put; false when the condition does not hold. */
  private async putIf(item: Record<string, unknown>, when: Expr): Promise<boolean> {
    try {
      await this.call(() =>
        this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ...condition(when) })),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  /** Conditional delete; false when the condition does not hold. */
  private async deleteIf(key: ItemKey, when: Expr): Promise<boolean> {
    try {
      await this.call(() =>
        this.client.send(new DeleteCommand({ TableName: this.tableName, Key: key, ...condition(when) })),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  /** Deletes a versioned record; undefined if absent (or of another tenant), version_conflict if stale. */
  private async deleteRecord<T>(
    key: ItemKey,
    expectedVersion?: number,
    tenantId?: string,
  ): Promise<T | undefined> {
    const parts = [itemPresent()];
    if (expectedVersion !== undefined) parts.push(versionIs(expectedVersion));
    if (tenantId !== undefined) parts.push(tenantIs(tenantId));
    try {
      const result = await this.call(() =>
        this.client.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: key,
            ReturnValues: 'ALL_OLD',
            ...condition(allOf(...parts)),
          }),
        ),
      );
      return result.Attributes ? stripKeys<T>(result.Attributes) : undefined;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
    const current = await this.getItem(key);
    if (current === undefined || (tenantId !== undefined && current.tenant_id !== tenantId)) return undefined;
    return this.conflict(StoreConflict.versionConflict, 'Version is stale.');
  }

  private async queryPage<T>(
    indexName: string,
    partition: string,
    page: PageRequest,
    ascending: boolean,
  ): Promise<Page<T>> {
    const index = Object.values(tableSchema.indexes).find((i) => i.name === indexName)!;
    const limit = Math.min(Math.max(1, page.limit ?? DEFAULT_PAGE), MAX_PAGE);
    const result = await this.call(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: indexName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': index.partitionKey },
          ExpressionAttributeValues: { ':pk': partition },
          ScanIndexForward: ascending,
          Limit: limit,
          ExclusiveStartKey: page.cursor,
        }),
      ),
    );
    return { items: (result.Items ?? []).map((i) => stripKeys<T>(i)), cursor: result.LastEvaluatedKey };
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.call(() =>
        this.client.send(new QueryCommand({ ...input, TableName: this.tableName, ExclusiveStartKey: start })),
      );
      items.push(...(result.Items ?? []));
      start = result.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }

  private conflict(code: string, message: string): never {
    throw new ConditionFailedError(message, { code });
  }

  /** Runs one SDK call, translating its failure into the store's domain errors. */
  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw translateError(error);
    }
  }
}

const UNAVAILABLE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Maps an SDK failure to a domain error: a lost condition → {@link ConditionFailedError};
 * throttling, 5xx, timeouts and network errors (already retried by the SDK) →
 * {@link StoreUnavailableError}; anything else (a bug, a missing table) is returned unchanged.
 */
export function translateError(error: unknown): unknown {
  if (error instanceof DomainError || !(error instanceof Error)) return error;
  if (error.name === 'ConditionalCheckFailedException') {
    return new ConditionFailedError('The conditional write lost.', { cause: error });
  }
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const code = (error as { code?: string }).code;
  if (
    UNAVAILABLE_ERRORS.has(error.name) ||
    (status !== undefined && status >= 500) ||
    (code !== undefined && NETWORK_CODES.has(code))
  ) {
    return new StoreUnavailableError({ cause: error });
  }
  return error;
}

/**
 * Converts a raw DynamoDB item (as carried by a ConditionalCheckFailedException) to plain
 * values; undefined when absent or holding a type claims never store (sets, binary).
 */
export function unmarshallItem(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    const plain = unmarshallValue(value);
    if (plain === UNSUPPORTED) return undefined;
    out[name] = plain;
  }
  return out;
}

const UNSUPPORTED = Symbol('unsupported');

function unmarshallValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return UNSUPPORTED;
  const v = value as Record<string, unknown>;
  if (typeof v.S === 'string') return v.S;
  if (typeof v.N === 'string') return Number(v.N);
  if (typeof v.BOOL === 'boolean') return v.BOOL;
  if (v.NULL === true) return null;
  if (Array.isArray(v.L)) {
    const list = v.L.map(unmarshallValue);
    return list.includes(UNSUPPORTED) ? UNSUPPORTED : list;
  }
  if (typeof v.M === 'object' && v.M !== null) return unmarshallItem(v.M) ?? UNSUPPORTED;
  return UNSUPPORTED;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function stripKeys<T>(item: Record<string, unknown>): T {
  const record: Record<string, unknown> = { ...item };
  for (const name of KEY_ATTRIBUTES) delete record[name];
  return record as T;
}
