import { type Context, Hono } from 'hono';
import { createAdminService } from '../core/admin.js';
import type { JwtVerifier } from '../core/caller.js';
import type { Config } from '../core/config.js';
import type { ConnectionAdmin } from '../core/connections/admin.js';
import { createCursorCodec } from '../core/cursor.js';
import { type Log, silentLog } from '../core/log.js';
import type { RoomApi } from '../core/ports.js';
import type { SecretBox } from '../core/sealing.js';
import type { HostResolver } from '../core/url-guard.js';
import { bodyLimitProblem, DEFAULT_BODY_LIMIT } from '../http/body-limit.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { withProblemHandling } from '../http/problem.js';
import { requestContext } from '../http/request-context.js';
import { auditSessionRoutes } from './audit-sessions.js';
import { connectionRoutes, discoverRoutes, tenantConnectionRoutes } from './connections.js';
import { type AdminEnv, type AdminStore, adminAuth, requestDeadline } from './context.js';
import { tenantRoutes } from './tenants.js';
import { userRoutes } from './users.js';

export { ADMIN_SCOPE, SUPERADMIN_FIELDS, SUPERADMIN_SCOPE } from '../core/admin-access.js';
export { listQuerySchema, tenantBodySchema, userBodySchema } from '../core/admin-input.js';
export type { AdminStore } from './context.js';

/** What {@link createAdminApp} is composed from. */
export interface AdminAppDeps {
  store: AdminStore;
  /** Seals tokens and headers at rest; makes their display fingerprints. */
  secretBox: SecretBox;
  /** Verifies the bearer JWT (same issuer as app users). */
  verifier: JwtVerifier;
  /** Deletes the rooms of sessions ended by revoke, suspension or deletion. */
  livekit: RoomApi;
  /** `storageKeys` also keys the list cursors (HKDF-derived, never the AES key itself). */
  config: Pick<Config, 'mcpAllowedPorts' | 'allowInsecureMcpUrls' | 'storageKeys'>;
  /** Resolves MCP URL hosts for the URL guard: `dns.lookup(host, { all: true })` in production. */
  resolveHost: HostResolver;
  clock?: () => Date;
  log?: Log;
  /**
   * How long one request's bulk work (a cascade, ending sessions) runs before answering 202
   * (repeat to continue) when there is no Lambda context; default 20 s. In Lambda the budget is
   * the invocation's remaining time less `bulkMarginMs`.
   */
  cascadeBudgetMs?: number;
  /** Time kept back from the invocation's remaining time to answer the 202; default 3 s. */
  bulkMarginMs?: number;
  /** The connection service (its admin part serves the connection routes, docs/api.md §6). */
  connections?: { admin: ConnectionAdmin };
  /**
   * The text of the OpenAPI document (functions/openapi/openapi.json), served at GET /openapi.json.
   * Read on the first request and kept: in Lambda the file shipped beside the bundle, not bundled.
   */
  openApiDocument: () => Promise<string>;
  /** `PUBLIC_BASE_URL`: the document's `servers`; unset, it names the origin it is served from (`/`). */
  publicBaseUrl?: string;
}

/**
 * Creates the admin API (docs/api.md §6) with absolute paths under `/v1/admin/`.
 *
 * Authorisation: `dispatch:superadmin` reaches every tenant; `dispatch:admin` with the tenant
 * claim reaches that tenant only, and any other tenant's path answers exactly like a missing
 * tenant (404, nothing read or written beyond the check). Only a superadmin creates tenants or
 * lists them. Secrets are write-only: responses carry `token_set`, `token_fingerprint` and
 * `header_names`, never values.
 */
export function createAdminApp(deps: AdminAppDeps): Hono<AdminEnv> {
  const { store, config } = deps;
  const log = deps.log ?? silentLog;
  const admin = createAdminService({
    store,
    secretBox: deps.secretBox,
    livekit: deps.livekit,
    urlGuard: {
      allowedPorts: config.mcpAllowedPorts,
      allowInsecure: config.allowInsecureMcpUrls,
      resolve: deps.resolveHost,
    },
    clock: deps.clock ?? (() => new Date()),
    log,
    cascadeBudgetMs: deps.cascadeBudgetMs ?? 20_000,
    grants: deps.connections?.admin,
  });
  const clock = deps.clock ?? (() => new Date());
  const budget = { marginMs: deps.bulkMarginMs ?? 3_000, fallbackMs: deps.cascadeBudgetMs ?? 20_000 };
  const routes = {
    admin,
    store,
    cursors: createCursorCodec(config.storageKeys),
    deadline: (c: Context<AdminEnv>) => requestDeadline(c, clock().getTime(), budget),
  };

  const app = new Hono<AdminEnv>();
  // withProblemHandling only installs onError/notFound, which do not depend on the Env type.
  withProblemHandling(app as unknown as Hono, (message, meta) => log.error(message, meta));

  // Public: the document describes the API, not any tenant. In AWS, GET /openapi.json routes here.
  const served = servedOnce(deps.openApiDocument, deps.publicBaseUrl);
  app.get('/openapi.json', async (c) => {
    const body = await served();
    c.header('cache-control', 'public, max-age=300');
    return c.body(body, 200, { 'content-type': 'application/json' });
  });

  app.use('/v1/admin/*', requestContext());
  app.use('/v1/admin/*', bodyLimitProblem(DEFAULT_BODY_LIMIT));
  app.use('/v1/admin/*', adminAuth(deps.verifier));

  app.route('/v1/admin/tenants', tenantRoutes(routes));
  if (deps.connections) {
    app.route('/v1/admin/tenants/:tenantId/users', connectionRoutes(admin, deps.connections.admin));
    app.route('/v1/admin/tenants/:tenantId/servers', discoverRoutes(admin, deps.connections.admin));
    app.route(
      '/v1/admin/tenants/:tenantId/connections',
      tenantConnectionRoutes(admin, deps.connections.admin, routes.cursors),
    );
  }
  app.route('/v1/admin/tenants/:tenantId/users', userRoutes(routes));
  app.route('/v1/admin/tenants/:tenantId', auditSessionRoutes(routes));
  methodNotAllowed(app as unknown as Hono, 'admin');

  return app;
}

/**
 * The served document, compact JSON (as `c.json` writes it) with `servers` naming `publicBaseUrl`
 * when given; made on the first call and kept, and made again after a failed read.
 */
function servedOnce(read: () => Promise<string>, publicBaseUrl: string | undefined): () => Promise<string> {
  const render = (text: string) => {
    const document = JSON.parse(text) as Record<string, unknown>;
    return JSON.stringify(
      publicBaseUrl === undefined
        ? document
        : { ...document, servers: [{ url: publicBaseUrl, description: 'PUBLIC_BASE_URL' }] },
    );
  };
  let served: Promise<string> | undefined;
  return () => {
    if (served === undefined) {
      const made = read().then(render);
      made.catch(() => {
        if (served === made) served = undefined;
      });
      served = made;
    }
    return served;
  };
}
