import { createHash, X509Certificate } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionStore } from '../../functions/core/connections/ports.js';
import type { TenantRecord } from '../../functions/core/model.js';
import { seedUser, uid } from '../support/fixtures.js';
import { type Answer, type LocalStack, startLocalStack } from '../support/local-stack.js';
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
import { makeCertificate } from '../support/oauth/tls.js';

// CONTRACT §8's second registration path end to end: the product served over https (TLS on
// loopback with a throwaway certificate, as API Gateway would terminate it), so it picks its Client
// ID Metadata Document; oidc-provider's own CIMD feature fetches that document (trusting exactly
// this certificate), takes the client from it and verifies our private_key_jwt against our JWKS;
// a real MCP server accepts the sealed token. Consent in chromium.

let front: Server;
let tls: { cert: string; key: string };
/** The tenant whose document the front rewrites (a `client_id` that is not its URL); none when empty. */
let tampered = '';
/** Rewrite the tampered tenant's document only once the browser reaches our callback (mid-flow). */
let tamperAtCallback = false;
let stack: LocalStack;
let as: RunningAuthorizationServer;
let mcp: RunningProtectedMcpServer;
/** An AS with CIMD that lists `none` but not `private_key_jwt`, and its MCP server. */
let noKeyJwtAs: RunningAuthorizationServer;
let noKeyJwtMcp: RunningProtectedMcpServer;
let returnTo: CallbackCatcher;
let browser: Browser;
let base: string;
const tokens: Record<string, string> = {};
const users: Record<string, string> = {};
const tenants: Record<string, TenantRecord> = {};
/** Per token request the AS answered: which client it authenticated, how. */
const grants: { clientId: string; method: string; grantType: string }[] = [];
const grantErrors: { clientId: string | undefined; error: string }[] = [];

const docUrl = (tenantId: string) => `${base}/oauth/tenants/${tenantId}/client-metadata.json`;
const connections = () =>
  (stack.local.services.store as unknown as { connections: ConnectionStore }).connections;

/** The TLS front: forwards every request to the local server, rewriting one tenant's document. */
async function startFront(): Promise<void> {
  front = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/v1/oauth/callback') && tamperAtCallback) tampered = tenants.mid?.tenant_id ?? '';
    const hostile = tampered !== '' && path === `/oauth/tenants/${tampered}/client-metadata.json`;
    const upstream = httpRequest(
      { host: '127.0.0.1', port: stack.local.port, method: req.method, path, headers: req.headers },
      (answer) => {
        if (!hostile) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          doc.client_id = `${base}/oauth/tenants/someone-else/client-metadata.json`;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
        });
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
}

async function asMetadata(server: RunningAuthorizationServer) {
  const res = await fetch(`${server.issuer}/.well-known/openid-configuration`);
  return (await res.json()) as {
    client_id_metadata_document_supported?: boolean;
    token_endpoint_auth_methods_supported?: string[];
  };
}

/** GET over https trusting only the test certificate; the parsed JSON body. */
function getOverTls(url: string): Promise<unknown> {
  return new Promise((ok, fail) => {
    httpsGet(url, { ca: tls.cert }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    }).on('error', fail);
  });
}

async function call(method: string, path: string, who?: string, body?: unknown): Promise<Answer> {
  return stack.call(method, path, {
    ...(who === undefined ? {} : { token: tokens[who] }),
    ...(body === undefined ? {} : { body }),
  });
}

async function seedTenant(key: string, mcpUrl = mcp.url): Promise<TenantRecord> {
  const now = new Date().toISOString();
  const tenant = await stack.local.services.store.createTenant({
    tenant_id: uid(key),
    name: `Tenant ${key}`,
    dispatch_policy: 'per_room',
    agent_names: ['voice-agent'],
    status: 'active',
    webhook_dispatch: false,
    sip_trunk_ids: [],
    mcp_servers: [
      { name: 'notes', display_name: 'Notes', url: mcpUrl, webhook: false, auth: { type: 'oauth' } },
    ],
    oauth_return_urls: [returnTo.url],
    version: 0,
    created_at: now,
    updated_at: now,
  });
  const { store, secretBox } = stack.local.services;
  const user = await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: uid(`u-${key}`) });
  users[key] = user.user_id;
  tokens[key] = await stack.token({ user: user.user_id, tenant: tenant.tenant_id });
  tokens[`admin-${key}`] = await stack.token({ user: 'ops', tenant: tenant.tenant_id, admin: true });
  tenants[key] = tenant;
  return tenant;
}

async function authorizationUrl(who: string): Promise<string> {
  const started = await call('POST', '/v1/connections/notes/authorize', who, { return_to: returnTo.url });
  expect(started.status).toBe(201);
  return started.json.authorization_url as string;
}

