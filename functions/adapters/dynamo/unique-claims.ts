import { randomUUID } from 'node:crypto';
import { ConditionFailedError } from '../../core/errors.js';
import { StoreConflict } from '../../core/ports.js';
import { keys } from '../schema.js';
import type { ItemKey, TableClient } from './client.js';
import { absent, allOf, anyOf, type Cond, eq, itemAbsent, lessThan } from './expr.js';
import { fields } from './fields.js';
import { conflict, seconds } from './records.js';

/** What a uniqueness claim makes unique: a user's E.164 number, or a tenant's SIP trunk id. */
export type UniqueKind = 'phone' | 'sipTrunk';

/**
 * Where a value is unique: phone numbers within one tenant, SIP trunk ids across tenants
 * (docs/api.md §6).
 */
export type UniqueSpace = { kind: 'phone'; tenantId: string } | { kind: 'sipTrunk' };

/**
 * A uniqueness claim item: which record owns the value (`owner_id`), which write attempt stamped
 * it last (`owner_token`, fresh per attempt) for which version of that record
 * (`record_version`), and since when (epoch s).
 */
export interface UniqueClaim {
  owner_id: string;
  owner_token?: string;
  record_version?: number;
  claimed_at: number;
}

const keyOf = (space: UniqueSpace, value: string): ItemKey =>
  space.kind === 'phone' ? keys.phone(space.tenantId, value) : keys.sipTrunk(value);

/** The item of a uniqueness claim. */
export function uniqueClaimToItem(space: UniqueSpace, value: string, claim: UniqueClaim) {
  return { ...keyOf(space, value), ...claim };
}

/** A uniqueness claim as read, checked. */
export function uniqueClaimFromItem(item: Record<string, unknown>): UniqueClaim {
  const f = fields(item, 'unique claim');
  const token = f.optionalString('owner_token');
  const version = f.optionalNumber('record_version');
  return {
    owner_id: f.string('owner_id'),
    ...(token === undefined ? {} : { owner_token: token }),
    ...(version === undefined ? {} : { record_version: version }),
    claimed_at: f.number('claimed_at'),
  };
}

/** Options of {@link UniqueClaims}. */
export interface UniqueClaimsOptions {
  clock: () => number;
  /** How old a claim must be before it may be taken over when its owner does not list it, in s. */
  orphanGraceSeconds: number;
  /** Whether the owner's record (user or tenant) lists the value (read strongly consistent). */
  listedBy: (space: UniqueSpace, ownerId: string, value: string) => Promise<boolean>;
}

/** One record write whose claims {@link UniqueClaims.writeWithClaims} keeps. */
export interface ClaimedWrite {
  /** The record's id (user id within its tenant, tenant id). */
  ownerId: string;
  /** The version this write produces (versions never repeat for an id, tombstones included). */
  version: number;
  /** The values the record lists before the write, and after it. */
  before: string[];
  after: string[];
  /** The conditional write of the record itself. */
  write: () => Promise<void>;
  /** The values the stored record lists now, read strongly consistent (none when it is gone). */
  listedNow: () => Promise<string[]>;
}

/**
 * Uniqueness claims: one item per phone number (per tenant) / SIP trunk id naming the record
 * that owns it. A write attempt X of record R produces version Vx, having read R at Vx - 1
 * (strongly consistent; versions only grow, tombstones keep the last one) with a fresh token tx:
 * 1. X stamps every value it adds or drops with (R, tx, Vx), if the claim is absent (added values
 *    only) or is R's with `record_version <= Vx`; another record's claim is a 409 unless orphaned.
 * 2. X writes R, conditional on Vx - 1.
 * 3. X reads R strongly consistent and deletes, of the values it stamped that R does not list
 *    (all of them after a lost write, the dropped ones after a won one), each claim still on tx.
 * Ordering argument (docs/api.md §10): say an attempt Y's write lists v in R and X deletes v's
 * claim. Y stamped v before writing. Had Y stamped after X, tx would be gone. So Y stamped
 * first, with Vy <= Vx (else X's stamp is refused). X's step 3 did not see Y's write, so Y wrote
 * after X's step 2; but after X's step 2 R is at >= Vx >= Vy (X read Vx - 1, and its write
 * either made Vx or lost to a version above Vx - 1), so Y's write, conditional on Vy - 1, fails.
 * Hence the loser of two writes of one record never deletes a claim the winner relies on.
 */
