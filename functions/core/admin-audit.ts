import type { AdminActor } from './admin-access.js';
import type { Log } from './log.js';
import type { AuditRecord, StoredMcp } from './model.js';
import type { AuditStore } from './ports.js';
import { createOrRequirePrecondition, type Precondition } from './preconditions.js';

/** How old a write must be before its missing audit entry counts as lost (ms). */
const AUDIT_REPAIR_GRACE_MS = 60_000;

/**
 * Audit target of one incarnation of a record: its path plus its creation time, so a record
 * deleted and created again starts a new version series instead of colliding with the old one.
 */
export function auditTarget(path: string, createdAt: string): string {
  return `${path}#${createdAt}`;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function changedMcpFields(
  before: StoredMcp | undefined,
  after: StoredMcp | undefined,
  headersGiven: boolean,
) {
  const out: string[] = [];
  for (const f of ['url', 'transport', 'allowed_tools', 'name'] as const) {
    if (!same(before?.[f], after?.[f])) out.push(`mcp.${f}`);
  }
  if (
    before?.token_fingerprint !== after?.token_fingerprint ||
    (before?.token_sealed === undefined) !== (after?.token_sealed === undefined)
  ) {
    out.push('mcp.token');
  }
  if (
    headersGiven ||
    !same(before?.header_names, after?.header_names) ||
    (before?.headers_sealed === undefined) !== (after?.headers_sealed === undefined)
  ) {
    out.push('mcp.headers');
  }
  return out;
}

function changedFields<T extends { mcp?: StoredMcp }>(
  before: T | undefined,
  after: T,
  fields: readonly (keyof T & string)[],
  headersGiven: boolean,
): string[] {
  const out: string[] = [];
  for (const f of fields) if (!same(before?.[f], after[f])) out.push(f);
  out.push(...changedMcpFields(before?.mcp, after.mcp, headersGiven));
  return out;
}

function tokenFingerprints(before: StoredMcp | undefined, after: StoredMcp | undefined) {
  const out: { old_token_fingerprint?: string; new_token_fingerprint?: string } = {};
  if (before?.token_fingerprint !== undefined) out.old_token_fingerprint = before.token_fingerprint;
  if (after?.token_fingerprint !== undefined) out.new_token_fingerprint = after.token_fingerprint;
  return out;
}

/** How a record is written by {@link Auditor.writeAudited}. */
export interface AuditedWrite<T> {
  expected: number | 'create';
  pre: Precondition;
  create: (record: T) => Promise<T>;
  update: (record: T, expectedVersion: number) => Promise<T>;
  fields: readonly (keyof T & string)[];
  headersGiven: boolean;
  /** Changed fields the caller computed itself (the catalog's, catalog-audit.ts). */
  moreChanged?: readonly string[];
}

/** A record the audit log follows. */
export type AuditedRecord = { tenant_id: string; version: number; updated_at: string; mcp?: StoredMcp };

/** The admin audit trail: one entry per write, a repaired entry for a write that lost its own. */
export interface Auditor {
  /** Writes the audit record of one write; retried, and a lost one is logged (the gap shows). */
  audit(entry: AuditRecord): Promise<void>;
  /**
   * Creates or updates a record as the precondition decided, then audits the write: which
   * fields changed and the token fingerprints before and after.
   */
  writeAudited<T extends AuditedRecord>(
    actor: AdminActor,
    target: string,
    existing: T | undefined,
    record: T,
    write: AuditedWrite<T>,
  ): Promise<T>;
  /** Audits the deletion of a record at `path` (its last version, one past the stored one). */
  auditDeletion(
    actor: AdminActor,
    tenantId: string,
    path: string,
    old: { version: number; created_at: string; mcp?: StoredMcp },
  ): Promise<void>;
  /** Gives the current version of a record whose audit step was lost an entry by an unknown actor. */
  repairAuditGap(
    tenantId: string,
    target: string,
    current: { version: number; updated_at: string },
  ): Promise<void>;
}

/** Creates the {@link Auditor}. */
export function createAuditor(deps: {
  store: Pick<AuditStore, 'putAudit' | 'getAudit'>;
  log: Log;
  clock: () => Date;
}): Auditor {
  const { store, log, clock } = deps;

  /** Writes the audit record of one write; retried, and a lost one is logged (the gap shows). */
  async function audit(entry: AuditRecord): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await store.putAudit(entry);
        return;
      } catch (err) {
        if (attempt === 3) {
          log.error('audit write failed', {
            target: entry.target,
            version: entry.version,
            error: (err as Error).name,
          });
        }
      }
    }
  }

  /**
   * Creates or updates a record as the precondition decided, then audits the write: which
   * fields changed and the token fingerprints before and after. `record.updated_at` is the
   * time of the write.
   */
  async function writeAudited<T extends AuditedRecord>(
    actor: AdminActor,
    target: string,
    existing: T | undefined,
    record: T,
    write: AuditedWrite<T>,
  ): Promise<T> {
    const { expected } = write;
    const stored =
      expected === 'create'
        ? await createOrRequirePrecondition(() => write.create(record), write.pre)
        : await write.update(record, expected);
    await audit({
      tenant_id: record.tenant_id,
      target,
      version: stored.version,
      actor: actor.sub,
      action: existing === undefined ? 'create' : 'update',
      changed_fields: [
        ...changedFields(existing, stored, write.fields, write.headersGiven),
        ...(write.moreChanged ?? []),
      ],
      ...tokenFingerprints(existing?.mcp, stored.mcp),
      at: record.updated_at,
    });
    return stored;
  }

  /** Audits the deletion of a record at `path` (its last version, one past the stored one). */
  async function auditDeletion(
    actor: AdminActor,
    tenantId: string,
    path: string,
    old: { version: number; created_at: string; mcp?: StoredMcp },
  ): Promise<void> {
    await audit({
      tenant_id: tenantId,
      target: auditTarget(path, old.created_at),
      version: old.version + 1,
      actor: actor.sub,
      action: 'delete',
      changed_fields: [],
      ...tokenFingerprints(old.mcp, undefined),
      at: clock().toISOString(),
    });
  }

  /**
   * Repairs a gap left by a write whose audit step was lost: the record's current version gets
   * an audit entry saying a write happened, by an unknown actor. A write younger than the grace
   * period may still be writing its own entry (which would then lose to the repair), so it is left.
   */
  async function repairAuditGap(
    tenantId: string,
    target: string,
    current: { version: number; updated_at: string },
  ) {
    if (clock().getTime() - Date.parse(current.updated_at) < AUDIT_REPAIR_GRACE_MS) return;
    if ((await store.getAudit(target, current.version)) !== undefined) return;
    log.warn('audit gap repaired', { target, version: current.version });
    await audit({
      tenant_id: tenantId,
      target,
      version: current.version,
      actor: 'unknown',
      action: current.version === 1 ? 'create' : 'update',
      changed_fields: ['unknown'],
      at: current.updated_at,
    });
  }

  return { audit, writeAudited, auditDeletion, repairAuditGap };
}
