import { randomBytes } from 'node:crypto';
import type { CatalogServer, ConnectionRecord, TenantRecord } from '../model.js';
import { OAuthRefreshError } from '../oauth/errors.js';
import { refresh } from '../oauth/flow.js';
import { flowDeps, recordedClient } from './clients.js';
import { type ConnectionDeps, connBinding, iso } from './context.js';
import type { CredentialResult, OAuthTokenSource } from './ports.js';
import { statusOf } from './view.js';

/** The authorization server's timeout (the safe fetch's 5 s) plus 10 s, and a margin (§8). */
export const REFRESH_LOCK_MS = 20_000;
/** How long a caller that could not take the lock waits for the holder's result. */
const WAIT_BUDGET_MS = REFRESH_LOCK_MS + 2_000;

const unavailable: CredentialResult = { status: 'unavailable', code: 'mcp_auth_unavailable' };

/**
 * The refreshing {@link OAuthTokenSource} (docs/api.md §8 Refresh): the stored access token while it
 * has at least `MCP_TOKEN_MIN_TTL_SECONDS` left (and was not reported rejected), else one refresh
 * at the recorded issuer by whoever takes `refresh_lock`; everyone else re-reads and uses what the
 * holder stored. Never throws for the authorization server's failures.
 */
export function createTokenSource(deps: ConnectionDeps): OAuthTokenSource & {
  credential(input: {
    tenant: TenantRecord;
    server: CatalogServer;
    connection: ConnectionRecord | undefined;
    force?: boolean;
  }): Promise<CredentialResult>;
} {
  const minTtlMs = deps.config.mcpTokenMinTtlSeconds * 1000;
  const pollMs = deps.refreshPollMs ?? 100;

  const open = (c: ConnectionRecord, field: 'token' | 'refresh_token', sealed: string) =>
    deps.secretBox.open(sealed, connBinding(c.tenant_id, c.user_id, c.server, field));

  /** The stored token as a result, when it is usable as it is (`fresh`: long enough left). */
  async function stored(
    c: ConnectionRecord,
    need: 'fresh' | 'unexpired',
  ): Promise<CredentialResult | undefined> {
    if (c.token_sealed === undefined) return undefined;
    const now = deps.clock();
    const expiresMs = c.access_expires_at === undefined ? undefined : c.access_expires_at * 1000;
    const ok = expiresMs === undefined || (need === 'fresh' ? expiresMs - now >= minTtlMs : expiresMs > now);
    if (!ok) return undefined;
    return {
      status: 'ready',
      token: await open(c, 'token', c.token_sealed),
      ...(c.access_expires_at === undefined ? {} : { expires_at: c.access_expires_at }),
    };
  }

  function verdict(server: CatalogServer, c: ConnectionRecord | undefined): CredentialResult | undefined {
    const { status, reason } = statusOf(server, c, deps.clock());
    if (status === 'not_connected') return { status: 'not_connected' };
    if (status === 'needs_reauth') {
      return { status: 'needs_reauth', ...(reason ? { reason } : {}), code: 'mcp_reauth_required' };
    }
    return undefined;
  }

  /** One refresh attempt by the lock holder; undefined when its result was not stored (re-read). */
  async function refreshAsHolder(
    tenant: TenantRecord,
    server: CatalogServer,
    c: ConnectionRecord,
    owner: string,
  ): Promise<CredentialResult | undefined> {
    const client =
      c.issuer === undefined || c.client_id === undefined
        ? undefined
        : await recordedClient(deps, tenant, server, { issuer: c.issuer, client_id: c.client_id });
    if (client === undefined || c.refresh_token_sealed === undefined) {
      await deps.store.releaseRefreshLock(c, owner);
      return (await stored(c, 'unexpired')) ?? unavailable;
    }
    try {
      const { tokens } = await refresh(
        client.as,
        client.registration,
        {
          refresh_token: await open(c, 'refresh_token', c.refresh_token_sealed),
          resource: c.resource,
          scopes: c.scopes ?? [],
        },
        await flowDeps(deps),
      );
      const access_expires_at =
        tokens.expires_at === undefined ? undefined : Math.floor(tokens.expires_at / 1000);
      const wrote = await deps.store.storeRefresh(c, owner, {
        token_sealed: await deps.secretBox.seal(
          tokens.access_token,
          connBinding(c.tenant_id, c.user_id, c.server, 'token'),
        ),
        token_fingerprint: deps.secretBox.fingerprint(tokens.access_token),
        access_expires_at,
        refresh_token_sealed: await deps.secretBox.seal(
          tokens.refresh_token as string,
          connBinding(c.tenant_id, c.user_id, c.server, 'refresh_token'),
        ),
        scopes: tokens.scopes,
        refreshed_at: iso(deps.clock()),
      });
      // Lost the store condition: the grant was replaced meanwhile (a new consent). That one wins.
      if (!wrote) return undefined;
      return {
        status: 'ready',
        token: tokens.access_token,
        ...(access_expires_at === undefined ? {} : { expires_at: access_expires_at }),
      };
    } catch (error) {
      if (error instanceof OAuthRefreshError && error.kind === 'invalid_grant') {
        // needs_reauth only if rt_version is still the one we sent: a grant stored meanwhile stays.
        const marked = await deps.store.markNeedsReauth(c, 'invalid_grant', {
          owner,
          lastError: 'invalid_grant',
          now: iso(deps.clock()),
        });
        if (!marked) return undefined;
        deps.log.warn('oauth refresh refused', { tenant_id: c.tenant_id, server: c.server });
        return { status: 'needs_reauth', reason: 'invalid_grant', code: 'mcp_reauth_required' };
      }
      await deps.store.releaseRefreshLock(c, owner);
      deps.log.warn('oauth refresh unavailable', { tenant_id: c.tenant_id, server: c.server });
      // The AS could not be reached: an unexpired token is still usable, sealed with its expiry.
      return (await stored(c, 'unexpired')) ?? unavailable;
    }
  }

  async function credential(input: {
    tenant: TenantRecord;
    server: CatalogServer;
    connection: ConnectionRecord | undefined;
    force?: boolean;
  }): Promise<CredentialResult> {
    const { tenant, server } = input;
    let c = input.connection;
    const early = verdict(server, c);
    if (early !== undefined || c === undefined) return early ?? { status: 'not_connected' };
    if (c.auth === 'user_token') {
      return c.token_sealed === undefined
        ? { status: 'not_connected' }
        : { status: 'ready', token: await open(c, 'token', c.token_sealed) };
    }
    const rejected = input.force === true ? c.token_fingerprint : undefined;
    // `need`: 'fresh' for the token we were handed; 'unexpired' for one another holder just
    // stored (it is as new as a refresh gets, even when the AS issues shorter-lived tokens than
    // MCP_TOKEN_MIN_TTL_SECONDS; refreshing again would only repeat the refresh).
    const usable = async (r: ConnectionRecord, need: 'fresh' | 'unexpired' = 'fresh') =>
      rejected !== undefined && r.token_fingerprint === rejected ? undefined : stored(r, need);
    const first = await usable(c);
    if (first !== undefined) return first;
    if (c.refresh_token_sealed === undefined)
      return (await stored(c, 'unexpired')) ?? verdict(server, c) ?? unavailable;

    const deadline = deps.clock() + WAIT_BUDGET_MS;
    const owner = randomBytes(16).toString('base64url');
    while (deps.clock() < deadline) {
      const now = deps.clock();
      const locked = await deps.store.takeRefreshLock(c, { owner, until: now + REFRESH_LOCK_MS, now });
      if (locked !== undefined) {
        const result = await refreshAsHolder(tenant, server, locked, owner);
        if (result !== undefined) return result;
      } else {
        await new Promise((r) => setTimeout(r, pollMs));
      }
      // Re-read strongly consistent: use what the holder stored, or try for the lock again.
      const current = await deps.store.getConnection(c.tenant_id, c.user_id, c.server);
      const after = verdict(server, current);
      if (after !== undefined || current === undefined) return after ?? { status: 'not_connected' };
      if (current.rt_version !== c.rt_version) {
        const fresh = await usable(current, 'unexpired');
        if (fresh !== undefined) return fresh;
      }
      c = current;
    }
    return (await stored(c, 'unexpired')) ?? unavailable;
  }

  return {
    credential,
    accessToken: (input) => credential(input),
  };
}
