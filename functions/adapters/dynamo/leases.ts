import { ConditionFailedError } from '../../core/errors.js';
import type { RateWindowRead } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { allOf, anyOf, eq, expiredAt, itemAbsent, itemPresent } from './expr.js';
import { fields } from './fields.js';
import { seconds } from './records.js';

const RATE_WINDOW_MS = 60_000;
/** The window item outlives its newest admission by the window and a margin. */
const RATE_WINDOW_TTL_SECONDS = 120;
const RATE_MAX_ATTEMPTS = 8;

/** One quota lease slot of a tenant, held by one session until its TTL. */
export interface Lease {
  tenant_id: string;
  slot: number;
  holder: string;
  acquired_at: number;
  /** Epoch s (the TTL attribute). */
  expires_at: number;
}

/** The item of a lease. */
export function leaseToItem(lease: Lease): Item {
  return {
    ...keys.lease(lease.tenant_id, lease.slot),
    tenant_id: lease.tenant_id,
    slot: lease.slot,
    holder: lease.holder,
    acquired_at: lease.acquired_at,
    [tableSchema.ttlAttribute]: lease.expires_at,
  };
}

/** A lease as read, checked. */
export function leaseFromItem(item: Item): Lease {
  const f = fields(item, 'lease');
  return {
    tenant_id: f.string('tenant_id'),
    slot: f.number('slot'),
    holder: f.string('holder'),
    acquired_at: f.number('acquired_at'),
    expires_at: f.number(tableSchema.ttlAttribute),
  };
}

/** Quota leases (a tenant's concurrent sessions) and per-user start windows. */
export class Leases {
  constructor(
    private readonly table: TableClient,
    private readonly clock: () => number,
  ) {}

  /**
   * Takes one of the tenant's `max` lease slots for `holder`, for `ttlSeconds`. Reads all slots
   * with one strongly consistent Query and writes a free one (absent or past its TTL) with a
   * conditional put, trying other free slots and re-reading when racing writers win.
   * @returns the slot number (0-based), or null when `max` leases are active.
   */
  async acquire(tenantId: string, max: number, holder: string, ttlSeconds: number): Promise<number | null> {
    for (let round = 0; round < max + 2; round++) {
      const now = this.clock();
      const items = await this.table.queryAll({ partition: keys.leasePartition(tenantId), consistent: true });
      const active = new Set(
        items
          .map(leaseFromItem)
          .filter((l) => l.expires_at >= seconds(now))
          .map((l) => l.slot),
      );
      if (active.size >= max) return null;
      const free = Array.from({ length: max }, (_, slot) => slot).filter((slot) => !active.has(slot));
      // Start at a random free slot so concurrent acquirers rarely collide.
      const offset = Math.floor(Math.random() * free.length);
      for (const slot of [...free.slice(offset), ...free.slice(0, offset)]) {
        const item = leaseToItem({
          tenant_id: tenantId,
          slot,
          holder,
          acquired_at: now,
          expires_at: seconds(now) + ttlSeconds,
        });
        if (await this.table.putIf(item, anyOf(itemAbsent(), expiredAt(seconds(now))))) return slot;
      }
    }
    return null;
  }

  /** Frees the slot if `holder` still holds it (a lease retaken by another holder is left alone). */
  async release(tenantId: string, slot: number, holder: string): Promise<boolean> {
    return this.table.deleteIf(keys.lease(tenantId, slot), eq('holder', holder));
  }

  /**
   * Admits one session start for (tenant, user) unless `limitPerMinute` starts were admitted in
   * the last 60 s (a sliding window: at most `limitPerMinute` in ANY 60 s, docs/api.md §4).
   *
   * One item holds the admission times still inside the window and a version. An admission
   * reads it strongly consistent, drops times 60 s old or more, and writes the list plus `now`
   * on the condition that the version is still the one it read; a lost race re-reads. So every
   * admission is decided on the exact list of the admissions before it, and a refusal writes
   * nothing (docs/api.md §4: refusals write nothing).
   * @returns true if admitted, false if the window is full.
   */
  async hitRate(
    tenantId: string,
    userId: string,
    limitPerMinute: number,
    key: { pk: string; sk: string } = keys.rateWindow(tenantId, userId),
    seen?: RateWindowRead,
  ): Promise<boolean> {
    return this.admit(key, limitPerMinute, seen);
  }

  /** The (tenant, user) start window item as it is now (strongly consistent), for {@link hitRate}. */
  rateWindow(tenantId: string, userId: string): Promise<RateWindowRead> {
    return this.readWindow(keys.rateWindow(tenantId, userId));
  }

  /** One session's renewal window item as it is now (strongly consistent), for {@link hitRenewalRate}. */
  renewalRateWindow(sid: string): Promise<RateWindowRead> {
    return this.readWindow(keys.renewalRateWindow(sid));
  }

  private async readWindow(key: { pk: string; sk: string }): Promise<RateWindowRead> {
    return { item: await this.table.get(key) };
  }

  /**
   * {@link Leases.hitRate} for one session's renewals (docs/api.md §9), its own window item. With
   * `seen` the first attempt decides on that read: its conditional put (on the version read)
   * fails if anything was admitted since, and the next attempt reads afresh.
   */
  async hitRenewalRate(sid: string, limitPerMinute: number, seen?: RateWindowRead): Promise<boolean> {
    return this.admit(keys.renewalRateWindow(sid), limitPerMinute, seen);
  }

  /**
   * Sets the lease's expiry to now + `ttlSeconds` if `holder` still holds it (docs/api.md §9: each
   * renewal extends its session's lease). A lease released (its session ended) or taken over by
   * another holder is left alone, so a renewal can never bring a freed lease back.
   * @returns whether the lease was extended.
   */
  async extend(tenantId: string, slot: number, holder: string, ttlSeconds: number): Promise<boolean> {
    try {
      await this.table.update(
        keys.lease(tenantId, slot),
        { set: [[tableSchema.ttlAttribute, seconds(this.clock()) + ttlSeconds]] },
        allOf(itemPresent(), eq('holder', holder)),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  private async admit(
    key: { pk: string; sk: string },
    limitPerMinute: number,
    seen?: RateWindowRead,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < RATE_MAX_ATTEMPTS; attempt++) {
      const now = this.clock();
      const item =
        attempt === 0 && seen !== undefined ? (seen.item as Item | undefined) : await this.table.get(key);
      const version = typeof item?.version === 'number' ? item.version : 0;
      const admitted = Array.isArray(item?.admitted)
        ? item.admitted.filter((t): t is number => typeof t === 'number' && t > now - RATE_WINDOW_MS)
        : [];
      if (admitted.length >= limitPerMinute) return false;
      const written = await this.table.putIf(
        {
          ...key,
          admitted: [...admitted, now],
          version: version + 1,
          [tableSchema.ttlAttribute]: seconds(now) + RATE_WINDOW_TTL_SECONDS,
        },
        item === undefined ? itemAbsent() : eq('version', version),
      );
      if (written) return true;
    }
    // Many admissions of this very user raced this one: refusing is the safe side of the limit.
    return false;
  }
}
