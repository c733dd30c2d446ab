import { Logger } from '@aws-lambda-powertools/logger';
import type { Log } from '../core/log.js';

/** Keys whose values are never written, wherever they appear in a log line's metadata. */
const REDACTED_KEYS = /^(authorization|token|.*_token|secret|.*secret.*|headers|metadata|password|cookie|jwt|key|keys)$/i;

function redact(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return meta;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) out[k] = REDACTED_KEYS.test(k) ? '[redacted]' : v;
  return out;
}

function wrap(logger: Logger): Log {
  return {
    debug: (m, meta) => logger.debug(m, redact(meta) ?? {}),
    info: (m, meta) => logger.info(m, redact(meta) ?? {}),
    warn: (m, meta) => logger.warn(m, redact(meta) ?? {}),
    error: (m, meta) => logger.error(m, redact(meta) ?? {}),
    child: (keys) => {
      const child = logger.createChild();
      child.appendPersistentKeys(redact(keys) ?? {});
      return wrap(child);
    },
  };
}

/**
 * Structured JSON logs through Powertools Logger. Metadata keys that name secrets are redacted
 * by construction; the event is never logged (`logEvent` stays off).
 */
export function createLog(options: { service: string; level: string }): Log {
  const logger = new Logger({
    serviceName: options.service,
    logLevel: options.level.toUpperCase() as 'INFO',
  });
  return wrap(logger);
}
