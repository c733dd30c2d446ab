import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { problem } from './problem.js';

/** 64 KiB: the limit of the session and admin APIs (docs/api.md §7). */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * Refuses request bodies over `maxBytes` before anything parses them, chunked or not, with a
 * 413 problem `payload_too_large`. Install it first: `app.use('*', bodyLimitProblem(64 * 1024))`.
 */
export function bodyLimitProblem(maxBytes: number = DEFAULT_BODY_LIMIT): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => problem('payload_too_large', `The request body is larger than ${maxBytes} bytes.`),
  });
}
