import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The logging port the domain writes to. Implementations must be structured (JSON); callers
 * pass only non-secret metadata (ids, codes, counts) — never tokens, header values or claims.
 */
export interface Log {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  /** A child that adds `keys` to every line (request id, room, event id, tenant id, ...). */
  child(keys: Record<string, unknown>): Log;
}

/** A log that drops everything (tests that don't look at logs). */
export const silentLog: Log = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLog;
  },
};

// One store per request: the request-context middleware opens it, the domain adds ids as it learns
// them, and the log adapter writes its keys on every line of that request (concurrent requests of
// the local server included).
const requestContext = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs `fn` with a fresh log context holding `keys` (the request id); used once per request. */
export function runWithLogContext<T>(keys: Record<string, unknown>, fn: () => T): T {
  return requestContext.run({ ...keys }, fn);
}

/**
 * Adds non-secret ids (`room`, `tenant_id`, `dispatch_id`, `event_id`) to every later line of the
 * current request. Outside a request it does nothing.
 */
export function addLogContext(keys: Record<string, unknown>): void {
  const store = requestContext.getStore();
  if (store === undefined) return;
  for (const [k, v] of Object.entries(keys)) if (v !== undefined && v !== null && v !== '') store[k] = v;
}

/** The current request's log keys, if any. */
export function currentLogContext(): Readonly<Record<string, unknown>> | undefined {
  return requestContext.getStore();
}
