import { randomUUID } from 'node:crypto';
import { ConditionFailedError, StoreUnavailableError } from '../../core/errors.js';
import {
  type ClaimAttempt,
  type ClaimOptions,
  type ClaimRef,
  type ClaimView,
  StoreConflict,
} from '../../core/ports.js';
import { claimKey, tableSchema } from '../schema.js';
import { failedItem, type Item, keysFit, type TableClient } from './client.js';
import type { Changes } from './expr.js';
import { allOf, anyOf, eq, expiredAt, itemAbsent, lessThan } from './expr.js';
import { fields } from './fields.js';
import { conflict, seconds } from './records.js';

/** An expiring claim as read back: the port's view plus its times. */
export interface Claim extends ClaimView {
  /** Until when (epoch ms) an in-progress claim is held; after that it may be taken over. */
  lease_until: number;
  /** When (epoch s) the claim expires whatever its state (the TTL attribute). */
  expires_at: number;
  /** Epoch ms of the attempt that took it. */
  created_at: number;
}

const DEFAULT_HOLD_SECONDS = 30;

/** The item of a claim taken at `now` (epoch ms). */
export function claimToItem(ref: ClaimRef, owner: string, options: ClaimOptions, now: number): Item {
  return {
    ...claimKey(ref),
    claim_owner: owner,
    claim_state: 'in_progress',
    lease_until: now + (options.holdSeconds ?? DEFAULT_HOLD_SECONDS) * 1000,
    created_at: now,
    [tableSchema.ttlAttribute]: seconds(now) + options.ttlSeconds,
    attrs: options.attrs ?? {},
  };
}

/** A claim as read at `now` (epoch ms), checked. */
export function claimFromItem(item: Item, now: number): Claim {
  const f = fields(item, 'claim');
  const state = f.oneOf('claim_state', ['in_progress', 'completed']);
  const leaseUntil = f.number('lease_until');
  return {
    owner: f.string('claim_owner'),
    state,
    lease_until: leaseUntil,
    expires_at: f.number(tableSchema.ttlAttribute),
    created_at: f.number('created_at'),
    attrs: f.optionalObject('attrs') ?? {},
    stale: state === 'in_progress' && leaseUntil < now,
  };
}

const claimOwnedBy = (owner: string) => eq('claim_owner', owner);

/** Expiring claims: webhook event ids, dispatches, Idempotency-Keys, each held by one attempt. */
export class ExpiringClaims {
  constructor(
    private readonly table: TableClient,
    private readonly clock: () => number,
  ) {}

  /**
   * Claims `ref` for a new attempt. Wins if the item is absent, past its TTL, or in progress
   * past its hold (its attempt died); all three are checked inside the write's condition, as
   * TTL deletion is lazy. The winner gets a random owner token.
   */
  async tryClaim(ref: ClaimRef, options: ClaimOptions): Promise<ClaimAttempt<Claim>> {
    const owner = randomUUID();
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock();
      const takeable = anyOf(
        itemAbsent(),
        expiredAt(seconds(now)),
        allOf(eq('claim_state', 'in_progress'), lessThan('lease_until', now)),
      );
      try {
        // DynamoDB returns the item that failed the condition, so a lost claim (a duplicate
        // webhook, a repeated Idempotency-Key) costs this one request.
        const old = await this.table.put(claimToItem(ref, owner, options, now), takeable, {
          returnOnFailure: true,
        });
        return { won: true, owner, previous: old === undefined ? undefined : claimFromItem(old, now) };
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
        // The condition used `now`: the item it failed on is present, unexpired and not stale.
        const failedOn = failedItem(error);
        if (failedOn !== undefined) return { won: false, current: claimFromItem(failedOn, now) };
      }
      // Servers without ReturnValuesOnConditionCheckFailure (dynalite) need a read.
      const current = await this.get(ref);
      // Absent, expired or stale again by now (released or timed out in between): try again.
      if (current !== undefined && !current.stale) return { won: false, current };
    }
    throw new StoreUnavailableError();
  }

  /** The claim, read strongly consistent; undefined if absent or past its TTL. */
  async get(ref: ClaimRef): Promise<Claim | undefined> {
    const item = await this.table.get(claimKey(ref));
    const now = this.clock();
    if (item === undefined) return undefined;
    const claim = claimFromItem(item, now);
    return claim.expires_at < seconds(now) ? undefined : claim;
  }

  /**
   * Marks the claim completed (it is then never taken over until its TTL), merges `attrs` into
   * its data and sets its lifetime to `ttlSeconds` from now.
   * @throws ConditionFailedError `claim_lost` if `owner` no longer holds it.
   */
  async complete(ref: ClaimRef, owner: string, attrs: Record<string, unknown>, ttlSeconds: number) {
    const now = this.clock();
    await this.change(ref, owner, attrs, [
      ['claim_state', 'completed'],
      [tableSchema.ttlAttribute, seconds(now) + ttlSeconds],
    ]);
  }

  /**
   * Merges `attrs` into an in-progress claim's data and, with `holdSeconds`, extends its hold.
   * @throws ConditionFailedError `claim_lost` if `owner` no longer holds it.
   */
  async update(ref: ClaimRef, owner: string, attrs: Record<string, unknown>, holdSeconds?: number) {
    const now = this.clock();
    await this.change(
      ref,
      owner,
      attrs,
      holdSeconds === undefined ? [] : [['lease_until', now + holdSeconds * 1000]],
    );
  }

  /** Deletes the claim if `owner` holds it (a late attempt cannot delete a claim taken over). */
  async release(ref: ClaimRef, owner: string): Promise<boolean> {
    return this.table.deleteIf(claimKey(ref), claimOwnedBy(owner));
  }

  /** Whether the claim's key is within DynamoDB's key limits. */
  fits(ref: ClaimRef): boolean {
    return keysFit(claimKey(ref));
  }

  private async change(
    ref: ClaimRef,
    owner: string,
    attrs: Record<string, unknown>,
    sets: [string, unknown][],
  ): Promise<void> {
    const changes: Changes = {
      set: [
        ...sets,
        ...Object.entries(attrs).map(([name, value]): [string[], unknown] => [['attrs', name], value]),
      ],
    };
    try {
      await this.table.update(claimKey(ref), changes, claimOwnedBy(owner));
    } catch (error) {
      if (error instanceof ConditionFailedError)
        conflict(StoreConflict.claimLost, 'Claim is held by another attempt.');
      throw error;
    }
  }
}
