import { ConditionFailedError } from '../../core/errors.js';
import type { Item, TableClient } from './client.js';
import type { Cond } from './expr.js';

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

/** Epoch seconds of epoch milliseconds. */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
