import { ConditionFailedError } from '../../core/errors.js';
import { StoreConflict } from '../../core/ports.js';
import type { Item, ItemKey, TableClient } from './client.js';
import { allOf, type Cond, itemPresent, tenantIs, versionIs } from './expr.js';

/** Throws the store's {@link ConditionFailedError} with one of the {@link StoreConflict} codes. */
export function conflict(code: string, message: string): never {
  throw new ConditionFailedError(message, { code });
}

/** Conditional put; on a lost condition runs `onConflict`, which throws the domain error. */
export async function putOr(
  table: TableClient,
  item: Item,
  when: Cond,
  onConflict: () => unknown,
): Promise<void> {
  try {
    await table.put(item, when);
  } catch (error) {
    if (error instanceof ConditionFailedError) await onConflict();
    throw error;
  }
}

/**
 * Deletes a versioned record (only at `expectedVersion` when given, only of `tenantId` when
 * given); undefined if absent or of another tenant, `version_conflict` if stale.
 */
export async function deleteVersioned<T>(
  table: TableClient,
  key: ItemKey,
  fromItem: (item: Item) => T,
  options: { expectedVersion?: number | undefined; tenantId?: string } = {},
): Promise<T | undefined> {
  const parts = [itemPresent()];
  if (options.expectedVersion !== undefined) parts.push(versionIs(options.expectedVersion));
  if (options.tenantId !== undefined) parts.push(tenantIs(options.tenantId));
  try {
    const old = await table.delete(key, allOf(...parts));
    return old === undefined ? undefined : fromItem(old);
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
  }
  const current = await table.get(key);
  if (current === undefined || (options.tenantId !== undefined && current.tenant_id !== options.tenantId)) {
    return undefined;
  }
  return conflict(StoreConflict.versionConflict, 'Version is stale.');
}

/** Epoch seconds of epoch milliseconds. */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
