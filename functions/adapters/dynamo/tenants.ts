import type { CatalogServer, TenantRecord } from '../../core/model.js';
import { type Page, type PageRequest, StoreConflict } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { itemAbsent, versionIs } from './expr.js';
import { defined, fields, mcpFromItem } from './fields.js';
import { conflict, deleteVersioned, putOr } from './records.js';
import type { UniqueClaims } from './unique-claims.js';

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
    dispatch_policy: f.oneOf('dispatch_policy', ['per_room', 'per_participant']),
    agent_names: f.strings('agent_names'),
    ...defined('max_concurrent_sessions', f.optionalNumber('max_concurrent_sessions')),
    status: f.oneOf('status', ['active', 'suspended', 'deleting']),
    webhook_dispatch: f.boolean('webhook_dispatch'),
    sip_trunk_ids: f.strings('sip_trunk_ids'),
    // The catalog and return URLs as stored (the admin input checks them; docs/api.md §6).
    ...defined(
      'mcp_servers',
      Array.isArray(item.mcp_servers) ? (item.mcp_servers as CatalogServer[]) : undefined,
    ),
    ...defined(
      'oauth_return_urls',
      item.oauth_return_urls === undefined ? undefined : f.strings('oauth_return_urls'),
    ),
    version: f.number('version'),
    created_at: f.string('created_at'),
    updated_at: f.string('updated_at'),
  };
}

/** Tenants, with their SIP trunk ids made unique by {@link UniqueClaims}. */
export class Tenants {
  constructor(
    private readonly table: TableClient,
    private readonly unique: UniqueClaims,
  ) {}

  /** The tenant, read strongly consistent, or undefined. */
  async get(tenantId: string): Promise<TenantRecord | undefined> {
    const item = await this.table.get(keys.tenant(tenantId));
    return item === undefined ? undefined : tenantFromItem(item);
  }

  /**
   * Creates the tenant (create-only) at version 1, after claiming its `sip_trunk_ids`.
   * @throws ConditionFailedError `already_exists`, or `sip_trunk_taken` (no claim is left behind).
   */
  async create(record: TenantRecord): Promise<TenantRecord> {
    const stored = { ...record, version: 1 };
    await this.unique.writeWithClaims('sipTrunk', record.tenant_id, [], record.sip_trunk_ids, () =>
      putOr(this.table, tenantToItem(stored), itemAbsent(), () =>
        conflict(StoreConflict.alreadyExists, 'Tenant exists.'),
      ),
    );
    return stored;
  }

  /**
   * Replaces the tenant if its version is `expectedVersion`; the stored version becomes
   * `expectedVersion + 1`. SIP trunks: new ones are claimed first, dropped ones released last.
   * @throws ConditionFailedError `version_conflict` (stale or missing), or `sip_trunk_taken`.
   */
  async update(record: TenantRecord, expectedVersion: number): Promise<TenantRecord> {
    const stored = { ...record, version: expectedVersion + 1 };
    const current = await this.get(record.tenant_id);
    await this.unique.writeWithClaims(
      'sipTrunk',
      record.tenant_id,
      current?.sip_trunk_ids ?? [],
      record.sip_trunk_ids,
      () =>
        putOr(this.table, tenantToItem(stored), versionIs(expectedVersion), () =>
          conflict(StoreConflict.versionConflict, 'Tenant version is stale.'),
        ),
    );
    return stored;
  }

  /**
   * Deletes the tenant (only at `expectedVersion` when given) and releases its SIP trunks.
   * @returns the deleted record, or undefined if there was none.
   * @throws ConditionFailedError `version_conflict`.
   */
  async delete(tenantId: string, expectedVersion?: number): Promise<TenantRecord | undefined> {
    const old = await deleteVersioned(this.table, keys.tenant(tenantId), tenantFromItem, { expectedVersion });
    if (old !== undefined) await this.unique.releaseAll('sipTrunk', tenantId, old.sip_trunk_ids);
    return old;
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
    const ownerId = await this.unique.owner('sipTrunk', trunkId);
    if (ownerId === undefined) return undefined;
    const tenant = await this.get(ownerId);
    return tenant?.sip_trunk_ids.includes(trunkId) ? tenant : undefined;
  }
}
