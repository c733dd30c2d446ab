import { Hono } from 'hono';
import type { AdminService } from '../core/admin-service.js';
import type { ConnectionAdmin } from '../core/connections/admin.js';
import { DomainError } from '../core/errors.js';
import { type AdminEnv, tenantAccess, userIdOf } from './context.js';

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

/**
 * Revokes a deleted user's grants and removes their connection items (docs/api.md §8: deleting a
 * user revokes the grants it held), best effort at each authorization server. Runs after the user
 * record is gone, so no new grant can be completed for it (complete() reads the user strongly
 * consistently first); a `complete` already past that read can still store one afterwards, which
 * a repeated DELETE (404 for the user, see {@link deleteUserConnections}'s caller) cleans up.
 * How many connections were removed.
 */
export async function deleteUserConnections(
  admin: AdminService,
  connections: ConnectionAdmin,
  tenantId: string,
  userId: string,
): Promise<number> {
  let tenant: Awaited<ReturnType<AdminService['getTenant']>>;
  try {
    tenant = await admin.getTenant(tenantId);
  } catch (error) {
    if (error instanceof DomainError) return 0;
    throw error;
  }
  return connections.removeAll(tenant, userId);
}
