// Data only, no imports: infra/stack.ts builds its API Gateway routes from this file.

/** The HTTP methods the API serves. */
export type RouteMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** The function (bundle) that serves a route. */
export type RouteFunction = 'session' | 'webhook' | 'admin' | 'credentials';

/** The API Gateway throttle a route is under (infra/context.ts `<class>RateLimit`/`BurstLimit`). */
export type ThrottleClass = 'sessions' | 'webhook' | 'admin' | 'credentials';

/** One operation of the API: method, OpenAPI-style path, the function serving it, its throttle. */
export interface Route {
  readonly method: RouteMethod;
  /** OpenAPI path template (`{tenantId}`), as in the document and API Gateway. */
  readonly path: string;
  readonly fn: RouteFunction;
  readonly throttle: ThrottleClass;
}

/**
 * Every operation the deployed API serves: the one list the apps' tests, the OpenAPI document
 * (functions/openapi/document.ts) and the CDK stack (infra/stack.ts) are held to
 * (test/contract/routes.test.ts). `npm start`'s `/healthz` and dev JWKS are local-only.
 */
export const routes: readonly Route[] = [
  { method: 'GET', path: '/openapi.json', fn: 'admin', throttle: 'admin' },
  { method: 'POST', path: '/v1/sessions', fn: 'session', throttle: 'sessions' },
  { method: 'GET', path: '/v1/connections', fn: 'session', throttle: 'sessions' },
  { method: 'GET', path: '/v1/connections/{server}', fn: 'session', throttle: 'sessions' },
  { method: 'PUT', path: '/v1/connections/{server}', fn: 'session', throttle: 'sessions' },
  { method: 'DELETE', path: '/v1/connections/{server}', fn: 'session', throttle: 'sessions' },
  { method: 'POST', path: '/v1/connections/{server}/authorize', fn: 'session', throttle: 'sessions' },
  { method: 'POST', path: '/v1/connections/{server}/complete', fn: 'session', throttle: 'sessions' },
  { method: 'POST', path: '/v1/connections/{server}/test', fn: 'session', throttle: 'sessions' },
  { method: 'GET', path: '/v1/oauth/callback', fn: 'session', throttle: 'sessions' },
  {
    method: 'GET',
    path: '/oauth/tenants/{tenantId}/client-metadata.json',
    fn: 'session',
    throttle: 'sessions',
  },
  { method: 'GET', path: '/oauth/jwks.json', fn: 'session', throttle: 'sessions' },
  { method: 'POST', path: '/v1/livekit/webhook', fn: 'webhook', throttle: 'webhook' },
  { method: 'POST', path: '/v1/worker/credentials', fn: 'credentials', throttle: 'credentials' },
  { method: 'GET', path: '/v1/admin/tenants', fn: 'admin', throttle: 'admin' },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}', fn: 'admin', throttle: 'admin' },
  { method: 'PUT', path: '/v1/admin/tenants/{tenantId}', fn: 'admin', throttle: 'admin' },
  { method: 'DELETE', path: '/v1/admin/tenants/{tenantId}', fn: 'admin', throttle: 'admin' },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}/users', fn: 'admin', throttle: 'admin' },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}/users/{userId}', fn: 'admin', throttle: 'admin' },
  { method: 'PUT', path: '/v1/admin/tenants/{tenantId}/users/{userId}', fn: 'admin', throttle: 'admin' },
  { method: 'DELETE', path: '/v1/admin/tenants/{tenantId}/users/{userId}', fn: 'admin', throttle: 'admin' },
  {
    method: 'POST',
    path: '/v1/admin/tenants/{tenantId}/users/{userId}/revoke',
    fn: 'admin',
    throttle: 'admin',
  },
  {
    method: 'GET',
    path: '/v1/admin/tenants/{tenantId}/users/{userId}/connections',
    fn: 'admin',
    throttle: 'admin',
  },
  {
    method: 'DELETE',
    path: '/v1/admin/tenants/{tenantId}/users/{userId}/connections/{server}',
    fn: 'admin',
    throttle: 'admin',
  },
  {
    method: 'POST',
    path: '/v1/admin/tenants/{tenantId}/servers/{server}/discover',
    fn: 'admin',
    throttle: 'admin',
  },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}/connections', fn: 'admin', throttle: 'admin' },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}/audit', fn: 'admin', throttle: 'admin' },
  { method: 'GET', path: '/v1/admin/tenants/{tenantId}/sessions', fn: 'admin', throttle: 'admin' },
];

/** One API Gateway route: its key (`METHOD /path`), the function behind it and its throttle. */
export interface GatewayRoute {
  readonly key: string;
  readonly method: RouteMethod | 'ANY';
  readonly path: string;
  readonly fn: RouteFunction;
  readonly throttle: ThrottleClass;
}

/** The admin function's one API Gateway route: user ids are arbitrary strings (an encoded `/` too). */
export const ADMIN_PROXY_PATH = '/v1/admin/{proxy+}';

/**
 * The API Gateway routes that serve {@link routes}: every admin path through one
 * `ANY /v1/admin/{proxy+}`; every other path by its own method, plus `ANY` on the same path so
 * that an unknown method reaches the function's 405 (API Gateway would answer a bare 404).
 */
export function gatewayRoutes(list: readonly Route[] = routes): GatewayRoute[] {
  const out = new Map<string, GatewayRoute>();
  const add = (method: GatewayRoute['method'], path: string, r: Route) => {
    const key = `${method} ${path}`;
    if (!out.has(key)) out.set(key, { key, method, path, fn: r.fn, throttle: r.throttle });
  };
  for (const r of list) {
    if (r.path.startsWith('/v1/admin/')) {
      add('ANY', ADMIN_PROXY_PATH, r);
    } else {
      add(r.method, r.path, r);
      add('ANY', r.path, r);
    }
  }
  return [...out.values()];
}

/** A path template in Hono's syntax (`:tenantId`). */
export function honoPath(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

/** The `Allow` value of a path: its methods, `HEAD` with `GET` (Hono answers it from the GET route). */
export function allowOf(path: string, list: readonly Route[] = routes): string {
  const methods = list.filter((r) => r.path === path).map((r) => r.method);
  if (methods.includes('GET')) methods.splice(methods.indexOf('GET') + 1, 0, 'HEAD' as RouteMethod);
  return methods.join(', ');
}
