import * as oauth from 'oauth4webapi';
import type { DiscoveredServer } from './discovery.js';
import { requestOptions } from './discovery.js';
import {
  OAuthCallbackError,
  OAuthIssuerMismatchError,
  OAuthRefreshError,
  OAuthRegistrationUnavailableError,
  OAuthRevocationError,
} from './errors.js';
import type { ClientRegistration, Clock, OAuthFetch, PendingAuthorization, TokenSet } from './ports.js';
import { authMethods, registrationPath } from './registration-path.js';

/** What every token-endpoint call needs besides the server: our fetch, the dev flag, the signing key. */
export interface FlowDeps {
  fetch: OAuthFetch;
  clock: Clock;
  allowInsecure: boolean;
  /** The current `OAUTH_CLIENT_KEYS` key, for `private_key_jwt`. */
  signingKey?: { key: oauth.CryptoKey; kid: string };
}

/** The tenant's side of registration (CONTRACT §8 order: pre-registered → CIMD → DCR). */
export interface RegistrationInput {
  /** The catalog entry's pre-registered client, bound to its issuer. */
  preregistered?: { client_id: string; issuer: string; client_secret?: string };
  /** The tenant's Client ID Metadata Document URL; used only when it is https. */
  clientMetadataUrl?: string;
  /** A DCR registration stored earlier for (tenant, issuer), reused while its secret is valid. */
  stored?: ClientRegistration;
  redirectUri: string;
  clientName: string;
  /** The public JWKS URL (`/oauth/jwks.json`), sent to DCR when https. */
  jwksUri?: string;
  /** The public JWKS itself, sent inline to DCR when the JWKS URL is not https (dev). */
  jwks?: { keys: object[] };
}

function secretValid(reg: ClientRegistration, now: number): boolean {
  const expires = reg.client_secret_expires_at ?? 0;
  return expires === 0 || expires * 1000 > now;
}

/**
 * Picks (or makes) the client for a discovered server in §8's order. A pre-registered client of
 * another issuer is refused ({@link OAuthIssuerMismatchError}); a DCR answer without `client_id`,
 * or no usable path, is {@link OAuthRegistrationUnavailableError}. The caller stores a `dcr`
 * result per (tenant, issuer), sealing `client_secret`.
 */