export class UniqueClaims {
  constructor(
    private readonly table: TableClient,
    private readonly options: UniqueClaimsOptions,
  ) {}

  /** The id of the record the claim names, or undefined (strongly consistent). */
  async owner(space: UniqueSpace, value: string): Promise<string | undefined> {
    const item = await this.table.get(keyOf(space, value));
    return item === undefined ? undefined : uniqueClaimFromItem(item).owner_id;
  }

  /**
   * Writes a record whose claims change from `before` to `after` as the ordered, idempotent
   * steps above. A refused claim or a lost write leaves no claim of this attempt behind that the
   * stored record does not list.
   */
  async writeWithClaims(space: UniqueSpace, w: ClaimedWrite): Promise<void> {
    const token = randomUUID();
    const after = [...new Set(w.after)].sort();
    const dropped = [...new Set(w.before)].filter((v) => !after.includes(v)).sort();
    const stamped: string[] = [];
    let won = false;
    try {
      for (const value of after) {
        if (await this.stamp(space, value, w, token, true)) stamped.push(value);
      }
      for (const value of dropped) {
        if (await this.stamp(space, value, w, token, false)) stamped.push(value);
      }
      await w.write();
      won = true;
    } finally {
      const candidates = won ? stamped.filter((v) => !after.includes(v)) : stamped;
      if (candidates.length > 0) {
        const listed = await w.listedNow();
        for (const value of candidates) {
          if (!listed.includes(value)) await this.release(space, value, w.ownerId, token);
        }
      }
    }
  }

  /** Deletes the claim if this attempt's token is still on it. */
  private async release(space: UniqueSpace, value: string, ownerId: string, token: string): Promise<void> {
    await this.table.deleteIf(keyOf(space, value), allOf(eq('owner_id', ownerId), eq('owner_token', token)));
  }

  /**
   * Stamps one value with this attempt (step 1). Whether this attempt's token is now on it; false
   * when the value is absent (a dropped one) or a later attempt of the same record stamped it.
   */
  private async stamp(
    space: UniqueSpace,
    value: string,
    w: ClaimedWrite,
    token: string,
    add: boolean,
  ): Promise<boolean> {
    const claim: UniqueClaim = {
      owner_id: w.ownerId,
      owner_token: token,
      record_version: w.version,
      claimed_at: seconds(this.options.clock()),
    };
    const ours: Cond = allOf(
      eq('owner_id', w.ownerId),
      anyOf(absent('record_version'), lessThan('record_version', w.version + 1)),
    );
    try {
      await this.table.put(uniqueClaimToItem(space, value, claim), add ? anyOf(itemAbsent(), ours) : ours);
      return true;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
    const raw = await this.table.get(keyOf(space, value));
    if (!add || (raw !== undefined && uniqueClaimFromItem(raw).owner_id === w.ownerId)) return false;
    if (await this.takeOverOrphan(space, value, claim, raw)) return true;
    return space.kind === 'phone'
      ? conflict(StoreConflict.phoneNumberTaken, 'Phone number is taken.')
      : conflict(StoreConflict.sipTrunkTaken, 'SIP trunk is taken.');
  }

  /**
   * Takes over a claim whose owner's record does not list the value (a write interrupted
   * between its steps), once it is older than the grace period that covers a write in flight.
   */
  private async takeOverOrphan(
    space: UniqueSpace,
    value: string,
    claim: UniqueClaim,
    raw: Record<string, unknown> | undefined,
  ): Promise<boolean> {
    const item = uniqueClaimToItem(space, value, claim);
    if (raw === undefined) return this.table.putIf(item, itemAbsent());
    const current = uniqueClaimFromItem(raw);
    if (current.claimed_at > claim.claimed_at - this.options.orphanGraceSeconds) return false;
    if (await this.options.listedBy(space, current.owner_id, value)) return false;
    return this.table.putIf(
      item,
      allOf(
        eq('owner_id', current.owner_id),
        eq('claimed_at', current.claimed_at),
        current.owner_token === undefined ? absent('owner_token') : eq('owner_token', current.owner_token),
      ),
    );
  }
}
