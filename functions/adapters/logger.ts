import { Logger } from '@aws-lambda-powertools/logger';
import { currentLogContext, type Log } from '../core/log.js';

/** Keys whose values are never written, wherever they appear in a log line's metadata. */
const REDACTED_KEYS =
  /^(authorization|token|.*_token|secret|.*secret.*|headers|metadata|password|cookie|jwt|key|keys)$/i;

function redact(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return meta;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) out[k] = REDACTED_KEYS.test(k) ? '[redacted]' : v;
  return out;
}

/** The request's context keys (request id, room, tenant, ...) under the line's own metadata. */
function withContext(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  const context = currentLogContext();
  return redact(context === undefined ? meta : { ...context, ...meta }) ?? {};
}

function wrap(logger: Logger): Log {
  return {
    debug: (m, meta) => logger.debug(m, withContext(meta)),
    info: (m, meta) => logger.info(m, withContext(meta)),
    warn: (m, meta) => logger.warn(m, withContext(meta)),
    error: (m, meta) => logger.error(m, withContext(meta)),
    child: (keys) => {
      const child = logger.createChild();
      child.appendPersistentKeys(redact(keys) ?? {});
      return wrap(child);
    },
  };
}

/**
 * Structured JSON logs through Powertools Logger. Every line carries the current request's
 * context (`request_id`, and `room`, `event_id`, `tenant_id`, `dispatch_id` once known; see
 * {@link runWithLogContext}). Metadata keys that name secrets are redacted by construction; the
 * event is never logged (`logEvent` stays off).
 */
export function createLog(options: { service: string; level: string }): Log {
  const logger = new Logger({
    serviceName: options.service,
    logLevel: options.level.toUpperCase() as 'INFO',
  });
  return wrap(logger);
}
