import { DomainError } from '../errors.js';
import { callbackUrl } from '../oauth/client-metadata.js';
import { discover } from '../oauth/discovery.js';
import { selectScopes, startAuthorization } from '../oauth/flow.js';
import type { PendingAuthorization } from '../oauth/ports.js';
import { registerFor } from './clients.js';
import {
  AUTHORIZE_PER_MINUTE,
  type Caller,
  type ConnectionDeps,
  catalogServer,
  handleHash,
  iso,
  requireAuth,
  stateBinding,
} from './context.js';

/** What a pending authorization binds (docs/api.md §8), sealed at rest; `code_verifier` is a secret. */
export interface SealedPending extends PendingAuthorization {
  tenant_id: string;
  user_id: string;
  server: string;
  return_to: string;
}

/** How long a used or expired state or result stays known after it expires, s. */
export const ONE_TIME_KEEP_SECONDS = 24 * 3600;

/**
 * `POST /v1/connections/{server}/authorize`: discovery, registration, then a fresh pending
 * authorization that replaces the user's previous one for the server.
 */
export async function authorize(
  deps: ConnectionDeps,
  caller: Caller,
  serverName: string,
  input: { return_to: string; scopes?: string[] | undefined },
): Promise<{ authorization_url: string; expires_at: string }> {
  const { tenant, user } = caller;
  const server = catalogServer(tenant, serverName);
  requireAuth(server, 'oauth');
  if (!(tenant.oauth_return_urls ?? []).includes(input.return_to)) {
    throw new DomainError('return_to_not_allowed', 'return_to is not one of the tenant’s oauth_return_urls.');
  }
  if (!(await deps.store.hitAuthorizeRate(tenant.tenant_id, user.user_id, AUTHORIZE_PER_MINUTE))) {
    throw new DomainError('rate_limited', 'Too many authorizations; retry in a minute.');
  }
  const discovered = await discover(server.url, {
    fetch: deps.fetch,
    clock: deps.clock,
    allowInsecure: deps.config.allowInsecureMcpUrls,
    ...(deps.discoveryCache ? { cache: deps.discoveryCache } : {}),
  });
  const registration = await registerFor(deps, tenant, server, discovered);
  const existing = await deps.store.getConnection(tenant.tenant_id, user.user_id, server.name);
  const configured = server.auth.type === 'oauth' ? server.auth.scopes : undefined;
  // Step-up after an MCP server's 403 insufficient_scope: what it named, unless the app asks itself.
  const named =
    existing?.reason === 'insufficient_scope' && existing.resource === server.url
      ? existing.required_scopes
      : undefined;
  const requested = input.scopes ?? named;
  const scopes = selectScopes(discovered, {
    ...(requested === undefined ? {} : { requested }),
    // Step-up: a grant for this very resource keeps what it has.
    ...(existing?.auth === 'oauth' && existing.resource === server.url && existing.scopes
      ? { granted: existing.scopes }
      : {}),
    ...(configured === undefined ? {} : { configured }),
  });
  const { authorizationUrl, pending } = await startAuthorization(
    discovered,
    registration,
    {
      redirectUri: callbackUrl(deps.config.publicBaseUrl),
      scopes,
      ttlSeconds: deps.config.oauthStateTtlSeconds,
    },
    { clock: deps.clock },
  );
  const body: SealedPending = {
    ...pending,
    tenant_id: tenant.tenant_id,
    user_id: user.user_id,
    server: server.name,
    return_to: input.return_to,
  };
  const stateHash = handleHash(pending.state);
  // Ordering: the new state is written first, then the user's pointer is moved to it, then the
  // state it replaced is voided. The callback requires the pointer to name its state (strongly
  // consistent read) before any token request, so a replaced state can never be exchanged even
  // if voiding it below is lost.
  await deps.store.putOneTime(
    'state',
    stateHash,
    {
      tenant_id: tenant.tenant_id,
      user_id: user.user_id,
      server: server.name,
      expires_at: pending.expires_at,
      used: false,
      sealed: await deps.secretBox.seal(JSON.stringify(body), stateBinding(tenant.tenant_id, user.user_id)),
    },
    deps.config.oauthStateTtlSeconds + ONE_TIME_KEEP_SECONDS,
  );
  const replaced = await deps.store.setPendingPointer(tenant.tenant_id, user.user_id, {
    server: server.name,
    state_hash: stateHash,
    expires_at: pending.expires_at,
  });
  if (replaced !== undefined && replaced.state_hash !== stateHash) {
    await deps.store.takeOneTime('state', replaced.state_hash, { now: deps.clock() });
  }
  deps.log.info('oauth authorization started', { tenant_id: tenant.tenant_id, server: server.name });
  return { authorization_url: authorizationUrl, expires_at: iso(pending.expires_at) };
}
