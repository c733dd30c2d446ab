import type { Context, Hono } from 'hono';
import { problem } from './problem.js';
import { allowOf, honoPath, type RouteFunction, routes } from './routes.js';

/**
 * Answers every method a path of `fn` does not serve with 405 `method_not_allowed` and its
 * `Allow` (RFC 9110 §15.5.6). Install it after the app's own routes: Hono runs the first
 * matching handler, so only methods without one get here.
 */
export function methodNotAllowed<T extends Hono>(app: T, fn: RouteFunction): T {
  const paths = new Set(routes.filter((r) => r.fn === fn).map((r) => r.path));
  for (const path of paths) {
    const allow = allowOf(path);
    app.all(honoPath(path), (c: Context) =>
      problem('method_not_allowed', `${c.req.method} is not allowed here; use ${allow}.`, undefined, {
        allow,
      }),
    );
  }
  return app;
}
