import type { UserRecord } from '../../core/model.js';
import { type Page, type PageRequest, StoreConflict } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { allOf, itemAbsent, tenantIs, versionIs } from './expr.js';
import { defined, fields, mcpFromItem } from './fields.js';
import { conflict, deleteVersioned, putOr } from './records.js';
import type { UniqueClaims } from './unique-claims.js';

/** The item of a user: keyed by user id alone (unique across tenants), listed under its tenant. */
export function userToItem(record: UserRecord): Item {
  return {
    ...record,
    ...keys.user(record.user_id),
    gsi1pk: keys.tenantUsers(record.tenant_id),
    gsi1sk: record.user_id,
  };
}

/** A user record as read, checked (key attributes dropped). */
export function userFromItem(item: Item): UserRecord {
  const f = fields(item, 'user');
  const mcp = mcpFromItem(item, 'user');
  return {
    tenant_id: f.string('tenant_id'),
    user_id: f.string('user_id'),
    ...defined('display_name', f.optionalString('display_name')),
    phone_numbers: f.strings('phone_numbers'),
    ...defined('mcp', mcp),
    status: f.oneOf('status', ['active', 'suspended']),
    version: f.number('version'),
    created_at: f.string('created_at'),
    updated_at: f.string('updated_at'),
  };
}

/** Users, with their phone numbers made unique by {@link UniqueClaims}. */
export class Users {
  constructor(
    private readonly table: TableClient,
    private readonly unique: UniqueClaims,
  ) {}

  /** The user (ids are unique across tenants), read strongly consistent, or undefined. */
  async get(userId: string): Promise<UserRecord | undefined> {
    const item = await this.table.get(keys.user(userId));
    return item === undefined ? undefined : userFromItem(item);
  }

  /**
   * Creates the user (create-only) at version 1, after claiming its phone numbers.
   * @throws ConditionFailedError `already_exists` (same tenant), `user_id_taken` (another tenant;
   *   nothing about it is revealed) or `phone_number_taken`; no claim is left behind.
   */
  async create(record: UserRecord): Promise<UserRecord> {
    const stored = { ...record, version: 1 };
    await this.unique.writeWithClaims('phone', record.user_id, [], record.phone_numbers, () =>
      putOr(this.table, userToItem(stored), itemAbsent(), async () => {
        const existing = await this.get(record.user_id);
        return existing !== undefined && existing.tenant_id !== record.tenant_id
          ? conflict(StoreConflict.userIdTaken, 'User id is taken.')
          : conflict(StoreConflict.alreadyExists, 'User exists.');
      }),
    );
    return stored;
  }

  /**
   * Replaces the user if it belongs to `record.tenant_id` at `expectedVersion`; the version
   * becomes `expectedVersion + 1`. Phone numbers: new ones claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict`, `user_id_taken` or `phone_number_taken`.
   */
  async update(record: UserRecord, expectedVersion: number): Promise<UserRecord> {
    const stored = { ...record, version: expectedVersion + 1 };
    const current = await this.get(record.user_id);
    if (current !== undefined && current.tenant_id !== record.tenant_id) {
      conflict(StoreConflict.userIdTaken, 'User id is taken.');
    }
    await this.unique.writeWithClaims(
      'phone',
      record.user_id,
      current?.phone_numbers ?? [],
      record.phone_numbers,
      () =>
        putOr(
          this.table,
          userToItem(stored),
          allOf(versionIs(expectedVersion), tenantIs(record.tenant_id)),
          () => conflict(StoreConflict.versionConflict, 'User version is stale.'),
        ),
    );
    return stored;
  }

  /**
   * Deletes the user of `tenantId` (only at `expectedVersion` when given) and releases its phone numbers.
   * @returns the deleted record, or undefined if this tenant has no such user.
   * @throws ConditionFailedError `version_conflict`.
   */
  async delete(tenantId: string, userId: string, expectedVersion?: number): Promise<UserRecord | undefined> {
    const old = await deleteVersioned(this.table, keys.user(userId), userFromItem, {
      expectedVersion,
      tenantId,
    });
    if (old !== undefined) await this.unique.releaseAll('phone', userId, old.phone_numbers);
    return old;
  }

  /** Users of a tenant by user id (eventually consistent index). */
  async list(tenantId: string, page: PageRequest = {}): Promise<Page<UserRecord>> {
    const result = await this.table.query(
      { index: tableSchema.indexes.byTenant.name, partition: keys.tenantUsers(tenantId) },
      page,
    );
    return { items: result.items.map(userFromItem), cursor: result.cursor };
  }

  /**
   * The user whose `phone_numbers` lists this E.164 number (claim item read strongly
   * consistent, confirmed against the user record), or undefined.
   */
  async byPhoneNumber(e164: string): Promise<UserRecord | undefined> {
    const ownerId = await this.unique.owner('phone', e164);
    if (ownerId === undefined) return undefined;
    const user = await this.get(ownerId);
    return user?.phone_numbers.includes(e164) ? user : undefined;
  }
}
