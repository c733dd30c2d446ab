import { DomainError } from '../errors.js';
import { type CallbackErrorCode, OAuthCallbackError } from '../oauth/errors.js';
import { exchangeCallback } from '../oauth/flow.js';
import type { TokenSet } from '../oauth/ports.js';
import { ONE_TIME_KEEP_SECONDS, type SealedPending } from './authorize.js';
import { flowDeps, recordedClient } from './clients.js';
import {
  type Caller,
  type ConnectionDeps,
  catalogServer,
  connBinding,
  handleHash,
  iso,
  newHandle,
  requireAuth,
  sameString,
  stateBinding,
  storeNewGrant,
} from './context.js';
import { removeConnection } from './revoke.js';
import { type ConnectionView, viewOf } from './view.js';

/** What the callback answers: a 303 to the app, or the 400 page for a state we never issued. */
export type CallbackOutcome = { kind: 'redirect'; location: string } | { kind: 'unknown_state' };

interface SealedResult {
  tenant_id: string;
  user_id: string;
  server: string;
  state_hash: string;
  tokens: TokenSet;
}

function redirect(returnTo: string, params: Record<string, string>): CallbackOutcome {
  const url = new URL(returnTo);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { kind: 'redirect', location: url.href };
}

/**
 * `GET /v1/oauth/callback`: finds the pending authorization by the hash of `state`, uses it once,
 * compares `iss` and exchanges the code (exchangeCallback), and stores the tokens as a one-time
 * result for the user who started. It completes nothing. Only our own codes reach the URL.
 */
export async function callback(deps: ConnectionDeps, params: URLSearchParams): Promise<CallbackOutcome> {
  const state = params.get('state');
  if (state === null || state.length === 0 || state.length > 512) return { kind: 'unknown_state' };
  const stateHash = handleHash(state);
  const item = await deps.store.getOneTime('state', stateHash);
  if (item === undefined) return { kind: 'unknown_state' };
  let pending: SealedPending;
  try {
    pending = JSON.parse(
      await deps.secretBox.open(item.sealed, stateBinding(item.tenant_id, item.user_id)),
    ) as SealedPending;
  } catch {
    return { kind: 'unknown_state' };
  }
  if (!sameString(pending.state, state) || pending.server !== item.server) return { kind: 'unknown_state' };
  const fail = (code: CallbackErrorCode) =>
    redirect(pending.return_to, { server: pending.server, error: code });
  const now = deps.clock();
  if (item.used || now >= item.expires_at) return fail('state_expired');
  // Only the user's current authorization for the server may proceed (a newer one replaced it).
  const pointer = await deps.store.getPendingPointer(item.tenant_id, item.user_id, item.server);
  if (pointer?.state_hash !== stateHash) return fail('state_expired');
  const tenant = await deps.store.getTenant(item.tenant_id);
  const server = tenant?.mcp_servers?.find((s) => s.name === item.server);
  if (tenant === undefined || server === undefined || server.url !== pending.resource) {
    return fail('token_exchange_failed');
  }
  const client = await recordedClient(deps, tenant, server, pending);
  if (client === undefined) return fail('token_exchange_failed');
  // RFC 9207 before anything else: a response from another issuer (or none, where the issuer
  // advertises `iss`) acts on nothing, not even on the state, so the real response still can.
  const iss = params.get('iss');
  if (
    iss !== null ? iss !== pending.issuer : client.as.authorization_response_iss_parameter_supported === true
  ) {
    deps.log.warn('oauth callback refused', {
      tenant_id: item.tenant_id,
      server: item.server,
      code: 'issuer_mismatch',
    });
    return fail('issuer_mismatch');
  }
  // Single use, before anything is sent to the authorization server: a replayed callback loses here.
  if (!(await deps.store.takeOneTime('state', stateHash, { now }))) return fail('state_expired');

  let tokens: TokenSet;
  try {
    tokens = await exchangeCallback(client.as, client.registration, pending, params, await flowDeps(deps));
  } catch (error) {
    const code = error instanceof OAuthCallbackError ? error.code : 'token_exchange_failed';
    deps.log.warn('oauth callback refused', { tenant_id: item.tenant_id, server: item.server, code });
    // A DCR client the authorization server forgot: the user's next try registers afresh.
    if (error instanceof OAuthCallbackError && error.clientRefused && client.registration.kind === 'dcr') {
      const { issuer, client_id } = client.registration;
      await deps.store.forgetDcrClient(item.tenant_id, issuer, client_id);
    }
    // This authorization is over (its state is used): the server shows `pending` no longer. The
    // pointer goes only while it still names this state, never a newer authorization's.
    await deps.store.clearPendingPointer(item.tenant_id, item.user_id, item.server, stateHash);
    return fail(code);
  }
  const handle = newHandle();
  const result: SealedResult = {
    tenant_id: item.tenant_id,
    user_id: item.user_id,
    server: item.server,
    state_hash: stateHash,
    tokens,
  };
  await deps.store.putOneTime(
    'result',
    handleHash(handle),
    {
      tenant_id: item.tenant_id,
      user_id: item.user_id,
      server: item.server,
      expires_at: now + deps.config.oauthStateTtlSeconds * 1000,
      used: false,
      sealed: await deps.secretBox.seal(JSON.stringify(result), stateBinding(item.tenant_id, item.user_id)),
    },
    deps.config.oauthStateTtlSeconds + ONE_TIME_KEEP_SECONDS,
  );
  return redirect(pending.return_to, { server: item.server, result: handle });
}

