import { MAX_DISPATCH_MCP_SERVERS } from '@livekit-mcp-dispatch/contract';
import type {
  ConnectionReader,
  CredentialResult,
  OAuthTokenSource,
  RejectionReport,
} from './connections/ports.js';
import { fitOf } from './connections/view.js';
import type { Log } from './log.js';
import type {
  CatalogServer,
  ConnectionRecord,
  McpServerGrant,
  ReauthReason,
  ServerStatus,
  SessionOrigin,
  TenantRecord,
  UserRecord,
} from './model.js';
import { checkedHeaders, DEFAULT_MCP_TRANSPORT, effectiveMcpConfig } from './resolve.js';
import { type SecretBox, SecretBoxError } from './sealing.js';
import { createStoredTokenSource } from './token-source.js';

/** One server of a user's dispatch and its status (docs/api.md §4, §8), as apps are shown it. */
export interface ServerState {
  name: string;
  status: ServerStatus;
  reason?: ReauthReason;
}

/** Every server a dispatch considered, and the grants of those that are `ready`. */
export interface ResolvedServers {
  /** `mcp` first (when it has a URL), then the catalog in its order. */
  states: ServerState[];
  /** The `ready` servers, at most {@link MAX_DISPATCH_MCP_SERVERS}, with their credentials. */
  grants: McpServerGrant[];
}

/** Who a dispatch is for, and where it comes from (a webhook carries fewer credentials, §1). */
export interface ResolveInput {
  tenant: TenantRecord;
  user: UserRecord;
  origin: SessionOrigin;
  /** What a worker reported rejected, by server (docs/api.md §9): an OAuth token is refreshed once. */
  rejected?: ReadonlyMap<string, RejectionReport>;
}

/** Resolves a user's servers for one dispatch or renewal. */
export type ServerResolver = (input: ResolveInput) => Promise<ResolvedServers>;

/** What {@link createServerResolver} is built from. */
export interface ServerResolverDeps {
  secretBox: Pick<SecretBox, 'open'>;
  connections: ConnectionReader;
  oauthTokens: OAuthTokenSource;
  log: Log;
}

/** Whether a catalog server's credential belongs to the user (and so stays out of webhooks by default). */
const isUserCredential = (server: CatalogServer) =>
  server.auth.type === 'user_token' || server.auth.type === 'oauth';

/**
 * Creates the resolver of docs/api.md §4 and §8: the servers of a (tenant, user, origin) are
 * `mcp` (as v2 resolved it, auth `static`, when a URL is set) and each catalog entry, whose
 * credential is decided by its `auth`:
 *
 * - `none`: ready, no `Authorization`; `static`: ready with the tenant's token (`not_connected`
 *   while none is set);
 * - `user_token`: the user's connection with a token; `oauth`: the user's grant, through the
 *   {@link OAuthTokenSource} (which refreshes it). Without a connection `not_connected`; one
 *   marked `needs_reauth` stays so; one obtained for another URL than the entry's current one is
 *   `needs_reauth` (`resource_changed`) and never sealed.
 *
 * A webhook (or SIP) dispatch includes a user-credential entry only when it says `webhook: true`.
 * The connections are read in one strongly consistent query, and only when an entry needs them.
 * A catalog secret that does not open makes that server `unavailable` (logged), not the dispatch.
 *
 * @throws SecretBoxError when `mcp`'s own stored secret does not open (as before the catalog).
 */
