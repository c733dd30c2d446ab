import { Hono } from 'hono';
import { tenantConnectionsQuerySchema } from '../core/admin-input.js';
import type { AdminService } from '../core/admin-service.js';
import type { ConnectionAdmin } from '../core/connections/admin.js';
import type { CursorCodec } from '../core/cursor.js';
import { validate } from '../http/validate.js';
import { type AdminEnv, listedTenantAccess, listPage, tenantAccess, userIdOf } from './context.js';

/**
 * `/v1/admin/tenants/{tenantId}/users/{userId}/connections[/{server}]` (docs/api.md §6): a user's
 * connections as an admin sees them (never a token), and deleting one (its grant revoked, audited).
 */
export function connectionRoutes(admin: AdminService, connections: ConnectionAdmin): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/:userId/connections', async (c) => {
    const { tenantId } = tenantAccess(c);
    const user = await admin.getUser(tenantId, userIdOf(c));
    return c.json({ items: await connections.list(tenantId, user.user_id) });
  });

  app.delete('/:userId/connections/:server', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const user = await admin.getUser(tenantId, userIdOf(c));
    const tenant = await admin.getTenant(tenantId);
    await connections.remove(actor.sub, tenant, user.user_id, c.req.param('server'));
    return c.body(null, 204);
  });

  return app;
}

/**
 * `GET /v1/admin/tenants/{tenantId}/connections[?status=needs_reauth]` (docs/api.md §6): the
 * tenant's connections across users, a page at a time; the cursor is bound to the tenant and status.
 */
export function tenantConnectionRoutes(
  admin: AdminService,
  connections: ConnectionAdmin,
  cursors: CursorCodec,
): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get('/', async (c) => {
    const { tenantId } = await listedTenantAccess(c, admin);
    const q = validate(tenantConnectionsQuerySchema, c.req.query(), 'query');
    return listPage(
      c,
      cursors,
      `connections:${tenantId}:${q.status ?? '*'}`,
      (page) => connections.listTenant(tenantId, q.status, page),
      (view) => view,
      q,
    );
  });
  return app;
}

/** `POST /v1/admin/tenants/{tenantId}/servers/{server}/discover` (docs/api.md §6): a dry run of §8's discovery. */
export function discoverRoutes(admin: AdminService, connections: ConnectionAdmin): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.post('/:server/discover', async (c) => {
    const { tenantId } = tenantAccess(c);
    const tenant = await admin.getTenant(tenantId);
    return c.json(await connections.discover(tenant, c.req.param('server')));
  });
  return app;
}
