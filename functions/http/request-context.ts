import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { runWithLogContext } from '../core/log.js';

/** What `hono/aws-lambda` puts in `c.env` (API Gateway HTTP API, payload v2). */
interface LambdaBindings {
  event?: { requestContext?: { requestId?: string } };
  lambdaContext?: { awsRequestId?: string };
}

const REQUEST_ID = /^[A-Za-z0-9._:=-]{1,128}$/;

/**
 * Opens the request's log context: every log line of the request carries `request_id` (API
 * Gateway's request id in AWS; a well-formed `X-Request-Id` or a fresh UUID locally) and, in
 * Lambda, `lambda_request_id`. Install it first: `app.use('*', requestContext())`.
 */
export function requestContext(): MiddlewareHandler {
  return async (c, next) => {
    const env = (c.env ?? {}) as LambdaBindings;
    const header = c.req.header('x-request-id');
    const requestId =
      env.event?.requestContext?.requestId ??
      (header !== undefined && REQUEST_ID.test(header) ? header : randomUUID());
    const keys: Record<string, unknown> = { request_id: requestId };
    if (env.lambdaContext?.awsRequestId) keys.lambda_request_id = env.lambdaContext.awsRequestId;
    await runWithLogContext(keys, next);
  };
}
