import type { DispatchStore } from '../../functions/core/ports.js';

/**
 * A what-if, not a fix: a store whose I/O is what the session path would do if the rate-limit
 * counter were written in parallel with the caller's reads instead of after them (−1 sequential
 * round trip). The lever was applied once and reverted (a refused request would then write the
 * counter; a refusal must write nothing), so this row keeps its cost measured.
 */
export function leverStore(store: DispatchStore): DispatchStore {
  const early = new Map<string, Promise<boolean>[]>();
  const lean = Object.create(store) as DispatchStore;
  lean.getUser = (tenantId, userId) => {
    const list = early.get(userId) ?? [];
    list.push(store.hitRate(tenantId, userId, 1_000_000));
    early.set(userId, list);
    return store.getUser(tenantId, userId);
  };
  lean.hitRate = (tenantId, userId, limit) =>
    early.get(userId)?.shift() ?? store.hitRate(tenantId, userId, limit);
  return lean;
}
