import type { Context, MiddlewareHandler } from 'hono';
import { type AdminActor, actorOf, checkTenantAccess, checkUserId } from '../core/admin-access.js';
import { listQuerySchema } from '../core/admin-input.js';
import type { AdminService, WriteResult } from '../core/admin-service.js';
import type { JwtVerifier } from '../core/caller.js';
import type { CursorCodec } from '../core/cursor.js';
import type { AdminStore, Page, PageRequest } from '../core/ports.js';
import { type Precondition, parsePrecondition } from '../core/preconditions.js';
import type { CascadeProgress, PageView } from '../http/responses.js';
import { validate } from '../http/validate.js';

/** The store operations the admin API uses. */
export type { AdminStore } from '../core/ports.js';

/** What hono's aws-lambda adapter passes as `c.env` (absent on the local server and in tests). */
export interface LambdaBindings {
  lambdaContext?: { getRemainingTimeInMillis(): number };
}

/**
 * The Hono environment of the admin routes: the actor the auth middleware resolved, and, in
 * Lambda, the invocation's context (its remaining time bounds bulk work).
 */
export type AdminEnv = { Variables: { actor: AdminActor }; Bindings: LambdaBindings };

/** What each admin sub-app is built from. */
export interface AdminRoutesDeps {
  admin: AdminService;
  store: AdminStore;
  cursors: CursorCodec;
  /** When this request's bulk work must stop to answer a 202 in time (epoch ms). */
  deadline: (c: Context<AdminEnv>) => number;
}

/**
 * The deadline of a request's bulk work: the invocation's remaining time (Lambda) less
 * `marginMs`, so the 202 with its progress is written before the function is killed; without a
 * Lambda context (local server, tests), `fallbackMs` from now.
 */
export function requestDeadline(
  c: Context<AdminEnv>,
  now: number,
  options: { marginMs: number; fallbackMs: number },
): number {
  const remaining = c.env?.lambdaContext?.getRemainingTimeInMillis();
  return typeof remaining === 'number' && Number.isFinite(remaining)
    ? now + Math.max(0, remaining - options.marginMs)
    : now + options.fallbackMs;
}

/** The 202 of bulk work that ran out of time: what it did so far; repeat the request to continue. */
export function inProgress(c: Context, progress: { deletedUsers?: number; endedSessions?: number }) {
  return c.json(
    {
      status: 'in_progress',
      deleted_users: progress.deletedUsers ?? 0,
      ended_sessions: progress.endedSessions ?? 0,
      detail: 'Repeat the request to continue.',
    } satisfies CascadeProgress,
    202,
  );
}

/**
 * Resolves the caller: verifies the bearer JWT, requires an admin scope (docs/api.md §6) and sets
 * `actor`; responses are never cached.
 */
export function adminAuth(verifier: JwtVerifier): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    c.set('actor', actorOf(await verifier.verify(c.req.header('authorization'))));
    await next();
    c.header('cache-control', 'no-store');
  };
}

/** The actor and the path's tenant id, once the actor may reach that tenant. */
export function tenantAccess(
  c: Context<AdminEnv>,
  options: { creating?: boolean } = {},
): { actor: AdminActor; tenantId: string } {
  const actor = c.get('actor');
  const tenantId = c.req.param('tenantId') ?? '';
  checkTenantAccess(actor, tenantId, options);
  return { actor, tenantId };
}

/**
 * {@link tenantAccess} for a list below a tenant: the tenant must also exist, so the users, audit
 * and sessions of a tenant that does not (or no longer does) are 404 `tenant_not_found`, not an
 * empty page.
 */
export async function listedTenantAccess(
  c: Context<AdminEnv>,
  admin: Pick<AdminService, 'getTenant'>,
): Promise<{ actor: AdminActor; tenantId: string }> {
  const access = tenantAccess(c);
  await admin.getTenant(access.tenantId);
  return access;
}

/** The path's user id (400 when `writing` and malformed, else 404). */
export function userIdOf(c: Context<AdminEnv>, options: { writing?: boolean } = {}): string {
  const userId = c.req.param('userId') ?? '';
  checkUserId(userId, options);
  return userId;
}

/** The request's `If-Match` / `If-None-Match`. */
export function preconditionOf(c: Context): Precondition {
  return parsePrecondition(c.req.header('if-match'), c.req.header('if-none-match'));
}

/** The `ETag` of a record version. */
export function etag(version: number): string {
  return `"${version}"`;
}

/**
 * Answers one page of a list: `limit` and `cursor` from the query (validated by the caller when
 * its list takes more parameters), the cursor opaque and bound to `scope` (the list and its tenant).
 */
export async function listPage<T, V>(
  c: Context,
  cursors: CursorCodec,
  scope: string,
  fetch: (page: PageRequest) => Promise<Page<T>>,
  view: (item: T) => V,
  query: { limit?: string | undefined; cursor?: string | undefined } = validate(
    listQuerySchema,
    c.req.query(),
    'query',
  ),
) {
  const page = await fetch({
    limit: query.limit === undefined ? 50 : Number(query.limit),
    cursor: query.cursor === undefined ? undefined : cursors.decode(scope, query.cursor),
  });
  return c.json({
    items: page.items.map(view),
    next_cursor: page.cursor === undefined ? null : cursors.encode(scope, page.cursor),
  } satisfies PageView<V>);
}

/**
 * Answers a PUT: the record's view with its `ETag`, plus `ended_sessions` when the write ended
 * any; a created record answers 201 with its `Location` (`path` below `/v1/admin/`).
 */
export function written<T extends { version: number }, V extends { ended_sessions?: number }>(
  c: Context,
  result: WriteResult<T>,
  view: (record: T) => V,
  path: string,
) {
  const { record, created, endedSessions } = result;
  c.header('etag', etag(record.version));
  // Written, but not every session it ended was reached in time: repeat with the new ETag.
  if (!result.done) return inProgress(c, { endedSessions });
  if (created) c.header('location', `/v1/admin/${path}`);
  return c.json(
    { ...view(record), ...(endedSessions > 0 ? { ended_sessions: endedSessions } : {}) } satisfies V,
    created ? 201 : 200,
  );
}
