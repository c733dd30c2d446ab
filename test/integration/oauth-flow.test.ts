import { lookup } from 'node:dns/promises';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../functions/adapters/safe-fetch.js';
import {
  currentSigningKey,
  generateClientKeyring,
  publicJwks,
} from '../../functions/core/oauth/client-keys.js';
import { type DiscoveredServer, discover } from '../../functions/core/oauth/discovery.js';
import { OAuthCallbackError, OAuthRefreshError } from '../../functions/core/oauth/errors.js';
import {
  exchangeCallback,
  type FlowDeps,
  refresh,
  register,
  revoke,
  selectScopes,
  startAuthorization,
} from '../../functions/core/oauth/flow.js';
import { MemoryMetadataCache } from '../../functions/core/oauth/ports.js';
import {
  type RunningAuthorizationServer,
  startAuthorizationServer,
} from '../support/oauth/authorization-server.js';
import {
  type CallbackCatcher,
  consentInBrowser,
  launchBrowser,
  startCallbackCatcher,
} from '../support/oauth/browser.js';
import {
  type RunningProtectedMcpServer,
  startProtectedMcpServer,
} from '../support/oauth/protected-mcp-server.js';

const PRE_SECRET = 'pre-registered-secret-0123456789abcdef';
let as: RunningAuthorizationServer;
let mcpA: RunningProtectedMcpServer;
let mcpB: RunningProtectedMcpServer;
let catcher: CallbackCatcher;
let browser: Browser;
let deps: FlowDeps;
let jwks: { keys: object[] };

const fetch = createSafeFetch({
  allowedPorts: [],
  allowInsecure: true,
  resolve: async (host) => [...(await lookup(host, { all: true }))],
});

beforeAll(async () => {
  let issuer = '';
  mcpA = await startProtectedMcpServer({ issuer: () => issuer });
  mcpB = await startProtectedMcpServer({ issuer: () => issuer });
  catcher = await startCallbackCatcher();
  as = await startAuthorizationServer({
    resources: () => [mcpA.url, mcpB.url],
    clients: [
      {
        client_id: 'pre-registered',
        client_secret: PRE_SECRET,
        redirect_uris: [catcher.url],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
  });
  issuer = as.issuer;
  const keyring = await generateClientKeyring('k-test');
  jwks = publicJwks(keyring);
  deps = { fetch, clock: Date.now, allowInsecure: true, signingKey: await currentSigningKey(keyring) };
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([as?.stop(), mcpA?.stop(), mcpB?.stop(), catcher?.stop()]);
});

async function callMcp(url: string, token: string): Promise<number> {
  const response = await globalThis.fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    }),
  });
  await response.text();
  return response.status;
}

