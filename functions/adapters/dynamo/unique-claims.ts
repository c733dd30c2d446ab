import { ConditionFailedError } from '../../core/errors.js';
import { StoreConflict } from '../../core/ports.js';
import { keys } from '../schema.js';
import type { ItemKey, TableClient } from './client.js';
import { allOf, anyOf, eq, itemAbsent } from './expr.js';
import { fields } from './fields.js';
import { conflict, seconds } from './records.js';

/** What a uniqueness claim makes unique: a user's E.164 number, or a tenant's SIP trunk id. */
export type UniqueKind = 'phone' | 'sipTrunk';

/** A uniqueness claim item: which record owns the value, since when (epoch s). */
export interface UniqueClaim {
  owner_id: string;
  claimed_at: number;
}

const keyOf = (kind: UniqueKind, value: string): ItemKey =>
  kind === 'phone' ? keys.phone(value) : keys.sipTrunk(value);

/** The item of a uniqueness claim. */
export function uniqueClaimToItem(kind: UniqueKind, value: string, claim: UniqueClaim) {
  return { ...keyOf(kind, value), owner_id: claim.owner_id, claimed_at: claim.claimed_at };
}

/** A uniqueness claim as read, checked. */
export function uniqueClaimFromItem(item: Record<string, unknown>): UniqueClaim {
  const f = fields(item, 'unique claim');
  return { owner_id: f.string('owner_id'), claimed_at: f.number('claimed_at') };
}

const claimedFor = (ownerId: string) => eq('owner_id', ownerId);

/** Options of {@link UniqueClaims}. */
export interface UniqueClaimsOptions {
  clock: () => number;
  /** How old a claim must be before it may be taken over when its owner does not list it, in s. */
  orphanGraceSeconds: number;
  /** Whether the owner's record (user or tenant) lists the value (read strongly consistent). */
  listedBy: (kind: UniqueKind, ownerId: string, value: string) => Promise<boolean>;
}

/**
 * Uniqueness claims: one item per phone number / SIP trunk id naming the record that owns it.
 * A record write claims its new values first, writes, then releases the dropped ones, so at no
 * point can two records list one value.
 */
export class UniqueClaims {
  constructor(
    private readonly table: TableClient,
    private readonly options: UniqueClaimsOptions,
  ) {}

  /** The id of the record the claim names, or undefined (strongly consistent). */
  async owner(kind: UniqueKind, value: string): Promise<string | undefined> {
    const item = await this.table.get(keyOf(kind, value));
    return item === undefined ? undefined : uniqueClaimFromItem(item).owner_id;
  }

  /**
   * Writes a record whose claims change from `before` to `after` as ordered, idempotent steps:
   * claim the added values, run `write`, release the dropped ones. If a claim or the write
   * fails, the claims this call took are released again.
   */
  async writeWithClaims(
    kind: UniqueKind,
    ownerId: string,
    before: string[],
    after: string[],
    write: () => Promise<void>,
  ): Promise<void> {
    const taken: string[] = [];
    try {
      for (const value of [...new Set(after)].sort()) {
        if (await this.claim(kind, value, ownerId)) taken.push(value);
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

  /** Deletes the claims of these values that `ownerId` holds. */
  async releaseAll(kind: UniqueKind, ownerId: string, values: string[]): Promise<void> {
    for (const value of values) await this.table.deleteIf(keyOf(kind, value), claimedFor(ownerId));
  }

  /**
   * Claims one value for `ownerId`. Idempotent for the same owner.
   * @returns true if this call created the claim, false if the owner already held it.
   */
  private async claim(kind: UniqueKind, value: string, ownerId: string): Promise<boolean> {
    const claim = { owner_id: ownerId, claimed_at: seconds(this.options.clock()) };
    const item = uniqueClaimToItem(kind, value, claim);
    try {
      const old = await this.table.put(item, anyOf(itemAbsent(), claimedFor(ownerId)));
      return old === undefined;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
    if (await this.takeOverOrphan(kind, value, claim)) return true;
    return kind === 'phone'
      ? conflict(StoreConflict.phoneNumberTaken, 'Phone number is taken.')
      : conflict(StoreConflict.sipTrunkTaken, 'SIP trunk is taken.');
  }

  /**
   * Takes over a claim whose owner's record does not list the value (a write interrupted
   * between its steps), once it is older than the grace period that covers a write in flight.
   */
  private async takeOverOrphan(kind: UniqueKind, value: string, claim: UniqueClaim): Promise<boolean> {
    const key = keyOf(kind, value);
    const item = uniqueClaimToItem(kind, value, claim);
    const raw = await this.table.get(key);
    if (raw === undefined) return this.table.putIf(item, itemAbsent());
    const current = uniqueClaimFromItem(raw);
    if (current.claimed_at > claim.claimed_at - this.options.orphanGraceSeconds) return false;
    if (await this.options.listedBy(kind, current.owner_id, value)) return false;
    return this.table.putIf(item, allOf(claimedFor(current.owner_id), eq('claimed_at', current.claimed_at)));
  }
}
