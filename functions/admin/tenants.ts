import { Hono } from 'hono';
import { checkSuperadminFields, tenantPath } from '../core/admin-access.js';
import { deleteTenantQuerySchema, tenantBodySchema } from '../core/admin-input.js';
import { DomainError } from '../core/errors.js';
import type { PageRequest } from '../core/ports.js';
import { readJson, validate } from '../http/validate.js';
import {
  type AdminEnv,
  type AdminRoutesDeps,
  etag,
  inProgress,
  listPage,
  preconditionOf,
  tenantAccess,
  written,
} from './context.js';
import { tenantView } from './views.js';

/** `/v1/admin/tenants[/{tenantId}]`: list (superadmin), read, create or replace, delete. */
export function tenantRoutes({ admin, store, cursors, deadline }: AdminRoutesDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/', async (c) => {
    if (!c.get('actor').superadmin) throw new DomainError('forbidden', 'Only a superadmin lists tenants.');
    // A tenant being deleted is answered as missing everywhere (docs/api.md §10).
    const present = async (page: PageRequest) => {
      const found = await store.listTenants(page);
      return { ...found, items: found.items.filter((t) => t.status !== 'deleting') };
    };
    return listPage(c, cursors, 'tenants', present, tenantView);
  });

  app.get('/:tenantId', async (c) => {
    const { tenantId } = tenantAccess(c);
    const tenant = await admin.getTenant(tenantId);
    c.header('etag', etag(tenant.version));
    return c.json(tenantView(tenant));
  });

  app.put('/:tenantId', async (c) => {
    const { actor, tenantId } = tenantAccess(c, { creating: true });
    const pre = preconditionOf(c);
    const raw = (await readJson(c)) as Record<string, unknown>;
    checkSuperadminFields(actor, raw);
    const body = validate(tenantBodySchema, raw);
    const result = await admin.putTenant(actor, tenantId, body, pre, deadline(c));
    return written(c, result, tenantView, tenantPath(tenantId));
  });

  app.delete('/:tenantId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    // Whoever creates a tenant deletes it (docs/api.md §6): a tenant admin gets 403, nothing written.
    if (!actor.superadmin) throw new DomainError('forbidden', 'Only a superadmin deletes tenants.');
    const pre = preconditionOf(c);
    const { cascade } = validate(deleteTenantQuerySchema, c.req.query(), 'query');
    const result = await admin.deleteTenant(actor, tenantId, pre, cascade === 'true', deadline(c));
    if (!result.done) return inProgress(c, result);
    return c.body(null, 204);
  });

  return app;
}