export function createServerResolver(deps: ServerResolverDeps): ServerResolver {
  const { secretBox, connections, oauthTokens, log } = deps;

  async function headersOf(tenantId: string, server: CatalogServer): Promise<Record<string, string>> {
    if (server.headers_sealed === undefined) return {};
    const opened = await secretBox.open(server.headers_sealed, {
      tenantId,
      userId: '',
      field: `catalog:${server.name}:headers`,
    });
    return checkedHeaders(opened);
  }

  async function credentialOf(
    tenant: TenantRecord,
    user: UserRecord,
    server: CatalogServer,
    connection: ConnectionRecord | undefined,
    rejected: RejectionReport | undefined,
  ): Promise<CredentialResult> {
    const auth = server.auth;
    switch (auth.type) {
      case 'none':
        return { status: 'ready', token: '' };
      case 'static': {
        if (auth.token_sealed === undefined) return { status: 'not_connected' };
        const token = await secretBox.open(auth.token_sealed, {
          tenantId: tenant.tenant_id,
          userId: '',
          field: `catalog:${server.name}:token`,
        });
        return { status: 'ready', token };
      }
      case 'user_token':
      case 'oauth': {
        if (connection === undefined || connection.auth !== auth.type) return { status: 'not_connected' };
        if (connection.status === 'needs_reauth') {
          return { status: 'needs_reauth', ...(connection.reason ? { reason: connection.reason } : {}) };
        }
        if (connection.token_sealed === undefined) return { status: 'not_connected' };
        const fit = fitOf(server, connection);
        if (fit === 'other_entry') return { status: 'not_connected' };
        if (fit === 'resource_changed') return { status: 'needs_reauth', reason: 'resource_changed' };
        if (auth.type === 'oauth')
          return oauthTokens.accessToken({ tenant, server, connection, ...(rejected ? { rejected } : {}) });
        const token = await secretBox.open(connection.token_sealed, {
          tenantId: tenant.tenant_id,
          userId: user.user_id,
          field: `conn:${server.name}:token`,
        });
        return { status: 'ready', token };
      }
    }
  }

  return async function resolveServers({ tenant, user, origin, rejected }) {
    const states: ServerState[] = [];
    const grants: McpServerGrant[] = [];

    const mcp = await effectiveMcpConfig(tenant, user, secretBox);
    if (mcp !== null) {
      states.push({ name: mcp.name, status: 'ready' });
      grants.push({ ...mcp, auth: 'static' });
    }

    const catalog = (tenant.mcp_servers ?? []).filter(
      (s) => (origin === 'session' || s.webhook || !isUserCredential(s)) && s.name !== mcp?.name,
    );
    const byServer = new Map<string, ConnectionRecord>();
    if (catalog.some(isUserCredential)) {
      for (const c of await connections.listConnections(tenant.tenant_id, user.user_id))
        byServer.set(c.server, c);
    }

    const results = await Promise.all(
      catalog.map(async (server) => {
        try {
          const credential = await credentialOf(
            tenant,
            user,
            server,
            byServer.get(server.name),
            rejected?.get(server.name),
          );
          if (credential.status !== 'ready') return { server, credential };
          return { server, credential, headers: await headersOf(tenant.tenant_id, server) };
        } catch (err) {
          if (!(err instanceof SecretBoxError)) throw err;
          log.error('catalog server secret did not open', { server: server.name, reason: err.reason });
          return { server, credential: { status: 'unavailable', code: 'mcp_auth_unavailable' } as const };
        }
      }),
    );
    for (const { server, credential, headers } of results) {
      if (credential.status !== 'ready') {
        const reason = 'reason' in credential ? credential.reason : undefined;
        states.push({
          name: server.name,
          status: credential.status,
          ...(reason === undefined ? {} : { reason }),
        });
        continue;
      }
      states.push({ name: server.name, status: 'ready' });
      const grant: McpServerGrant = {
        name: server.name,
        url: server.url,
        transport: server.transport ?? DEFAULT_MCP_TRANSPORT,
        headers:
          credential.token === ''
            ? { ...headers }
            : { ...headers, Authorization: `Bearer ${credential.token}` },
        auth: server.auth.type,
      };
      if (credential.expires_at !== undefined) grant.expires_at = credential.expires_at;
      if (server.allowed_tools !== undefined) grant.allowed_tools = [...server.allowed_tools];
      grants.push(grant);
    }
    return { states, grants: grants.slice(0, MAX_DISPATCH_MCP_SERVERS) };
  };
}

/** Grants as `token` dispatch mode seals them: no headers (the start renewal supplies them, §3). */
export function withoutHeaders(grants: readonly McpServerGrant[]): McpServerGrant[] {
  return grants.map((g) => ({ ...g, headers: {} }));
}

/** A {@link ConnectionReader} of a deployment (or test) that holds no connections. */
export const NO_CONNECTIONS: ConnectionReader = { listConnections: async () => [] };

/**
 * The resolver of an app: over its connections and token source when it has them, else no
 * connections and the stored-token source (what the unit tests of the dispatcher compose).
 */
export function resolverOf(deps: {
  servers?: ServerResolver;
  secretBox: Pick<SecretBox, 'open'>;
  connectionReader?: ConnectionReader;
  oauthTokens?: OAuthTokenSource;
  clock: () => Date;
  log: Log;
}): ServerResolver {
  return (
    deps.servers ??
    createServerResolver({
      secretBox: deps.secretBox,
      connections: deps.connectionReader ?? NO_CONNECTIONS,
      oauthTokens: deps.oauthTokens ?? createStoredTokenSource(deps),
      log: deps.log,
    })
  );
}