export async function register(
  server: DiscoveredServer,
  input: RegistrationInput,
  deps: FlowDeps,
): Promise<ClientRegistration> {
  const as = server.authorizationServer;
  const methods = authMethods(as);
  const path = registrationPath(server, input);
  if (path === 'preregistered' && input.preregistered !== undefined) {
    const secret = input.preregistered.client_secret;
    return {
      kind: 'preregistered',
      issuer: server.issuer,
      client_id: input.preregistered.client_id,
      ...(secret ? { client_secret: secret } : {}),
      token_endpoint_auth_method: secret
        ? methods.includes('client_secret_basic') || !methods.includes('client_secret_post')
          ? 'client_secret_basic'
          : 'client_secret_post'
        : 'none',
    };
  }
  if (path === 'cimd' && input.clientMetadataUrl !== undefined) {
    return {
      kind: 'cimd',
      issuer: server.issuer,
      client_id: input.clientMetadataUrl,
      token_endpoint_auth_method: methods.includes('private_key_jwt') ? 'private_key_jwt' : 'none',
    };
  }
  if (path === 'dcr') {
    const stored = input.stored;
    if (stored?.kind === 'dcr' && stored.issuer === server.issuer && secretValid(stored, deps.clock()))
      return stored;
    const keyJwt = methods.includes('private_key_jwt') && deps.signingKey !== undefined;
    const metadata: Record<string, unknown> = {
      application_type: 'web',
      client_name: input.clientName,
      redirect_uris: [input.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: keyJwt ? 'private_key_jwt' : 'client_secret_basic',
    };
    if (keyJwt) {
      if (input.jwksUri?.startsWith('https://')) metadata.jwks_uri = input.jwksUri;
      else if (input.jwks) metadata.jwks = input.jwks;
      else metadata.token_endpoint_auth_method = 'client_secret_basic';
    }
    let answer: Awaited<ReturnType<typeof oauth.processDynamicClientRegistrationResponse>>;
    try {
      const response = await oauth.dynamicClientRegistrationRequest(
        as,
        metadata as Partial<oauth.OmitSymbolProperties<oauth.Client>>,
        requestOptions(deps.fetch, deps.allowInsecure),
      );
      answer = await oauth.processDynamicClientRegistrationResponse(response);
    } catch {
      throw new OAuthRegistrationUnavailableError('dcr_failed', 'Dynamic client registration failed.');
    }
    const method = String(answer.token_endpoint_auth_method ?? metadata.token_endpoint_auth_method);
    return {
      kind: 'dcr',
      issuer: server.issuer,
      client_id: answer.client_id,
      ...(typeof answer.client_secret === 'string' ? { client_secret: answer.client_secret } : {}),
      ...(typeof answer.client_secret_expires_at === 'number'
        ? { client_secret_expires_at: answer.client_secret_expires_at }
        : {}),
      token_endpoint_auth_method: method as ClientRegistration['token_endpoint_auth_method'],
    };
  }
  throw new OAuthRegistrationUnavailableError(
    'no_path',
    'The authorization server offers no registration we can use.',
  );
}

/** Scopes per §8: asked (step-up: with those granted), else configured, else the challenge's, else supported; plus offline_access when listed. */
export function selectScopes(
  server: DiscoveredServer,
  input: { requested?: readonly string[]; granted?: readonly string[]; configured?: readonly string[] },
): string[] {
  const supported = server.resourceMetadata.scopes_supported ?? server.authorizationServer.scopes_supported;
  let chosen: readonly string[];
  if (input.requested !== undefined && input.requested.length > 0)
    chosen = [...(input.granted ?? []), ...input.requested];
  else if (input.configured !== undefined && input.configured.length > 0) chosen = input.configured;
  else if (server.challengeScopes !== undefined && server.challengeScopes.length > 0)
    chosen = server.challengeScopes;
  else chosen = supported ?? [];
  const set = new Set(chosen);
  if (server.authorizationServer.scopes_supported?.includes('offline_access')) set.add('offline_access');
  return [...set];
}

/**
 * Builds the authorization URL (code flow, PKCE S256, a 256-bit state, `resource` = the server
 * URL) and the pending record the caller binds to (tenant, user, server, return_to) and seals.
 */
export async function startAuthorization(
  server: DiscoveredServer,
  registration: ClientRegistration,
  input: { redirectUri: string; scopes: string[]; ttlSeconds: number; extra?: Record<string, string> },
  deps: Pick<FlowDeps, 'clock'>,
): Promise<{ authorizationUrl: string; pending: PendingAuthorization }> {
  const as = server.authorizationServer;
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint as string);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', registration.client_id);
  url.searchParams.set('redirect_uri', input.redirectUri);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('resource', server.resource);
  if (input.scopes.length > 0) url.searchParams.set('scope', input.scopes.join(' '));
  // Refresh tokens for offline_access are issued on an explicit consent (OpenID Core §11).
  if (input.scopes.includes('offline_access')) url.searchParams.set('prompt', 'consent');
  for (const [k, v] of Object.entries(input.extra ?? {})) url.searchParams.set(k, v);
  const now = deps.clock();
  return {
    authorizationUrl: url.href,
    pending: {
      state,
      code_verifier: verifier,
      resource: server.resource,
      issuer: server.issuer,
      client_id: registration.client_id,
      redirect_uri: input.redirectUri,
      scopes: input.scopes,
      created_at: now,
      expires_at: now + input.ttlSeconds * 1000,
    },
  };
}

/** oauth4webapi's client and its authentication for a registration. */
export function clientOf(
  registration: ClientRegistration,
  deps: Pick<FlowDeps, 'signingKey'>,
): { client: oauth.Client; auth: oauth.ClientAuth } {
  const client: oauth.Client = { client_id: registration.client_id };
  switch (registration.token_endpoint_auth_method) {
    case 'private_key_jwt':
      if (deps.signingKey === undefined)
        throw new OAuthCallbackError('token_exchange_failed', 'No client signing key.');
      return { client, auth: oauth.PrivateKeyJwt(deps.signingKey) };
    case 'client_secret_basic':
      return { client, auth: oauth.ClientSecretBasic(registration.client_secret ?? '') };
    case 'client_secret_post':
      return { client, auth: oauth.ClientSecretPost(registration.client_secret ?? '') };
    default:
      return { client, auth: oauth.None() };
  }
}

function tokenSet(
  result: oauth.TokenEndpointResponse,
  base: { resource: string; issuer: string; client_id: string; scopes: string[] },
  now: number,
): TokenSet {
  return {
    access_token: result.access_token,
    token_type: String(result.token_type),
    ...(typeof result.refresh_token === 'string' ? { refresh_token: result.refresh_token } : {}),
    ...(typeof result.expires_in === 'number' ? { expires_at: now + result.expires_in * 1000 } : {}),
    scopes: typeof result.scope === 'string' ? result.scope.split(' ').filter(Boolean) : base.scopes,
    resource: base.resource,
    issuer: base.issuer,
    client_id: base.client_id,
  };
}

/**
 * Handles the authorization callback for a pending authorization the caller found by `state`:
 * expiry, then `iss` (RFC 9207) compared exactly with the recorded issuer before anything else
 * (and required when the server advertises it), then the response and the code exchange.
 * `as` is the metadata recorded for that issuer. Throws {@link OAuthCallbackError} with our
 * codes only; the authorization server's `error_description` never reaches a message.
 */
