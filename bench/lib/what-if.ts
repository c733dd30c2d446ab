import type { DispatchStore } from '../../functions/core/dispatcher.js';

/**
 * A what-if, not a fix: a store whose I/O is what the session path would do with two levers
 * applied in core/dispatcher.ts and core/sessions.ts (owned elsewhere), so their effect can be
 * measured before anyone changes the code.
 *
 * 1. No dispatch claim for a session's room: it is a fresh random name nobody else can hold, so
 *    `tryClaim`/`completeClaim` of `DISPATCH#…` keys do nothing (−2 conditional writes).
 * 2. The rate-limit counter is written in parallel with the caller's reads instead of after the
 *    claim (−1 sequential round trip); `hitRate` then returns that earlier result.
 */
export function leverStore(store: DispatchStore): DispatchStore {
  const early = new Map<string, Promise<boolean>[]>();
  const lean = Object.create(store) as DispatchStore;
  const isDispatchClaim = (key: { pk: string }) => key.pk.startsWith('DISPATCH#');
  lean.tryClaim = async (key, options) =>
    isDispatchClaim(key)
      ? { won: true, owner: 'what-if', previous: undefined }
      : store.tryClaim(key, options);
  lean.completeClaim = async (key, owner, attrs, ttl) => {
    if (!isDispatchClaim(key)) await store.completeClaim(key, owner, attrs, ttl);
  };
  lean.releaseClaim = async (key, owner) => (isDispatchClaim(key) ? true : store.releaseClaim(key, owner));
  lean.getUser = (userId) => {
    const list = early.get(userId) ?? [];
    list.push(store.hitRate(userId, 1_000_000));
    early.set(userId, list);
    return store.getUser(userId);
  };
  lean.hitRate = (userId, limit) => early.get(userId)?.shift() ?? store.hitRate(userId, limit);
  return lean;
}
