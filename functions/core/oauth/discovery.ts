import * as oauth from 'oauth4webapi';
import { type DiscoveryFailureReason, OAuthDiscoveryError } from './errors.js';
import type { Clock, MetadataCache, OAuthFetch } from './ports.js';

/** Longest a discovery result is reused (CONTRACT §8: ≤ 1 h). */
export const DISCOVERY_CACHE_MAX_MS = 60 * 60 * 1000;
/** Budget for all of one discovery (CONTRACT §8: 10 s). */
export const DISCOVERY_BUDGET_MS = 10_000;

/** What discovery found for one MCP server; plain JSON, safe to cache and record. */
export interface DiscoveredServer {
  /** The MCP server URL, which is the protected resource (RFC 8707 `resource`). */
  resource: string;
  /** The authorization server's issuer, exactly as its metadata says (and the PRM named). */
  issuer: string;
  /** RFC 9728 Protected Resource Metadata. */
  resourceMetadata: oauth.ResourceServer;
  /** RFC 8414 (or OpenID) metadata of the issuer. */
  authorizationServer: oauth.AuthorizationServer;
  /** The scopes of the 401 challenge, when the server sent one. */
  challengeScopes?: string[];
  /** Which well-known document served the authorization server metadata. */
  metadataSource: 'oauth2' | 'oidc';
}

/** Dependencies of {@link discover}. */
export interface DiscoveryDeps {
  fetch: OAuthFetch;
  clock: Clock;
  cache?: MetadataCache<DiscoveredServer>;
  /** `ALLOW_INSECURE_MCP_URLS`: endpoints may be http (the fetch still admits loopback only). */
  allowInsecure: boolean;
  budgetMs?: number;
  cacheMs?: number;
}

/** oauth4webapi options shared by every request: our fetch, our budget, our https rule. */
export function requestOptions(
  fetch: OAuthFetch,
  allowInsecure: boolean,
  signal?: AbortSignal,
): { [oauth.customFetch]: never; [oauth.allowInsecureRequests]?: true; signal?: AbortSignal } {
  return {
    // Each oauth4webapi call types customFetch by its method and body; ours takes them all.
    [oauth.customFetch]: fetch as never,
    ...(allowInsecure ? { [oauth.allowInsecureRequests]: true } : {}),
    ...(signal ? { signal } : {}),
  };
}

function outboundReason(error: unknown): string | undefined {
  const { reason, code } = (error ?? {}) as { reason?: unknown; code?: unknown };
  // oauth4webapi refuses a non-https URL itself, before our fetch sees it.
  if (code === oauth.HTTP_REQUEST_FORBIDDEN || code === oauth.REQUEST_PROTOCOL_FORBIDDEN) return 'unsafe_url';
  return typeof reason === 'string' ? reason : undefined;
}

function fail(reason: DiscoveryFailureReason, what: string): never {
  throw new OAuthDiscoveryError(reason, `OAuth discovery failed: ${what}.`);
}

/**
 * Whether a failed attempt ends the search of well-known URIs: our own refusal, an unsafe URL, the
 * budget spent, or a document naming another resource or issuer. Anything else tries the next one.
 */
function isFinal(error: unknown, budget: AbortSignal): boolean {
  if (error instanceof OAuthDiscoveryError || outboundReason(error) === 'unsafe_url' || budget.aborted)
    return true;
  return error instanceof oauth.OperationProcessingError && error.code === oauth.JSON_ATTRIBUTE_COMPARISON;
}

/** Turns whatever a step threw into our reason; `comparison` is the reason of an attribute mismatch. */
function classify(
  error: unknown,
  budget: AbortSignal,
  comparison: DiscoveryFailureReason,
  what: string,
): never {
  if (error instanceof OAuthDiscoveryError) throw error;
  if (budget.aborted) fail('timeout', `${what} did not finish within the budget`);
  const reason = outboundReason(error);
  if (reason === 'unsafe_url') fail('unsafe_url', `${what} names a URL that is not allowed`);
  if (reason === 'timeout') fail('timeout', `${what} did not answer in time`);
  if (error instanceof oauth.OperationProcessingError && error.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
    fail(comparison, `${what} names another ${comparison === 'resource_mismatch' ? 'resource' : 'issuer'}`);
  }
  fail('bad_metadata', `${what} is missing or malformed`);
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'livekit-mcp-dispatch', version: '1' },
  },
});