async function callTool(url: string, authorization: string): Promise<string> {
  const client = new Client({ name: 'cimd-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization } } }),
  );
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  tls = makeCertificate(['localhost']);
  let issuer = '';
  mcp = await startProtectedMcpServer({ issuer: () => issuer });
  returnTo = await startCallbackCatcher();
  // Documents are re-fetched on every use (cache 0 s): a document changed mid-flow is seen.
  as = await startAuthorizationServer({
    resources: () => [mcp.url],
    clientIdMetadataDocument: { ca: tls.cert, cacheSeconds: 0 },
    // Less than MCP_TOKEN_MIN_TTL_SECONDS (300): every use refreshes, so refresh runs as CIMD too.
    accessTokenTtlSeconds: 120,
  });
  issuer = as.issuer;
  as.provider.on('grant.success', (ctx) => {
    const client = ctx.oidc.client;
    grants.push({
      clientId: client?.clientId ?? '',
      method: client?.clientAuthMethod ?? '',
      grantType: String((ctx.oidc.params as Record<string, unknown>).grant_type),
    });
  });
  as.provider.on('grant.error', (ctx, error) => {
    grantErrors.push({
      clientId: ctx.oidc?.client?.clientId,
      error: (error as { error?: string }).error ?? '',
    });
  });
  let noKeyJwtIssuer = '';
  noKeyJwtMcp = await startProtectedMcpServer({ issuer: () => noKeyJwtIssuer });
  noKeyJwtAs = await startAuthorizationServer({
    resources: () => [noKeyJwtMcp.url],
    clientAuthMethods: ['none', 'client_secret_basic'],
    clientIdMetadataDocument: { ca: tls.cert, cacheSeconds: 0 },
  });
  noKeyJwtIssuer = noKeyJwtAs.issuer;
  await startFront();
  stack = await startLocalStack({ ALLOW_INSECURE_MCP_URLS: 'true', PUBLIC_BASE_URL: base });
  for (const key of ['acme', 'evil', 'mid']) await seedTenant(key);
  await seedTenant('pub', noKeyJwtMcp.url);
  // Chromium trusts exactly this certificate (its public key's SPKI hash) for our https callback.
  const spki = new X509Certificate(tls.cert).publicKey.export({ type: 'spki', format: 'der' });
  browser = await launchBrowser([
    `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`,
  ]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([
    stack?.stop(),
    as?.stop(),
    mcp?.stop(),
    noKeyJwtAs?.stop(),
    noKeyJwtMcp?.stop(),
    returnTo?.stop(),
    new Promise<void>((r) => (front ? front.close(() => r()) : r())),
  ]);
});

describe('CIMD: the product over https, a real authorization server that resolves its document', () => {
  it('the AS advertises CIMD; the dry run picks cimd; the document names its own URL over https', async () => {
    const metadata = await asMetadata(as);
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.token_endpoint_auth_methods_supported).toContain('private_key_jwt');

    const tenant = tenants.acme!;
    const dry = await call(
      'POST',
      `/v1/admin/tenants/${tenant.tenant_id}/servers/notes/discover`,
      'admin-acme',
    );
    expect(dry.status).toBe(200);
    expect(dry.json.registration).toBe('cimd');

    // At its own URL, through the TLS front, as the AS fetches it.
    const doc = await getOverTls(docUrl(tenant.tenant_id));
    expect(doc).toEqual({
      client_id: docUrl(tenant.tenant_id),
      client_name: tenant.name,
      redirect_uris: [`${base}/v1/oauth/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: `${base}/oauth/jwks.json`,
    });
  });

  it('authorize → consent (chromium) → https callback → complete: the AS saw our document URL and verified our private_key_jwt', async () => {
    const url = new URL(await authorizationUrl('acme'));
    const client = docUrl(tenants.acme!.tenant_id);
    expect(url.origin).toBe(as.issuer);
    expect(url.searchParams.get('client_id')).toBe(client);
    expect(url.searchParams.get('redirect_uri')).toBe(`${base}/v1/oauth/callback`);

    const query = await consentInBrowser(browser, url.href, returnTo);
    expect(query.get('error')).toBeNull();
    const done = await call('POST', '/v1/connections/notes/complete', 'acme', {
      result: query.get('result'),
    });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ server: 'notes', auth: 'oauth', status: 'connected' });

    // The AS fetched the document from its URL and our JWKS (over TLS, trusting only the test CA).
    expect(as.fetched).toContain(client);
    expect(as.fetched).toContain(`${base}/oauth/jwks.json`);
    // The code exchange: the CIMD client, authenticated by private_key_jwt.
    expect(grants).toContainEqual({
      clientId: client,
      method: 'private_key_jwt',
      grantType: 'authorization_code',
    });
    // The grant is recorded under the CIMD client: the document URL is its client_id.
    const record = await connections().getConnection(tenants.acme!.tenant_id, users.acme!, 'notes');
    expect(record).toMatchObject({ auth: 'oauth', issuer: as.issuer, client_id: client, resource: mcp.url });
  });

  it('a session refreshes (private_key_jwt), seals the access token; the MCP server accepts it for that user', async () => {
    const refreshes = grants.filter((g) => g.grantType === 'refresh_token').length;
    const session = await call('POST', '/v1/sessions', 'acme', {});
    expect(session.status).toBe(201);
    expect(session.json.mcp_servers).toEqual([{ name: 'notes', status: 'ready' }]);
    const dispatch = stack.livekit.dispatches.find((d) => d.room === session.json.room_name);
    expect(dispatch).toBeDefined();
    const opened = await openDispatchMetadata(dispatch!.metadata, {
      keyring: JSON.parse(readFileSync(join(stack.dataDir, 'keys.json'), 'utf8')).dispatch,
      agentName: dispatch!.agentName,
      roomName: dispatch!.room,
    });
    const notes = opened.mcpServers.find((s) => s.url === mcp.url);
    const authorization = notes?.headers.Authorization ?? '';
    expect(decodeJwt(authorization.replace(/^Bearer /, ''))).toMatchObject({
      sub: 'user-alice',
      aud: mcp.url,
      iss: as.issuer,
      client_id: docUrl(tenants.acme!.tenant_id),
    });
    const before = mcp.requests.length;
    expect(await callTool(mcp.url, authorization)).toBe('user-alice');
    expect(mcp.requests.slice(before).every((r) => r.token === 'accepted')).toBe(true);
    const client = docUrl(tenants.acme!.tenant_id);
    const refreshed = grants.filter((g) => g.grantType === 'refresh_token');
    expect(refreshed.length).toBe(refreshes + 1);
    expect(refreshed.at(-1)).toEqual({
      clientId: client,
      method: 'private_key_jwt',
      grantType: 'refresh_token',
    });
  });

  it('DELETE revokes the grant at the AS, authenticated as the CIMD client', async () => {
    const tenantId = tenants.acme!.tenant_id;
    const record = await connections().getConnection(tenantId, users.acme!, 'notes');
    const refresh = await stack.local.services.secretBox.open(record!.refresh_token_sealed!, {
      tenantId,
      userId: users.acme!,
      field: 'conn:notes:refresh_token',
    });
    expect(await as.provider.RefreshToken.find(refresh)).toBeDefined();
    const revoked: string[] = [];
    const listener = (ctx: { oidc: { client?: { clientId: string; clientAuthMethod: string } } }) =>
      revoked.push(`${ctx.oidc.client?.clientId} ${ctx.oidc.client?.clientAuthMethod}`);
    // oidc-provider emits `grant.revoked` (its typings omit it) with the authenticated client.
    const events = as.provider as unknown as EventEmitter;
    events.on('grant.revoked', listener);
    try {
      expect((await call('DELETE', '/v1/connections/notes', 'acme')).status).toBe(204);
    } finally {
      events.off('grant.revoked', listener);
    }
    expect(revoked).toEqual([`${docUrl(tenantId)} private_key_jwt`]);
    expect(await as.provider.RefreshToken.find(refresh)).toBeUndefined();
    expect(await connections().getConnection(tenantId, users.acme!, 'notes')).toBeUndefined();
  });
});

describe('CIMD: a document whose client_id is not its URL', () => {
  it('from the start: the AS refuses the authorization request (invalid_client); nothing reaches our callback or store', async () => {
    tampered = tenants.evil!.tenant_id;
    try {
      const url = await authorizationUrl('evil');
      const callbacks = returnTo.received.length;
      const res = await fetch(url, { redirect: 'manual' });
      const text = await res.text();
      expect(res.status).toBe(400);
      expect(text).toContain('client_id metadata document client_id does not match the expected value');
      expect(res.headers.get('location')).toBeNull();
      expect(as.fetched).toContain(docUrl(tenants.evil!.tenant_id));
      expect(returnTo.received.length).toBe(callbacks);
      expect(
        await connections().getConnection(tenants.evil!.tenant_id, users.evil!, 'notes'),
      ).toBeUndefined();
      expect((await call('GET', '/v1/connections/notes', 'evil')).json.status).toBe('pending');
    } finally {
      tampered = '';
    }
  });

  it('changed after consent: the token request is refused, return_to gets token_exchange_failed, nothing stored', async () => {
    const url = await authorizationUrl('mid');
    tamperAtCallback = true;
    let query: URLSearchParams;
    try {
      query = await consentInBrowser(browser, url, returnTo);
    } finally {
      tamperAtCallback = false;
      tampered = '';
    }
    expect(query.get('error')).toBe('token_exchange_failed');
    expect(query.get('result')).toBeNull();
    // oidc-provider refuses the client it re-resolved: the document's client_id is not its URL.
    expect(grantErrors).toContainEqual({ clientId: undefined, error: 'invalid_client_metadata' });
    expect(grants.some((g) => g.clientId === docUrl(tenants.mid!.tenant_id))).toBe(false);
    expect(await connections().getConnection(tenants.mid!.tenant_id, users.mid!, 'notes')).toBeUndefined();
    // The refused exchange ended the authorization: nothing is connected, nothing pending.
    expect((await call('GET', '/v1/connections/notes', 'mid')).json.status).toBe('not_connected');
    const reused = await call('POST', '/v1/connections/notes/complete', 'mid', { result: 'x'.repeat(43) });
    expect([reused.status, reused.json.code]).toEqual([410, 'result_expired']);
  });
});
