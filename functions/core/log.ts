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