/**
 * Asks the MCP server, unauthenticated, what protects it (MCP authorization: the 401's
 * `WWW-Authenticate: Bearer resource_metadata=…, scope=…`). Any other answer: no hint.
 */
async function probe(
  resource: URL,
  deps: DiscoveryDeps,
  signal: AbortSignal,
): Promise<{ metadataUrl?: string; scopes?: string[] }> {
  // oauth4webapi parses challenges on the way out of protectedResourceRequest, which always sets
  // a bearer; MCP's first request carries none, so this fetch drops the placeholder.
  const unauthenticated: OAuthFetch = (url, init) => {
    const headers = new Headers(init?.headers as ConstructorParameters<typeof Headers>[0]);
    headers.delete('authorization');
    return deps.fetch(url, { ...init, headers });
  };
  try {
    const response = await oauth.protectedResourceRequest(
      'unauthenticated-probe',
      'POST',
      resource,
      new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }),
      INITIALIZE,
      requestOptions(unauthenticated, deps.allowInsecure, signal),
    );
    await response.body?.cancel();
    return {};
  } catch (error) {
    if (error instanceof oauth.WWWAuthenticateChallengeError) {
      const bearer = error.cause.find((c) => c.scheme === 'bearer');
      const metadataUrl = bearer?.parameters.resource_metadata;
      const scope = bearer?.parameters.scope;
      return {
        ...(metadataUrl ? { metadataUrl } : {}),
        ...(scope ? { scopes: scope.split(' ').filter(Boolean) } : {}),
      };
    }
    if (signal.aborted) fail('timeout', 'the MCP server did not finish within the budget');
    if (outboundReason(error) === 'unsafe_url') fail('unsafe_url', 'the MCP server URL is not allowed');
    return {};
  }
}

async function resourceMetadata(
  resource: URL,
  hint: string | undefined,
  deps: DiscoveryDeps,
  signal: AbortSignal,
): Promise<oauth.ResourceServer> {
  const options = requestOptions(deps.fetch, deps.allowInsecure, signal);
  const attempts: (() => Promise<Response>)[] = [];
  if (hint !== undefined) {
    attempts.push(() => deps.fetch(hint, { method: 'GET', headers: { accept: 'application/json' }, signal }));
  } else {
    attempts.push(() => oauth.resourceDiscoveryRequest(resource, options));
    // RFC 9728 §3.1 inserts the path; MCP servers also serve the root document.
    if (resource.pathname !== '/') {
      const root = new URL('/.well-known/oauth-protected-resource', resource);
      attempts.push(() =>
        deps.fetch(root.href, { method: 'GET', headers: { accept: 'application/json' }, signal }),
      );
    }
  }
  let last: unknown;
  for (const attempt of attempts) {
    try {
      const metadata = await oauth.processResourceDiscoveryResponse(resource, await attempt());
      if (metadata.resource !== resource.href)
        fail('resource_mismatch', 'the protected resource metadata names another resource');
      return metadata;
    } catch (error) {
      last = error;
      // A refusal or a mismatch is final; a missing document lets the next well-known URI answer.
      if (isFinal(error, signal)) break;
    }
  }
  classify(last, signal, 'resource_mismatch', 'the protected resource metadata');
}

