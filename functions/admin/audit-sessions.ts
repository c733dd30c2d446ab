import { Hono } from 'hono';
import { type AdminEnv, type AdminRoutesDeps, listPage, tenantAccess } from './context.js';
import { auditView, sessionView } from './views.js';

/** `/v1/admin/tenants/{tenantId}/{audit,sessions}`: the tenant's audit log and recent sessions. */
export function auditSessionRoutes({ admin, store, cursors }: AdminRoutesDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/audit', async (c) => {
    const { tenantId } = tenantAccess(c);
    await admin.getTenant(tenantId); // a missing tenant's list is 404, not an empty page
    return listPage(c, cursors, `audit:${tenantId}`, (page) => store.listAudit(tenantId, page), auditView);
  });

  app.get('/sessions', async (c) => {
    const { tenantId } = tenantAccess(c);
    await admin.getTenant(tenantId); // a missing tenant's list is 404, not an empty page
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
