import type * as oauth from 'oauth4webapi';
import type { CatalogServer, TenantRecord } from '../model.js';
import { currentSigningKey, publicJwks } from '../oauth/client-keys.js';
import { callbackUrl, clientMetadataUrl, jwksUrl } from '../oauth/client-metadata.js';
import type { DiscoveredServer } from '../oauth/discovery.js';
import type { FlowDeps, RegistrationInput } from '../oauth/flow.js';
import { register } from '../oauth/flow.js';
import type { ClientRegistration, TokenEndpointAuthMethod } from '../oauth/ports.js';
import { type ConnectionDeps, iso } from './context.js';
import type { StoredClient } from './ports.js';

/** The OAuth flow's dependencies: our safe fetch, the clock, the dev flag, the current client key. */
export async function flowDeps(deps: ConnectionDeps): Promise<FlowDeps> {
  return {
    fetch: deps.fetch,
    clock: deps.clock,
    allowInsecure: deps.config.allowInsecureMcpUrls,
    ...(deps.clientKeys ? { signingKey: await currentSigningKey(deps.clientKeys) } : {}),
  };
}

const clientSecretBinding = (tenantId: string, issuer: string) => ({
  tenantId,
  userId: '',
  field: `client:${issuer}:client_secret` as const,
});

async function preregistered(deps: ConnectionDeps, tenant: TenantRecord, server: CatalogServer) {
  const auth = server.auth;
  if (auth.type !== 'oauth' || auth.client_id === undefined || auth.issuer === undefined) return undefined;
  const secret =
    auth.client_secret_sealed === undefined
      ? undefined
      : await deps.secretBox.open(auth.client_secret_sealed, {
          tenantId: tenant.tenant_id,
          userId: '',
          field: `catalog:${server.name}:client_secret`,
        });
  return { client_id: auth.client_id, issuer: auth.issuer, ...(secret ? { client_secret: secret } : {}) };
}

async function storedDcr(
  deps: ConnectionDeps,
  stored: StoredClient | undefined,
): Promise<ClientRegistration | undefined> {
  if (stored?.dcr === undefined) return undefined;
  const { dcr } = stored;
  const secret =
    dcr.client_secret_sealed === undefined
      ? undefined
      : await deps.secretBox.open(
          dcr.client_secret_sealed,
          clientSecretBinding(stored.tenant_id, stored.issuer),
        );
  return {
    kind: 'dcr',
    issuer: stored.issuer,
    client_id: dcr.client_id,
    ...(secret === undefined ? {} : { client_secret: secret }),
    ...(dcr.client_secret_expires_at === undefined
      ? {}
      : { client_secret_expires_at: dcr.client_secret_expires_at }),
    token_endpoint_auth_method: dcr.token_endpoint_auth_method as TokenEndpointAuthMethod,
  };
}

/**
 * Picks the client for a discovered server in §8's order (pre-registered → CIMD → DCR) and records
 * it with the issuer's metadata per (tenant, issuer): a DCR registration with its secret sealed, and
 * the metadata that refresh and revocation use later (never a fresh discovery).
 */
export async function registerFor(
  deps: ConnectionDeps,
  tenant: TenantRecord,
  server: CatalogServer,
  discovered: DiscoveredServer,
): Promise<ClientRegistration> {
  const stored = await deps.store.getClient(tenant.tenant_id, discovered.issuer);
  const pre = await preregistered(deps, tenant, server);
  const base = deps.config.publicBaseUrl;
  const dcr = await storedDcr(deps, stored);
  const input: RegistrationInput = {
    ...(pre ? { preregistered: pre } : {}),
    clientMetadataUrl: clientMetadataUrl(base, tenant.tenant_id),
    ...(dcr ? { stored: dcr } : {}),
    redirectUri: callbackUrl(base),
    clientName: tenant.name,
    jwksUri: jwksUrl(base),
    ...(deps.clientKeys ? { jwks: publicJwks(deps.clientKeys) } : {}),
  };
  const registration = await register(discovered, input, await flowDeps(deps));
  const fresh = registration.kind === 'dcr' && registration.client_id !== dcr?.client_id;
  const record: StoredClient = {
    tenant_id: tenant.tenant_id,
    issuer: discovered.issuer,
    as_metadata: discovered.authorizationServer as unknown as Record<string, unknown>,
    ...(stored?.dcr && !fresh ? { dcr: stored.dcr } : {}),
    updated_at: iso(deps.clock()),
  };
  if (fresh) {
    record.dcr = {
      client_id: registration.client_id,
      ...(registration.client_secret === undefined
        ? {}
        : {
            client_secret_sealed: await deps.secretBox.seal(
              registration.client_secret,
              clientSecretBinding(tenant.tenant_id, discovered.issuer),
            ),
          }),
      ...(registration.client_secret_expires_at === undefined
        ? {}
        : { client_secret_expires_at: registration.client_secret_expires_at }),
      token_endpoint_auth_method: registration.token_endpoint_auth_method,
    };
  }
  await deps.store.putClient(record);
  return registration;
}

/**
 * The recorded client and issuer metadata a grant was obtained with (by its `issuer` and
 * `client_id`), for the callback, refresh and revocation; undefined when no longer known.
 */
export async function recordedClient(
  deps: ConnectionDeps,
  tenant: TenantRecord,
  server: CatalogServer,
  grant: { issuer: string; client_id: string },
): Promise<{ as: oauth.AuthorizationServer; registration: ClientRegistration } | undefined> {
  const stored = await deps.store.getClient(tenant.tenant_id, grant.issuer);
  if (stored === undefined) return undefined;
  const as = stored.as_metadata as unknown as oauth.AuthorizationServer;
  const pre = await preregistered(deps, tenant, server);
  if (pre !== undefined && pre.client_id === grant.client_id && pre.issuer === grant.issuer) {
    // The same choice of method as `register` made for it.
    const registration = await register(
      { issuer: grant.issuer, authorizationServer: as } as DiscoveredServer,
      { preregistered: pre, redirectUri: callbackUrl(deps.config.publicBaseUrl), clientName: tenant.name },
      await flowDeps(deps),
    );
    return { as, registration };
  }
  if (grant.client_id === clientMetadataUrl(deps.config.publicBaseUrl, tenant.tenant_id)) {
    const methods = as.token_endpoint_auth_methods_supported ?? [];
    return {
      as,
      registration: {
        kind: 'cimd',
        issuer: grant.issuer,
        client_id: grant.client_id,
        token_endpoint_auth_method: methods.includes('private_key_jwt') ? 'private_key_jwt' : 'none',
      },
    };
  }
  const dcr = await storedDcr(deps, stored);
  if (dcr !== undefined && dcr.client_id === grant.client_id) return { as, registration: dcr };
  return undefined;
}
