import type { TenantRecord } from '../../core/model.js';
import type { Page, PageRequest } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import { catalogFromItem } from './catalog.js';
import type { Item, TableClient } from './client.js';
import { defined, fields, mcpFromItem } from './fields.js';
import type { UniqueClaims } from './unique-claims.js';
import { VersionedRecords } from './versioned.js';

/** The item of a tenant: its record, keyed by id, listed under all tenants. */
export function tenantToItem(record: TenantRecord): Item {
  return {
    ...record,
    ...keys.tenant(record.tenant_id),
    gsi1pk: keys.allTenants(),
    gsi1sk: record.tenant_id,
  };
}

/** A tenant record as read, checked (key attributes dropped). */
export function tenantFromItem(item: Item): TenantRecord {
  const f = fields(item, 'tenant');
  const mcp = mcpFromItem(item, 'tenant');
  return {
    tenant_id: f.string('tenant_id'),
    name: f.string('name'),
    ...defined('mcp', mcp),
    ...defined('mcp_servers', catalogFromItem(item)),
    ...defined(
      'oauth_return_urls',
      item.oauth_return_urls === undefined ? undefined : f.strings('oauth_return_urls'),
    ),
    dispatch_policy: f.oneOf('dispatch_policy', ['per_room', 'per_participant']),
    agent_names: f.strings('agent_names'),
    ...defined('max_concurrent_sessions', f.optionalNumber('max_concurrent_sessions')),
    status: f.oneOf('status', ['active', 'suspended', 'deleting']),
    webhook_dispatch: f.boolean('webhook_dispatch'),
    sip_trunk_ids: f.strings('sip_trunk_ids'),
    version: f.number('version'),
    created_at: f.string('created_at'),
    updated_at: f.string('updated_at'),
  };
}

/** Tenants, with their SIP trunk ids made unique across tenants by {@link UniqueClaims}. */
export class Tenants {
  private readonly records: VersionedRecords<TenantRecord>;

  constructor(
    private readonly table: TableClient,
    private readonly unique: UniqueClaims,
  ) {
    this.records = new VersionedRecords(table, unique, {
      label: 'Tenant',
      toItem: tenantToItem,
      fromItem: tenantFromItem,
      values: (r) => r.sip_trunk_ids,
    });
  }

  private ref(tenantId: string) {
    return { key: keys.tenant(tenantId), space: { kind: 'sipTrunk' as const }, ownerId: tenantId };
  }

  /** The tenant, read strongly consistent, or undefined. */
  async get(tenantId: string): Promise<TenantRecord | undefined> {
    return this.records.get(keys.tenant(tenantId));
  }

  /**
   * Creates the tenant (create-only), one version above a deleted incarnation's, after claiming
   * its `sip_trunk_ids`.
   * @throws ConditionFailedError `already_exists`, or `sip_trunk_taken` (no claim is left behind).
   */
  async create(record: TenantRecord): Promise<TenantRecord> {
    return this.records.create(this.ref(record.tenant_id), record);
  }

  /**
   * Replaces the tenant if its version is `expectedVersion`; the stored version becomes
   * `expectedVersion + 1`. SIP trunks: new ones are claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict` (stale or missing), or `sip_trunk_taken`.
   */
  async update(record: TenantRecord, expectedVersion: number): Promise<TenantRecord> {
    return this.records.update(this.ref(record.tenant_id), record, expectedVersion);
  }

  /**
   * Deletes the tenant (only at `expectedVersion` when given), leaving its tombstone, and
   * releases its SIP trunks.
   * @returns the deleted record, or undefined if there was none.
   * @throws ConditionFailedError `version_conflict`.
   */
  async delete(tenantId: string, expectedVersion?: number): Promise<TenantRecord | undefined> {
    return this.records.delete(this.ref(tenantId), tenantId, expectedVersion);
  }

  /** All tenants by id (eventually consistent index). */
  async list(page: PageRequest = {}): Promise<Page<TenantRecord>> {
    const result = await this.table.query(
      { index: tableSchema.indexes.byTenant.name, partition: keys.allTenants() },
      page,
    );
    return { items: result.items.map(tenantFromItem), cursor: result.cursor };
  }

  /**
   * The tenant whose `sip_trunk_ids` lists this trunk (claim item read strongly consistent,
   * confirmed against the tenant record), or undefined.
   */
  async bySipTrunk(trunkId: string): Promise<TenantRecord | undefined> {
    const ownerId = await this.unique.owner({ kind: 'sipTrunk' }, trunkId);
    if (ownerId === undefined) return undefined;
    const tenant = await this.get(ownerId);
    return tenant?.sip_trunk_ids.includes(trunkId) ? tenant : undefined;
  }
}
