import { DomainError } from '../errors.js';
import { publicJwks } from '../oauth/client-keys.js';
import { buildClientMetadataDocument, type ClientMetadataDocument } from '../oauth/client-metadata.js';
import { type ConnectionAdmin, createConnectionAdmin } from './admin.js';
import { authorize } from './authorize.js';
import { type CallbackOutcome, callback, complete } from './callback.js';
import {
  type Caller,
  type ConnectionDeps,
  catalogServer,
  connBinding,
  iso,
  loadCaller,
  requireAuth,
  storeNewGrant,
} from './context.js';
import { type ProbeResult, probeMcp } from './mcp-probe.js';
import type { OAuthTokenSource } from './ports.js';
import { removeConnection } from './revoke.js';
import { createTokenSource } from './token-source.js';
import { type ConnectionView, viewOf } from './view.js';

/** Who calls: the verified JWT's subject and tenant claim. */
export type ConnectionPrincipal = { sub: string; tenantId: string | undefined };

/** The connection service behind `/v1/connections…`, `/v1/oauth/callback` and `/oauth/…` (docs/api.md §8). */
export interface ConnectionService {
  list(principal: ConnectionPrincipal): Promise<ConnectionView[]>;
  get(principal: ConnectionPrincipal, server: string): Promise<ConnectionView>;
  authorize(
    principal: ConnectionPrincipal,
    server: string,
    input: { return_to: string; scopes?: string[] | undefined },
  ): Promise<{ authorization_url: string; expires_at: string }>;
  callback(params: URLSearchParams): Promise<CallbackOutcome>;
  complete(principal: ConnectionPrincipal, server: string, result: string): Promise<ConnectionView>;
  putToken(principal: ConnectionPrincipal, server: string, token: string): Promise<ConnectionView>;
  remove(principal: ConnectionPrincipal, server: string): Promise<void>;
  test(principal: ConnectionPrincipal, server: string): Promise<ProbeResult>;
  clientMetadata(tenantId: string): Promise<ClientMetadataDocument>;
  jwks(): { keys: object[] };
  /** The refreshing token source dispatch and renewal use. */
  tokenSource: OAuthTokenSource;
  /** The admin API's view of any user's connections (docs/api.md §6). */
  admin: ConnectionAdmin;
}

/** Creates the {@link ConnectionService}. */
export function createConnectionService(deps: ConnectionDeps): ConnectionService {
  const tokens = createTokenSource(deps);
  const caller = (p: ConnectionPrincipal) => loadCaller(deps, p);

  async function views(c: Caller, only?: string): Promise<ConnectionView[]> {
    const t = c.tenant.tenant_id;
    const u = c.user.user_id;
    const [connections, pending] = await Promise.all([
      deps.store.listConnections(t, u),
      deps.store.listPending(t, u),
    ]);
    const now = deps.clock();
    return (c.tenant.mcp_servers ?? [])
      .filter((s) => only === undefined || s.name === only)
      .map((s) =>
        viewOf(
          s,
          connections.find((x) => x.server === s.name),
          pending.find((x) => x.server === s.name),
          now,
        ),
      );
  }

  return {
    tokenSource: tokens,
    admin: createConnectionAdmin(deps),

    async list(principal) {
      return views(await caller(principal));
    },

    async get(principal, server) {
      const c = await caller(principal);
      catalogServer(c.tenant, server);
      return (await views(c, server))[0] as ConnectionView;
    },

    async authorize(principal, server, input) {
      return authorize(deps, await caller(principal), server, input);
    },

    callback: (params) => callback(deps, params),

    async complete(principal, server, result) {
      return complete(deps, await caller(principal), server, result);
    },

    async putToken(principal, serverName, token) {
      const c = await caller(principal);
      const server = catalogServer(c.tenant, serverName);
      requireAuth(server, 'user_token');
      const t = c.tenant.tenant_id;
      const u = c.user.user_id;
      const now = deps.clock();
      const record = await storeNewGrant(
        deps.store,
        { tenantId: t, userId: u, server: server.name },
        iso(now),
        async () => ({
          auth: 'user_token',
          resource: server.url,
          ...(server.entry_id === undefined ? {} : { entry_id: server.entry_id }),
          token_sealed: await deps.secretBox.seal(token, connBinding(t, u, server.name, 'token')),
          token_fingerprint: deps.secretBox.fingerprint(token),
        }),
      );
      return viewOf(server, record, undefined, now);
    },

    async remove(principal, serverName) {
      const c = await caller(principal);
      const server = catalogServer(c.tenant, serverName);
      if (server.auth.type !== 'oauth' && server.auth.type !== 'user_token') {
        throw new DomainError('wrong_auth_type', 'This server has no per-user connection.');
      }
      await removeConnection(deps, c.tenant, c.user.user_id, server.name);
    },

    async test(principal, serverName) {
      const c = await caller(principal);
      const server = catalogServer(c.tenant, serverName);
      const headers: Record<string, string> = {};
      if (server.headers_sealed !== undefined) {
        Object.assign(
          headers,
          JSON.parse(
            await deps.secretBox.open(server.headers_sealed, {
              tenantId: c.tenant.tenant_id,
              userId: '',
              field: `catalog:${server.name}:headers`,
            }),
          ),
        );
      }
      if (server.auth.type === 'static' && server.auth.token_sealed !== undefined) {
        const token = await deps.secretBox.open(server.auth.token_sealed, {
          tenantId: c.tenant.tenant_id,
          userId: '',
          field: `catalog:${server.name}:token`,
        });
        headers.authorization = `Bearer ${token}`;
      } else if (server.auth.type === 'oauth' || server.auth.type === 'user_token') {
        const connection = await deps.store.getConnection(c.tenant.tenant_id, c.user.user_id, server.name);
        const credential = await tokens.credential({ tenant: c.tenant, server, connection });
        if (credential.status !== 'ready') {
          return {
            ok: false,
            code:
              credential.status === 'not_connected'
                ? 'not_connected'
                : credential.status === 'needs_reauth'
                  ? 'mcp_reauth_required'
                  : 'mcp_auth_unavailable',
          };
        }
        headers.authorization = `Bearer ${credential.token}`;
      }
      return probeMcp(deps.fetch, server.url, headers);
    },

    async clientMetadata(tenantId) {
      const tenant = await deps.store.getTenant(tenantId);
      if (tenant === undefined || tenant.status === 'deleting') {
        throw new DomainError('tenant_not_found', 'No such tenant.');
      }
      return buildClientMetadataDocument({
        publicBaseUrl: deps.config.publicBaseUrl,
        tenantId,
        tenantName: tenant.name,
      });
    },

    jwks: () => (deps.clientKeys ? publicJwks(deps.clientKeys) : { keys: [] }),
  };
}
