import { claimKey } from '../../functions/adapters/schema.js';
import type { ClaimRef, Store } from '../../functions/core/ports.js';

/** Store methods that write (or may write) the table. */
export const WRITE_METHODS = new Set([
  'createTenant',
  'updateTenant',
  'deleteTenant',
  'createUser',
  'updateUser',
  'deleteUser',
  'tryClaim',
  'completeClaim',
  'updateClaim',
  'releaseClaim',
  'acquireLease',
  'releaseLease',
  'hitRate',
  'putSession',
  'endSession',
  'putAudit',
]);

/** One write call: the method and its first argument (a key or a record). */
export interface WriteCall {
  method: string;
  first: unknown;
  /** The table partition key a claim write names (its reference mapped by adapters/schema.ts). */
  pk: string | undefined;
  /** `true` once it resolved, `false` once it rejected, `undefined` while pending. */
  ok?: boolean;
}

/**
 * Wraps a store so every write call is recorded (cheaper than scanning the table
 * after each of thousands of requests). `writes` is cleared by the caller between requests.
 */
export function recordingStore<S extends Store>(store: S): { store: S; writes: WriteCall[] } {
  const writes: WriteCall[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      if (!WRITE_METHODS.has(prop)) return value.bind(target);
      return async (...args: unknown[]) => {
        const call: WriteCall = { method: prop, first: args[0], pk: claimPk(args[0]) };
        writes.push(call);
        try {
          const result = await value.apply(target, args);
          call.ok = true;
          return result;
        } catch (err) {
          call.ok = false;
          throw err;
        }
      };
    },
  });
  return { store: proxy, writes };
}

function claimPk(first: unknown): string | undefined {
  if (typeof first !== 'object' || first === null || !('kind' in first)) return undefined;
  return claimKey(first as ClaimRef).pk;
}
