import { Hono } from 'hono';
import { type AdminEnv, type AdminRoutesDeps, listedTenantAccess, listPage } from './context.js';
import { auditView, sessionView } from './views.js';

/** `/v1/admin/tenants/{tenantId}/{audit,sessions}`: the tenant's audit log and recent sessions. */
export function auditSessionRoutes({ admin, store, cursors }: AdminRoutesDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/audit', async (c) => {
    const { tenantId } = await listedTenantAccess(c, admin);
    return listPage(c, cursors, `audit:${tenantId}`, (page) => store.listAudit(tenantId, page), auditView);
  });

  app.get('/sessions', async (c) => {
    const { tenantId } = await listedTenantAccess(c, admin);
    return listPage(
      c,
      cursors,
      `sessions:${tenantId}`,
      (page) => store.listSessions(tenantId, page),
      sessionView,
    );
  });

  return app;
}
