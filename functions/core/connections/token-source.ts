import { randomBytes } from 'node:crypto';
import type { CatalogServer, ConnectionRecord, TenantRecord } from '../model.js';
import { OAuthRefreshError } from '../oauth/errors.js';
import { refresh } from '../oauth/flow.js';
import { flowDeps, recordedClient } from './clients.js';
import { type ConnectionDeps, connBinding, iso } from './context.js';
import type { CredentialResult, OAuthTokenSource, RejectionReport } from './ports.js';
import { statusOf } from './view.js';

/** The authorization server's timeout (the safe fetch's 5 s) plus 10 s, and a margin (§8). */
export const REFRESH_LOCK_MS = 20_000;
/** How long a caller that could not take the lock waits for the holder's result. */
const WAIT_BUDGET_MS = REFRESH_LOCK_MS + 2_000;

const unavailable: CredentialResult = { status: 'unavailable', code: 'mcp_auth_unavailable' };

/** The scopes a 403 `insufficient_scope` names (RFC 6750 §3: space-delimited). */
function scopesOf(scope: string): string[] {
  return [...new Set(scope.split(' ').filter((s) => s.length > 0))];
}

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
    rejected?: RejectionReport;
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
    rejected: string | undefined,
  ): Promise<CredentialResult | undefined> {
    // Without a new token, the stored one while unexpired, unless it is the one a server refused.
    const fallback = async () =>
      (c.token_fingerprint !== undefined && c.token_fingerprint === rejected
        ? undefined
        : await stored(c, 'unexpired')) ?? unavailable;
    const client =
      c.issuer === undefined || c.client_id === undefined
        ? undefined
        : await recordedClient(deps, tenant, server, { issuer: c.issuer, client_id: c.client_id });
    if (client === undefined || c.refresh_token_sealed === undefined) {
      await deps.store.releaseRefreshLock(c, owner);
      return fallback();
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
        // A refresh forced by a rejection marks its token, so a second rejection is told apart (§9).
        forced_refresh: rejected === undefined ? undefined : true,
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
      const refused = error instanceof OAuthRefreshError ? error.kind : 'unavailable';
      // A DCR client the authorization server no longer knows: its grants are gone with it, and
      // the next authorization must register afresh (a pre-registered or CIMD client refused is
      // the tenant's or our configuration: the user can do nothing, so it is only unavailable).
      const forgotten = refused === 'invalid_client' && client.registration.kind === 'dcr';
      if (forgotten) {
        await deps.store.forgetDcrClient(
          c.tenant_id,
          client.registration.issuer,
          client.registration.client_id,
        );
        deps.log.warn('oauth client refused: registration dropped', {
          tenant_id: c.tenant_id,
          server: c.server,
        });
      }
      if (refused === 'invalid_grant' || forgotten) {
        // needs_reauth only if rt_version is still the one we sent: a grant stored meanwhile stays.
        const marked = await deps.store.markNeedsReauth(c, 'invalid_grant', {
          owner,
          lastError: refused,
          now: iso(deps.clock()),
        });
        if (!marked) return undefined;
        deps.log.warn('oauth refresh refused', { tenant_id: c.tenant_id, server: c.server });
        return { status: 'needs_reauth', reason: 'invalid_grant', code: 'mcp_reauth_required' };
      }
      await deps.store.releaseRefreshLock(c, owner);
      deps.log.warn('oauth refresh unavailable', { tenant_id: c.tenant_id, server: c.server });
      // The AS could not be reached: an unexpired token is still usable, sealed with its expiry.
      return fallback();
    }
  }

  async function credential(input: {
    tenant: TenantRecord;
    server: CatalogServer;
    connection: ConnectionRecord | undefined;
    rejected?: RejectionReport;
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
    // A worker's report is about the token it holds. Only when that is still the stored one does
    // it count: a stored token that differs was replaced since (another renewal's refresh, a new
    // consent) and is used as usual. Rejected after a forced refresh, or a 403 naming the scope it
    // lacks: refreshing cannot help, so the connection needs its user (§9).
    let rejected: string | undefined;
    const report = input.rejected;
    if (report?.held !== undefined && deps.secretBox.fingerprint(report.held) === c.token_fingerprint) {
      const scope = report.status === 403 && report.scope !== undefined ? scopesOf(report.scope) : [];
      const reason =
        scope.length > 0 ? 'insufficient_scope' : c.forced_refresh === true ? 'invalid_grant' : undefined;
      if (reason === undefined) {
        rejected = c.token_fingerprint;
      } else {
        // On rt_version = n: a grant stored meanwhile is not marked, and is used below.
        const marked = await deps.store.markNeedsReauth(c, reason, {
          lastError: reason === 'insufficient_scope' ? 'insufficient_scope' : 'rejected_after_refresh',
          ...(scope.length > 0 ? { requiredScopes: scope } : {}),
          now: iso(deps.clock()),
        });
        if (marked) {
          deps.log.warn('oauth token rejected', { tenant_id: c.tenant_id, server: c.server, reason });
          return { status: 'needs_reauth', reason, code: 'mcp_reauth_required' };
        }
        const current = await deps.store.getConnection(c.tenant_id, c.user_id, c.server);
        const after = verdict(server, current);
        if (after !== undefined || current === undefined) return after ?? { status: 'not_connected' };
        c = current;
      }
    }
    // `need`: 'fresh' for the token we were handed; 'unexpired' for one another holder just
    // stored (it is as new as a refresh gets, even when the AS issues shorter-lived tokens than
    // MCP_TOKEN_MIN_TTL_SECONDS; refreshing again would only repeat the refresh).
    const usable = async (r: ConnectionRecord, need: 'fresh' | 'unexpired' = 'fresh') =>
      rejected !== undefined && r.token_fingerprint === rejected ? undefined : stored(r, need);
    const first = await usable(c);
    if (first !== undefined) return first;
    if (c.refresh_token_sealed === undefined)
      return (await usable(c, 'unexpired')) ?? verdict(server, c) ?? unavailable;

    const deadline = deps.clock() + WAIT_BUDGET_MS;
    const owner = randomBytes(16).toString('base64url');
    while (deps.clock() < deadline) {
      const now = deps.clock();
      const locked = await deps.store.takeRefreshLock(c, { owner, until: now + REFRESH_LOCK_MS, now });
      if (locked !== undefined) {
        const result = await refreshAsHolder(tenant, server, locked, owner, rejected);
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
    return (await usable(c, 'unexpired')) ?? unavailable;
  }

  return {
    credential,
    accessToken: (input) => credential(input),
  };
}
