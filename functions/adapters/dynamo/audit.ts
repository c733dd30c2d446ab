import type { AuditRecord } from '../../core/model.js';
import type { Page, PageRequest } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { itemAbsent } from './expr.js';
import { defined, fields } from './fields.js';

const ACTIONS = ['create', 'update', 'delete', 'revoke'] as const;

/** The item of an audit record: keyed by (target, version), listed under its tenant by time. */
export function auditToItem(record: AuditRecord): Item {
  return {
    ...record,
    ...keys.audit(record.target, record.version),
    gsi1pk: keys.tenantAudit(record.tenant_id),
    gsi1sk: keys.auditSort(record.at, record.target, record.version),
  };
}

/** An audit record as read, checked (key attributes dropped). */
export function auditFromItem(item: Item): AuditRecord {
  const f = fields(item, 'audit');
  return {
    tenant_id: f.string('tenant_id'),
    target: f.string('target'),
    version: f.number('version'),
    actor: f.string('actor'),
    action: f.oneOf('action', ACTIONS),
    changed_fields: f.strings('changed_fields'),
    ...defined('old_token_fingerprint', f.optionalString('old_token_fingerprint')),
    ...defined('new_token_fingerprint', f.optionalString('new_token_fingerprint')),
    at: f.string('at'),
  };
}

/** Audit records: one per (target, version), written once. */
export class Audit {
  constructor(private readonly table: TableClient) {}

  /**
   * Writes the record unless that version's record exists (the first one stays).
   * @returns whether this call wrote it.
   */
  async put(record: AuditRecord): Promise<boolean> {
    return this.table.putIf(auditToItem(record), itemAbsent());
  }

  /** The record of (target, version), or undefined: a gap shows a write whose audit step was lost. */
  async get(target: string, version: number): Promise<AuditRecord | undefined> {
    const item = await this.table.get(keys.audit(target, version));
    return item === undefined ? undefined : auditFromItem(item);
  }

  /** Audit records of a tenant, newest first (eventually consistent index). */
  async list(tenantId: string, page: PageRequest = {}): Promise<Page<AuditRecord>> {
    const result = await this.table.query(
      { index: tableSchema.indexes.byTenant.name, partition: keys.tenantAudit(tenantId), ascending: false },
      page,
    );
    return { items: result.items.map(auditFromItem), cursor: result.cursor };
  }
}
