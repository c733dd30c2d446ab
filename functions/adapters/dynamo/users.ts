import type { UserRecord } from '../../core/model.js';
import type { Page, PageRequest } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { defined, fields, mcpFromItem } from './fields.js';
import type { UniqueClaims } from './unique-claims.js';
import { VersionedRecords } from './versioned.js';

/** The item of a user: keyed by (tenant, user id), listed under its tenant. */
export function userToItem(record: UserRecord): Item {
  return {
    ...record,
    ...keys.user(record.tenant_id, record.user_id),
    gsi1pk: keys.tenantUsers(record.tenant_id),
    gsi1sk: keys.userSort(record.user_id),
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

/** Users keyed by (tenant, user id), with their phone numbers unique within the tenant. */
export class Users {
  private readonly records: VersionedRecords<UserRecord>;

  constructor(
    private readonly table: TableClient,
    private readonly unique: UniqueClaims,
  ) {
    this.records = new VersionedRecords(table, unique, {
      label: 'User',
      toItem: userToItem,
      fromItem: userFromItem,
      values: (r) => r.phone_numbers,
    });
  }

  private ref(tenantId: string, userId: string) {
    return {
      key: keys.user(tenantId, userId),
      space: { kind: 'phone' as const, tenantId },
      ownerId: userId,
    };
  }

  /** The user of this tenant, read strongly consistent, or undefined. */
  async get(tenantId: string, userId: string): Promise<UserRecord | undefined> {
    return this.records.get(keys.user(tenantId, userId));
  }

  /**
   * Creates the user (create-only), one version above a deleted incarnation's, after claiming
   * its phone numbers within the tenant.
   * @throws ConditionFailedError `already_exists` or `phone_number_taken`; no claim is left behind.
   */
  async create(record: UserRecord): Promise<UserRecord> {
    return this.records.create(this.ref(record.tenant_id, record.user_id), record);
  }

  /**
   * Replaces the user at `expectedVersion`; the version becomes `expectedVersion + 1`. Phone
   * numbers: new ones claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict` or `phone_number_taken`.
   */
  async update(record: UserRecord, expectedVersion: number): Promise<UserRecord> {
    return this.records.update(this.ref(record.tenant_id, record.user_id), record, expectedVersion);
  }

  /**
   * Deletes the user of `tenantId` (only at `expectedVersion` when given), leaving its tombstone,
   * and releases its phone numbers.
   * @returns the deleted record, or undefined if this tenant has no such user.
   * @throws ConditionFailedError `version_conflict`.
   */
  async delete(tenantId: string, userId: string, expectedVersion?: number): Promise<UserRecord | undefined> {
    return this.records.delete(this.ref(tenantId, userId), tenantId, expectedVersion);
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
   * The user of this tenant whose `phone_numbers` lists this E.164 number (claim item read
   * strongly consistent, confirmed against the user record), or undefined.
   */
  async byPhoneNumber(tenantId: string, e164: string): Promise<UserRecord | undefined> {
    const ownerId = await this.unique.owner({ kind: 'phone', tenantId }, e164);
    if (ownerId === undefined) return undefined;
    const user = await this.get(tenantId, ownerId);
    return user?.phone_numbers.includes(e164) ? user : undefined;
  }
}