/**
 * `POST /v1/connections/{server}/complete`: the result handle under the JWT of the user who
 * started. Another user: 403 `oauth_user_mismatch`, audited, nothing used or stored; used or
 * expired: 410 `result_expired`. Only now is the grant stored.
 */
export async function complete(
  deps: ConnectionDeps,
  caller: Caller,
  serverName: string,
  handle: string,
): Promise<ConnectionView> {
  const { tenant, user } = caller;
  const server = catalogServer(tenant, serverName);
  requireAuth(server, 'oauth');
  const hash = handleHash(handle);
  const item = await deps.store.getOneTime('result', hash);
  const expired = () => new DomainError('result_expired', 'The authorization result is used or expired.');
  if (item === undefined) throw expired();
  if (item.tenant_id !== tenant.tenant_id || item.user_id !== user.user_id) {
    deps.log.warn('oauth result presented by another user', {
      tenant_id: tenant.tenant_id,
      server: serverName,
    });
    await deps.store.putAudit({
      tenant_id: tenant.tenant_id,
      target: `connection:${serverName}`,
      version: deps.clock(),
      actor: user.user_id,
      action: 'update',
      changed_fields: ['oauth_user_mismatch'],
      at: iso(deps.clock()),
    });
    throw new DomainError('oauth_user_mismatch', 'This authorization was started by another user.');
  }
  const now = deps.clock();
  if (item.used || now >= item.expires_at || item.server !== server.name) throw expired();
  if (!(await deps.store.takeOneTime('result', hash, { now, userId: user.user_id }))) throw expired();
  const result = JSON.parse(
    await deps.secretBox.open(item.sealed, stateBinding(item.tenant_id, item.user_id)),
  ) as SealedResult;
  const { tokens } = result;
  const t = tenant.tenant_id;
  const u = user.user_id;
  const at = iso(now);
  const sealed = {
    token_sealed: await deps.secretBox.seal(tokens.access_token, connBinding(t, u, server.name, 'token')),
    ...(tokens.refresh_token === undefined
      ? {}
      : {
          refresh_token_sealed: await deps.secretBox.seal(
            tokens.refresh_token,
            connBinding(t, u, server.name, 'refresh_token'),
          ),
        }),
  };
  const stored = await storeNewGrant(
    deps.store,
    { tenantId: t, userId: u, server: server.name },
    at,
    async () => ({
      auth: 'oauth',
      resource: tokens.resource,
      ...(server.entry_id === undefined ? {} : { entry_id: server.entry_id }),
      issuer: tokens.issuer,
      client_id: tokens.client_id,
      scopes: tokens.scopes,
      ...(server.auth.type === 'oauth' && server.auth.scopes ? { required_scopes: server.auth.scopes } : {}),
      ...sealed,
      token_fingerprint: deps.secretBox.fingerprint(tokens.access_token),
      ...(tokens.expires_at === undefined ? {} : { access_expires_at: Math.floor(tokens.expires_at / 1000) }),
    }),
  );
  await deps.store.clearPendingPointer(t, u, server.name, result.state_hash);
  // Write-then-check against a tenant PUT that retires this entry (docs/api.md §8: deleting a
  // catalog entry revokes the grants it held). That PUT writes the tenant, then lists the entry's
  // connections and removes them. Here the grant is stored first, then the tenant re-read
  // strongly: either this read sees the entry gone (the grant goes here, revoked with the entry
  // the user started from), or it precedes the tenant write, so the put preceded the sweep's
  // listing and the sweep removes it. (The sweep lists a GSI: in AWS a put in its last moments
  // can still be missed; what is missed is never sealed, as admin.ts removeServers says.) An
  // entry removed and added again since this caller's read is another incarnation: also gone.
  const current = await deps.store.getTenant(t);
  const entry = current?.mcp_servers?.find((s) => s.name === server.name);
  if (
    current === undefined ||
    current.status === 'deleting' ||
    entry?.auth.type !== 'oauth' ||
    entry.entry_id !== server.entry_id
  ) {
    await removeConnection(deps, tenant, u, server.name);
    deps.log.warn('oauth connection dropped: catalog entry retired', { tenant_id: t, server: server.name });
    throw new DomainError('server_not_found', 'The tenant has no such MCP server.');
  }
  deps.log.info('oauth connection stored', { tenant_id: t, server: server.name });
  return viewOf(server, stored, undefined, now);
}