describe('OAuth client against oidc-provider and a protected MCP server', () => {
  let server: DiscoveredServer;

  it('discovers the resource and its authorization server from the 401 challenge', async () => {
    server = await discover(mcpA.url, {
      fetch,
      clock: Date.now,
      allowInsecure: true,
      cache: new MemoryMetadataCache(),
    });
    expect(server.resource).toBe(mcpA.url);
    expect(server.issuer).toBe(as.issuer);
    expect(server.challengeScopes).toEqual(['notes:read']);
    expect(server.authorizationServer.code_challenge_methods_supported).toContain('S256');
    expect(server.authorizationServer.authorization_response_iss_parameter_supported).toBe(true);
  });

  it('DCR + private_key_jwt: consent in a browser, exchange, audience-bound token, refresh rotation, revocation', async () => {
    // Prepare: register dynamically with our ES256 key.
    const registration = await register(server, { redirectUri: catcher.url, clientName: 'Acme', jwks }, deps);
    expect(registration).toMatchObject({ kind: 'dcr', token_endpoint_auth_method: 'private_key_jwt' });
    const scopes = selectScopes(server, {});
    expect(scopes).toEqual(['notes:read', 'offline_access']);
    const { authorizationUrl, pending } = await startAuthorization(
      server,
      registration,
      { redirectUri: catcher.url, scopes, ttlSeconds: 600 },
      deps,
    );
    const authUrl = new URL(authorizationUrl);
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('resource')).toBe(mcpA.url);
    expect(Buffer.from(pending.state, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(authorizationUrl).not.toContain(pending.code_verifier);

    // Act: a user signs in and consents in chromium.
    const params = await consentInBrowser(browser, authorizationUrl, catcher);
    expect(params.get('iss')).toBe(as.issuer);
    const tokens = await exchangeCallback(server.authorizationServer, registration, pending, params, deps);

    // Assess: the MCP server takes it for its own URL only.
    expect(tokens.refresh_token).toBeTypeOf('string');
    expect(await callMcp(mcpA.url, tokens.access_token)).toBe(200);
    expect(mcpA.accepted.at(-1)).toBe('user-alice');
    expect(await callMcp(mcpB.url, tokens.access_token)).toBe(401);

    // Refresh rotates; the old refresh token is then invalid_grant.
    const grant = {
      refresh_token: tokens.refresh_token as string,
      resource: mcpA.url,
      scopes: tokens.scopes,
    };
    const refreshed = await refresh(server.authorizationServer, registration, grant, deps);
    expect(refreshed.rotated).toBe(true);
    expect(await callMcp(mcpA.url, refreshed.tokens.access_token)).toBe(200);
    const stale = await refresh(server.authorizationServer, registration, grant, deps).catch((e) => e);
    expect(stale).toBeInstanceOf(OAuthRefreshError);
    expect(stale.kind).toBe('invalid_grant');

    // The code is single-use; replaying it also ends the grant it produced (RFC 6749 §4.1.2).
    const reuse = await exchangeCallback(
      server.authorizationServer,
      registration,
      pending,
      params,
      deps,
    ).catch((e) => e);
    expect(reuse).toBeInstanceOf(OAuthCallbackError);
    expect(reuse.code).toBe('token_exchange_failed');
    const next = { ...grant, refresh_token: refreshed.tokens.refresh_token as string };
    expect((await refresh(server.authorizationServer, registration, next, deps).catch((e) => e)).kind).toBe(
      'invalid_grant',
    );
    for (const secret of [
      grant.refresh_token,
      next.refresh_token,
      tokens.access_token,
      pending.code_verifier,
    ]) {
      expect(
        `${stale.message} ${JSON.stringify(stale)} ${reuse.message} ${JSON.stringify(reuse)}`,
      ).not.toContain(secret);
    }
  });

  it('pre-registered client with a secret; revocation ends the grant', async () => {
    const registration = await register(
      server,
      {
        preregistered: { client_id: 'pre-registered', issuer: as.issuer, client_secret: PRE_SECRET },
        redirectUri: catcher.url,
        clientName: 'Acme',
      },
      deps,
    );
    expect(registration).toMatchObject({
      kind: 'preregistered',
      token_endpoint_auth_method: 'client_secret_basic',
    });
    const { authorizationUrl, pending } = await startAuthorization(
      server,
      registration,
      { redirectUri: catcher.url, scopes: selectScopes(server, {}), ttlSeconds: 600 },
      deps,
    );
    const params = await consentInBrowser(browser, authorizationUrl, catcher);
    const tokens = await exchangeCallback(server.authorizationServer, registration, pending, params, deps);
    expect(await callMcp(mcpA.url, tokens.access_token)).toBe(200);

    expect(
      await revoke(
        server.authorizationServer,
        registration,
        { value: tokens.refresh_token as string, hint: 'refresh_token' },
        deps,
      ),
    ).toBe(true);
    const after = await refresh(
      server.authorizationServer,
      registration,
      { refresh_token: tokens.refresh_token as string, resource: mcpA.url, scopes: [] },
      deps,
    ).catch((e) => e);
    expect(after).toBeInstanceOf(OAuthRefreshError);
    expect(after.kind).toBe('invalid_grant');
    expect(`${after.message}${JSON.stringify(after)}`).not.toContain(PRE_SECRET);
  });
});
