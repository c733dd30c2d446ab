import { MAX_USER_ID, USER_ID } from '@livekit-mcp-dispatch/contract';
import type { Context, Hono } from 'hono';
import { cors } from 'hono/cors';
import { array, looseObject, maxLength, minLength, optional, string } from 'zod/mini';
import type { ConnectionPrincipal, ConnectionService } from '../core/connections/service.js';
import { DomainError } from '../core/errors.js';
import { bodyLimitProblem } from '../http/body-limit.js';
import { parseBody } from '../http/validate.js';

/** Largest request body of the connection routes (docs/api.md §7). */
const BODY_LIMIT = 64 * 1024;

/** `POST …/authorize` (docs/api.md §8). */
export const authorizeRequest = looseObject({
  return_to: string().check(minLength(1), maxLength(2048)),
  scopes: optional(array(string().check(minLength(1), maxLength(256))).check(maxLength(32))),
});
/** `POST …/complete`. */
export const completeRequest = looseObject({ result: string().check(minLength(1), maxLength(512)) });
/** `PUT /v1/connections/{server}` for a `user_token` server (write-only). */
export const userTokenRequest = looseObject({ token: string().check(minLength(1), maxLength(8192)) });

/** What the connection routes need. */
export interface ConnectionRouteDeps {
  connections: ConnectionService;
  verifier: {
    verify(authorizationHeader: string | undefined): Promise<{ sub: string; tenantId: string | undefined }>;
  };
  corsOrigins: readonly string[];
}

/** The page an unknown `state` gets: no redirect, nothing about the request echoed. */
const UNKNOWN_STATE_PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>Sign-in link not recognised</title></head>' +
  '<body><h1>This sign-in link is not recognised</h1><p>Go back to the app and connect again.</p></body></html>';

/**
 * Mounts `/v1/connections…`, `/v1/oauth/callback` and `/oauth/…` (docs/api.md §8) on the session
 * app: the same JWT rules as `/v1/sessions`, CORS for `/v1/connections` alike.
 */
export function mountConnectionRoutes(app: Hono, deps: ConnectionRouteDeps): void {
  const { connections } = deps;
  if (deps.corsOrigins.length > 0) {
    const policy = cors({
      origin: [...deps.corsOrigins],
      allowMethods: ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS'],
      allowHeaders: ['Authorization', 'Content-Type'],
      maxAge: 600,
    });
    app.use('/v1/connections', policy);
    app.use('/v1/connections/*', policy);
  }
  const principal = async (c: Context): Promise<ConnectionPrincipal> => {
    const p = await deps.verifier.verify(c.req.header('authorization'));
    if ([...p.sub].length > MAX_USER_ID || !USER_ID.test(p.sub)) {
      throw new DomainError('user_not_found', 'No user record exists for this token.');
    }
    return { sub: p.sub, tenantId: p.tenantId };
  };
  const noStore = (c: Context) => c.header('cache-control', 'no-store');
  const limit = bodyLimitProblem(BODY_LIMIT);

  app.get('/v1/connections', async (c) => {
    const items = await connections.list(await principal(c));
    noStore(c);
    return c.json({ items });
  });
  app.get('/v1/connections/:server', async (c) => {
    const view = await connections.get(await principal(c), c.req.param('server'));
    noStore(c);
    return c.json(view);
  });
  app.put('/v1/connections/:server', limit, async (c) => {
    const who = await principal(c);
    const body = await parseBody(c, userTokenRequest);
    const view = await connections.putToken(who, c.req.param('server'), body.token);
    noStore(c);
    return c.json(view);
  });
  app.delete('/v1/connections/:server', async (c) => {
    await connections.remove(await principal(c), c.req.param('server'));
    return c.body(null, 204);
  });
  app.post('/v1/connections/:server/authorize', limit, async (c) => {
    const who = await principal(c);
    const body = await parseBody(c, authorizeRequest);
    const started = await connections.authorize(who, c.req.param('server'), {
      return_to: body.return_to,
      scopes: body.scopes,
    });
    noStore(c);
    return c.json(started, 201);
  });
  app.post('/v1/connections/:server/complete', limit, async (c) => {
    const who = await principal(c);
    const body = await parseBody(c, completeRequest);
    const view = await connections.complete(who, c.req.param('server'), body.result);
    noStore(c);
    return c.json(view);
  });
  app.post('/v1/connections/:server/test', async (c) => {
    const result = await connections.test(await principal(c), c.req.param('server'));
    noStore(c);
    return c.json(result);
  });

  app.get('/v1/oauth/callback', async (c) => {
    const outcome = await connections.callback(new URL(c.req.url).searchParams);
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'no-referrer');
    if (outcome.kind === 'unknown_state') return c.html(UNKNOWN_STATE_PAGE, 400);
    return c.redirect(outcome.location, 303);
  });
  app.get('/oauth/tenants/:tenantId/client-metadata.json', async (c) => {
    const doc = await connections.clientMetadata(c.req.param('tenantId'));
    c.header('cache-control', 'public, max-age=300');
    return c.json(doc);
  });
  app.get('/oauth/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json(connections.jwks());
  });
}