export async function exchangeCallback(
  as: oauth.AuthorizationServer,
  registration: ClientRegistration,
  pending: PendingAuthorization,
  params: URLSearchParams,
  deps: FlowDeps,
): Promise<TokenSet> {
  if (deps.clock() >= pending.expires_at)
    throw new OAuthCallbackError('state_expired', 'The authorization has expired.');
  const iss = params.get('iss');
  if (iss !== null ? iss !== pending.issuer : as.authorization_response_iss_parameter_supported === true) {
    throw new OAuthCallbackError(
      'issuer_mismatch',
      'The callback does not come from the expected authorization server.',
    );
  }
  if (
    as.issuer !== pending.issuer ||
    registration.issuer !== pending.issuer ||
    registration.client_id !== pending.client_id
  ) {
    throw new OAuthCallbackError(
      'issuer_mismatch',
      'The recorded client belongs to another authorization server.',
    );
  }
  if (params.has('error'))
    throw new OAuthCallbackError('access_denied', 'The authorization was not granted.');
  const { client, auth } = clientOf(registration, deps);
  let callback: URLSearchParams;
  try {
    callback = oauth.validateAuthResponse(as, client, params, pending.state);
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      throw new OAuthCallbackError('access_denied', 'The authorization was not granted.');
    }
    throw new OAuthCallbackError('state_expired', 'The callback does not match the authorization.');
  }
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      callback,
      pending.redirect_uri,
      pending.code_verifier,
      {
        ...requestOptions(deps.fetch, deps.allowInsecure),
        additionalParameters: { resource: pending.resource },
      },
    );
    const result = await oauth.processAuthorizationCodeResponse(as, client, response);
    return tokenSet(result, pending, deps.clock());
  } catch (error) {
    // No cause: oauth4webapi's errors carry the response body, which may hold tokens.
    throw new OAuthCallbackError(
      'token_exchange_failed',
      'The authorization code could not be exchanged.',
      clientRefused(error),
    );
  }
}

/**
 * The token endpoint refused the client itself (RFC 6749 §5.2 `invalid_client`, as a body or as
 * a 401 challenge): it does not know it, or not its credentials.
 */
function clientRefused(error: unknown): boolean {
  if (error instanceof oauth.ResponseBodyError) return error.error === 'invalid_client';
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return error.status === 401 && error.cause.some((c) => c.parameters.error === 'invalid_client');
  }
  return false;
}

/**
 * Refreshes at the recorded issuer (never a fresh discovery), for the recorded resource.
 * `rotated` says whether the server returned a new refresh token (the caller bumps `rt_version`).
 * Throws {@link OAuthRefreshError}: `invalid_grant` or `unavailable`.
 */
export async function refresh(
  as: oauth.AuthorizationServer,
  registration: ClientRegistration,
  grant: { refresh_token: string; resource: string; scopes: string[] },
  deps: FlowDeps,
): Promise<{ tokens: TokenSet; rotated: boolean }> {
  const { client, auth } = clientOf(registration, deps);
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, grant.refresh_token, {
      ...requestOptions(deps.fetch, deps.allowInsecure),
      additionalParameters: { resource: grant.resource },
    });
    const result = await oauth.processRefreshTokenResponse(as, client, response);
    const tokens = tokenSet(
      result,
      {
        resource: grant.resource,
        issuer: registration.issuer,
        client_id: registration.client_id,
        scopes: grant.scopes,
      },
      deps.clock(),
    );
    const rotated = tokens.refresh_token !== undefined && tokens.refresh_token !== grant.refresh_token;
    if (tokens.refresh_token === undefined) tokens.refresh_token = grant.refresh_token;
    return { tokens, rotated };
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError && error.error === 'invalid_grant')
      throw new OAuthRefreshError('invalid_grant');
    if (clientRefused(error)) throw new OAuthRefreshError('invalid_client');
    throw new OAuthRefreshError('unavailable');
  }
}

/** Revokes a token (RFC 7009) when the server offers it; returns whether it did. */
export async function revoke(
  as: oauth.AuthorizationServer,
  registration: ClientRegistration,
  token: { value: string; hint: 'refresh_token' | 'access_token' },
  deps: FlowDeps,
): Promise<boolean> {
  if (as.revocation_endpoint === undefined) return false;
  const { client, auth } = clientOf(registration, deps);
  try {
    const response = await oauth.revocationRequest(as, client, auth, token.value, {
      ...requestOptions(deps.fetch, deps.allowInsecure),
      additionalParameters: { token_type_hint: token.hint },
    });
    await oauth.processRevocationResponse(response);
    return true;
  } catch {
    throw new OAuthRevocationError();
  }
}
