import { ConditionFailedError } from '../../core/errors.js';
import { StoreConflict } from '../../core/ports.js';
import type { Item, ItemKey, TableClient } from './client.js';
import { absent, allOf, type Cond, eq, itemAbsent, versionIs } from './expr.js';
import { conflict } from './records.js';
import type { UniqueClaims, UniqueSpace } from './unique-claims.js';

/** One record's place in the table and in the uniqueness claims. */
export interface RecordRef {
  key: ItemKey;
  space: UniqueSpace;
  /** The record's id, as its claims name it. */
  ownerId: string;
}

/** How a kind of record is stored. */
export interface VersionedSpec<R extends { version: number; tenant_id: string }> {
  label: string;
  toItem: (record: R) => Item;
  fromItem: (item: Item) => R;
  /** The values the record claims (phone numbers, SIP trunk ids). */
  values: (record: R) => string[];
}

/** What is at a record's key: the live record, or the last version a deleted one had (0: never). */
interface Slot<R> {
  record: R | undefined;
  version: number;
  tombstone: boolean;
}

/** The table's own lost condition (not one of the store's coded conflicts). */
const lostWrite = (error: unknown) =>
  error instanceof ConditionFailedError && error.code === 'condition_failed';

/** A live item, at this version. */
const liveAt = (version: number): Cond => allOf(absent('deleted'), versionIs(version));

/**
 * Versioned records (tenants, users) whose versions never repeat for an id (docs/api.md §10): a
 * delete replaces the item with a tombstone (`deleted: true`, no index keys, the version the
 * delete produced), and a create over a tombstone starts above it. So an `If-Match` from before
 * a delete never matches after it: a tombstone matches no update, and every later version is
 * higher. Every decision reads the item strongly consistent; every write is one conditional put.
 */
export class VersionedRecords<R extends { version: number; tenant_id: string }> {
  constructor(
    private readonly table: TableClient,
    private readonly unique: UniqueClaims,
    private readonly spec: VersionedSpec<R>,
  ) {}

  /** The live record, read strongly consistent, or undefined. */
  async get(key: ItemKey): Promise<R | undefined> {
    return (await this.slot(key)).record;
  }

  private async slot(key: ItemKey): Promise<Slot<R>> {
    const item = await this.table.get(key);
    if (item === undefined) return { record: undefined, version: 0, tombstone: false };
    if (item.deleted === true) {
      return { record: undefined, version: Number(item.version) || 0, tombstone: true };
    }
    const record = this.spec.fromItem(item);
    return { record, version: record.version, tombstone: false };
  }

  private async listed(key: ItemKey): Promise<string[]> {
    const record = await this.get(key);
    return record === undefined ? [] : this.spec.values(record);
  }

  /**
   * Creates the record (create-only) one version above its last incarnation's, after claiming
   * its values. `already_exists` when it is live; a claim's 409; no claim is left behind.
   */
  async create(ref: RecordRef, record: R): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const slot = await this.slot(ref.key);
      if (slot.record !== undefined) conflict(StoreConflict.alreadyExists, `${this.spec.label} exists.`);
      const stored = { ...record, version: slot.version + 1 };
      const when = slot.tombstone ? allOf(eq('deleted', true), versionIs(slot.version)) : itemAbsent();
      try {
        await this.unique.writeWithClaims(ref.space, {
          ownerId: ref.ownerId,
          version: stored.version,
          before: [],
          after: this.spec.values(stored),
          write: async () => {
            await this.table.put(this.spec.toItem(stored), when);
          },
          listedNow: () => this.listed(ref.key),
        });
        return stored;
      } catch (error) {
        // Lost to a concurrent create (now live: already_exists) or delete (a newer tombstone: again).
        if (!lostWrite(error)) throw error;
        if (attempt >= 2) conflict(StoreConflict.alreadyExists, `${this.spec.label} exists.`);
      }
    }
  }

  /**
   * Replaces the live record at `expectedVersion` (stored as `expectedVersion + 1`): new values
   * claimed first, dropped ones released last. `version_conflict` when stale, gone or a tombstone.
   */
  async update(ref: RecordRef, record: R, expectedVersion: number): Promise<R> {
    const current = await this.get(ref.key);
    // The claims' ordering argument needs the version this write replaces to be one it read.
    if (
      current === undefined ||
      current.version !== expectedVersion ||
      current.tenant_id !== record.tenant_id
    ) {
      conflict(StoreConflict.versionConflict, `${this.spec.label} version is stale.`);
    }
    const stored = { ...record, version: expectedVersion + 1 };
    await this.unique.writeWithClaims(ref.space, {
      ownerId: ref.ownerId,
      version: stored.version,
      before: this.spec.values(current),
      after: this.spec.values(stored),
      write: async () => {
        try {
          await this.table.put(this.spec.toItem(stored), liveAt(expectedVersion));
        } catch (error) {
          if (error instanceof ConditionFailedError) {
            conflict(StoreConflict.versionConflict, `${this.spec.label} version is stale.`);
          }
          throw error;
        }
      },
      listedNow: () => this.listed(ref.key),
    });
    return stored;
  }

  /**
   * Replaces the live record of `tenantId` (only at `expectedVersion` when given) with its
   * tombstone, then releases its values. The deleted record, or undefined when there is none
   * (or it is another tenant's); `version_conflict` when stale.
   */
  async delete(ref: RecordRef, tenantId: string, expectedVersion?: number): Promise<R | undefined> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(ref.key);
      if (current === undefined || current.tenant_id !== tenantId) return undefined;
      if (expectedVersion !== undefined && current.version !== expectedVersion) {
        conflict(StoreConflict.versionConflict, 'Version is stale.');
      }
      const version = current.version + 1;
      const tombstone = { ...ref.key, deleted: true, version, tenant_id: current.tenant_id };
      try {
        await this.unique.writeWithClaims(ref.space, {
          ownerId: ref.ownerId,
          version,
          before: this.spec.values(current),
          after: [],
          write: async () => {
            await this.table.put(tombstone, liveAt(current.version));
          },
          listedNow: () => this.listed(ref.key),
        });
        return current;
      } catch (error) {
        // A concurrent write moved it on: decide again from what is there now.
        if (!lostWrite(error)) throw error;
        if (attempt >= 2) conflict(StoreConflict.versionConflict, 'Version is stale.');
      }
    }
  }
}