async function authorizationServerMetadata(
  issuer: string,
  deps: DiscoveryDeps,
  signal: AbortSignal,
): Promise<{ as: oauth.AuthorizationServer; source: 'oauth2' | 'oidc' }> {
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(issuer);
  } catch {
    fail('bad_metadata', 'the authorization server is not a URL');
  }
  let last: unknown;
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    try {
      const response = await oauth.discoveryRequest(issuerUrl, {
        ...requestOptions(deps.fetch, deps.allowInsecure, signal),
        algorithm,
      });
      const as = await oauth.processDiscoveryResponse(issuerUrl, response);
      // RFC 8414 §3.3: identical, not merely equivalent after URL normalisation.
      if (as.issuer !== issuer)
        fail('issuer_mismatch', 'the authorization server metadata names another issuer');
      return { as, source: algorithm };
    } catch (error) {
      last = error;
      if (isFinal(error, signal)) break;
    }
  }
  classify(last, signal, 'issuer_mismatch', 'the authorization server metadata');
}

function checkEndpoints(as: oauth.AuthorizationServer, allowInsecure: boolean): void {
  if (!as.authorization_endpoint || !as.token_endpoint) {
    fail('bad_metadata', 'the authorization server lists no authorization or token endpoint');
  }
  for (const [name, value] of Object.entries(as)) {
    if (!(name.endsWith('_endpoint') || name === 'jwks_uri' || name === 'issuer')) continue;
    if (typeof value !== 'string') fail('bad_metadata', `the authorization server's ${name} is not a URL`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      fail('bad_metadata', `the authorization server's ${name} is not a URL`);
    }
    const ok = url.protocol === 'https:' || (allowInsecure && url.protocol === 'http:');
    if (!ok || url.username !== '' || url.password !== '') {
      fail('unsafe_url', `the authorization server's ${name} is not https`);
    }
  }
  if (!as.code_challenge_methods_supported?.includes('S256')) {
    fail('no_s256', 'the authorization server does not list S256 PKCE');
  }
}

/**
 * CONTRACT §8 discovery for the MCP server at `serverUrl`: the 401 challenge or the well-known
 * URIs give the Protected Resource Metadata (its `resource` must be `serverUrl`), whose first
 * authorization server's RFC 8414 (else OpenID) metadata must name exactly that issuer, list
 * S256 and use https endpoints (dev aside). Every request goes through `deps.fetch`; the whole
 * of it fits in the budget; results are cached ≤ 1 h by the injected clock.
 * Throws {@link OAuthDiscoveryError} with one of §8's reasons.
 */
export async function discover(serverUrl: string, deps: DiscoveryDeps): Promise<DiscoveredServer> {
  let resource: URL;
  try {
    resource = new URL(serverUrl);
  } catch {
    fail('unsafe_url', 'the MCP server URL is not a URL');
  }
  const key = resource.href;
  const now = deps.clock();
  const cached = deps.cache?.get(key);
  if (cached !== undefined && cached.expiresAt > now) return cached.value;

  const budgetMs = deps.budgetMs ?? DISCOVERY_BUDGET_MS;
  const signal = AbortSignal.timeout(budgetMs);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new OAuthDiscoveryError('timeout', 'OAuth discovery failed: it did not finish within the budget.'),
        ),
      budgetMs,
    );
  });
  const run = async (): Promise<DiscoveredServer> => {
    const hint = await probe(resource, deps, signal);
    const prm = await resourceMetadata(resource, hint.metadataUrl, deps, signal);
    const issuer = prm.authorization_servers?.[0];
    if (typeof issuer !== 'string')
      fail('bad_metadata', 'the protected resource metadata names no authorization server');
    const { as, source } = await authorizationServerMetadata(issuer, deps, signal);
    checkEndpoints(as, deps.allowInsecure);
    return {
      resource: resource.href,
      issuer: as.issuer,
      resourceMetadata: prm,
      authorizationServer: as,
      ...(hint.scopes ? { challengeScopes: hint.scopes } : {}),
      metadataSource: source,
    };
  };
  try {
    const value = await Promise.race([run(), deadline]);
    const ttl = Math.min(deps.cacheMs ?? DISCOVERY_CACHE_MAX_MS, DISCOVERY_CACHE_MAX_MS);
    deps.cache?.set(key, { value, expiresAt: now + ttl });
    return value;
  } finally {
    clearTimeout(timer);
  }
}
