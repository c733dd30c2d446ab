import { Hono } from 'hono';
import { userPath } from '../core/admin-access.js';
import { userBodySchema } from '../core/admin-input.js';
import type { RevokedView } from '../http/responses.js';
import { readJson, validate } from '../http/validate.js';
import {
  type AdminEnv,
  type AdminRoutesDeps,
  etag,
  inProgress,
  listedTenantAccess,
  listPage,
  preconditionOf,
  tenantAccess,
  userIdOf,
  written,
} from './context.js';
import { userView } from './views.js';

/** `/v1/admin/tenants/{tenantId}/users[/{userId}[/revoke]]`: list, read, write, delete, revoke. */
export function userRoutes({ admin, store, cursors, deadline }: AdminRoutesDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/', async (c) => {
    const { tenantId } = await listedTenantAccess(c, admin);
    return listPage(c, cursors, `users:${tenantId}`, (page) => store.listUsers(tenantId, page), userView);
  });

  app.get('/:userId', async (c) => {
    const { tenantId } = tenantAccess(c);
    const user = await admin.getUser(tenantId, userIdOf(c));
    c.header('etag', etag(user.version));
    return c.json(userView(user));
  });

  app.put('/:userId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const userId = userIdOf(c, { writing: true });
    const pre = preconditionOf(c);
    const body = validate(userBodySchema, await readJson(c));
    const result = await admin.putUser(actor, tenantId, userId, body, pre, deadline(c));
    return written(c, result, userView, userPath(tenantId, userId));
  });

  app.delete('/:userId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const pre = preconditionOf(c);
    const userId = userIdOf(c);
    const result = await admin.deleteUser(actor, tenantId, userId, pre, deadline(c));
    if (!result.done) return inProgress(c, result);
    return c.body(null, 204);
  });

  app.post('/:userId/revoke', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const { record, endedSessions, done } = await admin.revokeUser(actor, tenantId, userIdOf(c), deadline(c));
    c.header('etag', etag(record.version));
    if (!done) return inProgress(c, { endedSessions });
    return c.json({ ...userView(record), ended_sessions: endedSessions } satisfies RevokedView);
  });

  return app;
}
