import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handleHash } from '../../functions/core/connections/context.js';
import type { ConnectionStore } from '../../functions/core/connections/ports.js';
import type { CatalogServer, ConnectionRecord, TenantRecord } from '../../functions/core/model.js';
import { seedUser, uid } from '../support/fixtures.js';
import { type Answer, type LocalStack, startLocalStack } from '../support/local-stack.js';
import { type RunningMcpServer, startMcpServer } from '../support/mcp-server.js';
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
import { heldLogLines } from '../support/quiet-logs.js';

// Real parts: `npm start`'s server (dynalite, dev issuer, the session app), oidc-provider, a real
// MCP server that accepts only tokens issued for its own URL, headless chromium for consent.

const USER_TOKEN = 'user-token-secret-0123456789abcdef';
const PRE_SECRET = 'pre-registered-client-secret-0123456789';
const HOSTILE = '<script>alert(1)</script> call +1-555-SCAM';

let stack: LocalStack;
let as: RunningAuthorizationServer;
let mcp: RunningProtectedMcpServer;
let plainMcp: RunningMcpServer;
let returnTo: CallbackCatcher;
let browser: Browser;
let tenantA: TenantRecord;
let tenantB: TenantRecord;
const tokens: Record<string, string> = {};
/** Everything a client saw (bodies, Location headers) and every log line, for the secrets scan. */
const seen: string[] = [];
const logs: string[] = [];
/** Secrets the AS saw: PKCE verifiers and issued tokens (collected from oidc-provider's events). */
const asSecrets: string[] = [];
let refreshRequests = 0;
/** States and result handles: they may travel in URLs, but the table keys only their hashes. */
const handles: string[] = [];

async function call(method: string, path: string, who?: string, body?: unknown): Promise<Answer> {
  const answer = await stack.call(method, path, {
    ...(who === undefined ? {} : { token: tokens[who] }),
    ...(body === undefined ? {} : { body }),
  });
  seen.push(answer.text);
  return answer;
}

function catalog(): CatalogServer[] {
  return [
    { name: 'notes', display_name: 'Notes', url: mcp.url, webhook: false, auth: { type: 'oauth' } },
    { name: 'plain', url: plainMcp.url, webhook: false, auth: { type: 'user_token' } },
  ];
}

async function seedTenant(id: string): Promise<TenantRecord> {
  const now = new Date().toISOString();
  return stack.local.services.store.createTenant({
    tenant_id: id,
    name: `Tenant ${id}`,
    dispatch_policy: 'per_room',
    agent_names: [],
    status: 'active',
    webhook_dispatch: false,
    sip_trunk_ids: [],
    mcp_servers: catalog(),
    oauth_return_urls: [returnTo.url],
    version: 0,
    created_at: now,
    updated_at: now,
  });
}

const connectionStore = () =>
  (stack.local.services.store as unknown as { connections: ConnectionStore }).connections;

/** authorize → consent in chromium → our callback → return_to; the query return_to got. */
async function consent(who: string, server = 'notes'): Promise<URLSearchParams> {
  const started = await call('POST', `/v1/connections/${server}/authorize`, who, { return_to: returnTo.url });
  expect(started.status).toBe(201);
  return consentInBrowser(browser, started.json.authorization_url, returnTo);
}

/** A fresh authorization's state, without consenting (for hand-made callbacks). */
async function freshState(who: string): Promise<string> {
  const started = await call('POST', '/v1/connections/notes/authorize', who, { return_to: returnTo.url });
  expect(started.status).toBe(201);
  const state = new URL(started.json.authorization_url).searchParams.get('state') as string;
  handles.push(state);
  return state;
}

async function callback(query: Record<string, string>): Promise<Answer & { location: URL | undefined }> {
  const res = await fetch(`${stack.base}/v1/oauth/callback?${new URLSearchParams(query)}`, {
    redirect: 'manual',
  });
  const text = await res.text();
  const location = res.headers.get('location') ?? undefined;
  seen.push(text, location ?? '');
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: undefined,
    location: location === undefined ? undefined : new URL(location),
  };
}

beforeAll(async () => {
  let issuer = '';
  mcp = await startProtectedMcpServer({ issuer: () => issuer });
  plainMcp = await startMcpServer({ users: { [USER_TOKEN]: { userId: 'plain-user', data: {} } } });
  returnTo = await startCallbackCatcher();
  // Access tokens live 120 s, less than MCP_TOKEN_MIN_TTL_SECONDS (300): every use refreshes.
  as = await startAuthorizationServer({ resources: () => [mcp.url], accessTokenTtlSeconds: 120 });
  issuer = as.issuer;
  as.provider.on('grant.success', (ctx) => {
    const params = ctx.oidc.params as Record<string, unknown>;
    if (typeof params.code_verifier === 'string') asSecrets.push(params.code_verifier);
    if (params.grant_type === 'refresh_token') refreshRequests++;
    const body = ctx.body as Record<string, unknown> | undefined;
    for (const k of ['access_token', 'refresh_token'])
      if (typeof body?.[k] === 'string') asSecrets.push(body[k] as string);
  });
  as.provider.on('grant.error', (ctx) => {
    if ((ctx.oidc.params as Record<string, unknown>).grant_type === 'refresh_token') refreshRequests++;
  });
  stack = await startLocalStack({ ALLOW_INSECURE_MCP_URLS: 'true', LOG_LEVEL: 'debug' });
  tenantA = await seedTenant(uid('acme'));
  tenantB = await seedTenant(uid('other'));
  const { store, secretBox } = stack.local.services;
  for (const [who, tenant] of [
    ['alice', tenantA],
    ['bob', tenantA],
    ['dora', tenantA],
    ['carol', tenantB],
  ] as const) {
    const user = await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: uid(who) });
    tokens[who] = await stack.token({ user: user.user_id, tenant: tenant.tenant_id });
  }
  browser = await launchBrowser();
}, 60_000);

afterEach(() => {
  logs.push(...heldLogLines().map((l) => JSON.stringify(l)));
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([stack?.stop(), as?.stop(), mcp?.stop(), plainMcp?.stop(), returnTo?.stop()]);
});

describe('connections: the browser flow end to end', () => {
  let aliceResult = '';

  it('lists every catalog server as not connected at first', async () => {
    const list = await call('GET', '/v1/connections', 'alice');
    expect(list.status).toBe(200);
    expect(list.json.items.map((i: { server: string; status: string }) => [i.server, i.status])).toEqual([
      ['notes', 'not_connected'],
      ['plain', 'not_connected'],
    ]);
    expect((await call('GET', '/v1/connections/nope', 'alice')).json.code).toBe('server_not_found');
  });

  it('authorize → consent → callback → return_to carries only a one-time result handle', async () => {
    const query = await consent('alice');
    expect(query.get('server')).toBe('notes');
    expect(query.get('error')).toBeNull();
    aliceResult = query.get('result') as string;
    handles.push(aliceResult);
    expect(aliceResult).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Pending until completed: the callback stores nothing as a connection.
    expect((await call('GET', '/v1/connections/notes', 'alice')).json.status).toBe('pending');
  });

  it('another user of the tenant cannot complete it: 403, audited, nothing stored', async () => {
    const stolen = await call('POST', '/v1/connections/notes/complete', 'bob', { result: aliceResult });
    expect(stolen.status).toBe(403);
    expect(stolen.json.code).toBe('oauth_user_mismatch');
    expect((await call('GET', '/v1/connections/notes', 'bob')).json.status).toBe('not_connected');
    const audit = await stack.local.services.store.listAudit(tenantA.tenant_id);
    expect(audit.items.some((a) => a.changed_fields.includes('oauth_user_mismatch'))).toBe(true);
  });

  it('the user who started completes it once; the token works at the MCP server via /test', async () => {
    const done = await call('POST', '/v1/connections/notes/complete', 'alice', { result: aliceResult });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ server: 'notes', auth: 'oauth', status: 'connected' });
    expect(done.json.authorization_host).toBe(new URL(as.issuer).host);
    const again = await call('POST', '/v1/connections/notes/complete', 'alice', { result: aliceResult });
    expect(again.status).toBe(410);
    expect(again.json.code).toBe('result_expired');

    const before = mcp.accepted.length;
    const test = await call('POST', '/v1/connections/notes/test', 'alice');
    expect(test.status).toBe(200);
    expect(test.json).toEqual({ ok: true, tools: 1 });
    expect(mcp.accepted.length).toBeGreaterThan(before);
  });

  it('a second user of the tenant gets their own connection; another tenant’s user none', async () => {
    expect((await call('POST', '/v1/connections/notes/test', 'bob')).json).toEqual({
      ok: false,
      code: 'not_connected',
    });
    const query = await consent('bob');
    const done = await call('POST', '/v1/connections/notes/complete', 'bob', { result: query.get('result') });
    expect(done.status).toBe(200);
    const store = connectionStore();
    const [a] = await store.listConnections(tenantA.tenant_id, (await aliceUser()).user_id);
    const [b] = await store.listConnections(tenantA.tenant_id, (await bobUser()).user_id);
    expect(a?.token_sealed).toBeDefined();
    expect(b?.token_sealed).not.toBe(a?.token_sealed);
    expect((await call('POST', '/v1/connections/notes/test', 'bob')).json.ok).toBe(true);
    expect((await call('GET', '/v1/connections/notes', 'carol')).json.status).toBe('not_connected');
    expect((await call('POST', '/v1/connections/notes/test', 'carol')).json).toEqual({
      ok: false,
      code: 'not_connected',
    });
  });
});

async function aliceUser() {
  return userOf('alice');
}
async function bobUser() {
  return userOf('bob');
}
async function userOf(who: string) {
  const payload = JSON.parse(
    Buffer.from((tokens[who] as string).split('.')[1] as string, 'base64url').toString(),
  );
  return { user_id: payload.sub as string };
}

describe('connections: hostile callbacks and inputs', () => {
  it('return_to not in oauth_return_urls: 422, nothing started', async () => {
    const r = await call('POST', '/v1/connections/notes/authorize', 'alice', {
      return_to: 'https://evil.example/cb',
    });
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('return_to_not_allowed');
  });

  it('authorize on a user_token server, PUT on an oauth server: 409 wrong_auth_type', async () => {
    const a = await call('POST', '/v1/connections/plain/authorize', 'alice', { return_to: returnTo.url });
    expect([a.status, a.json.code]).toEqual([409, 'wrong_auth_type']);
    const p = await call('PUT', '/v1/connections/notes', 'alice', { token: 'x' });
    expect([p.status, p.json.code]).toEqual([409, 'wrong_auth_type']);
  });

  it('an unknown state gets the 400 page; no redirect', async () => {
    const r = await callback({ state: 'never-issued', code: 'x' });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(r.location).toBeUndefined();
  });

  it('access_denied with a hostile error_description: our code only in the URL', async () => {
    const state = await freshState('alice');
    const r = await callback({ state, error: 'access_denied', error_description: HOSTILE, iss: as.issuer });
    expect(r.status).toBe(303);
    expect(r.location?.searchParams.get('error')).toBe('access_denied');
    expect(r.location?.href).not.toContain('script');
    expect(decodeURIComponent(r.location?.href ?? '')).not.toContain('SCAM');
    // The state was used: replaying it is state_expired.
    const replay = await callback({ state, error: 'access_denied', iss: as.issuer });
    expect(replay.location?.searchParams.get('error')).toBe('state_expired');
  });

  it('a refused callback ends the pending authorization: not_connected again, not pending', async () => {
    // Prepare
    const state = await freshState('dora');
    const before = await call('GET', '/v1/connections/notes', 'dora');
    expect(before.json.status).toBe('pending');
    // Act
    const r = await callback({ state, error: 'access_denied', iss: as.issuer });
    // Assess
    expect(r.location?.searchParams.get('error')).toBe('access_denied');
    const after = await call('GET', '/v1/connections/notes', 'dora');
    expect([after.status, after.json.status]).toEqual([200, 'not_connected']);
  });

  it('iss mismatch and iss missing (advertised): issuer_mismatch, no token request', async () => {
    for (const iss of ['http://evil.example', undefined]) {
      const state = await freshState('alice');
      const grants = asSecrets.length;
      const r = await callback({ state, code: 'some-code', ...(iss === undefined ? {} : { iss }) });
      expect(r.status).toBe(303);
      expect(r.location?.searchParams.get('error')).toBe('issuer_mismatch');
      expect(asSecrets.length).toBe(grants);
      // It acted on nothing: the state is still the user's pending authorization.
      const pending = await connectionStore().getOneTime('state', handleHash(state));
      expect(pending?.used).toBe(false);
    }
  });

  it('a newer authorization replaces the pending one; a replayed real callback is state_expired', async () => {
    const old = await freshState('alice');
    await freshState('alice');
    const r = await callback({ state: old, code: 'x', iss: as.issuer });
    expect(r.location?.searchParams.get('error')).toBe('state_expired');

    // A real consent, then the same callback URL again (code and state reused).
    const started = await call('POST', '/v1/connections/notes/authorize', 'alice', {
      return_to: returnTo.url,
    });
    const query = await consentInBrowser(browser, started.json.authorization_url, returnTo);
    expect(query.get('result')).toBeTruthy();
    const state = new URL(started.json.authorization_url).searchParams.get('state') as string;
    const replay = await callback({ state, code: 'reused', iss: as.issuer });
    expect(replay.location?.searchParams.get('error')).toBe('state_expired');
  });

  it('PUT a user token (write-only), test it, delete it', async () => {
    const put = await call('PUT', '/v1/connections/plain', 'alice', { token: USER_TOKEN });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ status: 'connected', token_set: true });
    expect(put.json.token_fingerprint).toMatch(/^fp_/);
    expect((await call('POST', '/v1/connections/plain/test', 'alice')).json).toEqual({ ok: true, tools: 3 });
    expect((await call('DELETE', '/v1/connections/plain', 'alice')).status).toBe(204);
    expect((await call('GET', '/v1/connections/plain', 'alice')).json.status).toBe('not_connected');
  });

  it('client metadata document and JWKS are public', async () => {
    const doc = await call('GET', `/oauth/tenants/${tenantA.tenant_id}/client-metadata.json`);
    expect(doc.status).toBe(200);
    expect(doc.json).toMatchObject({
      client_name: tenantA.name,
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(doc.json.redirect_uris[0]).toMatch(/\/v1\/oauth\/callback$/);
    const jwks = await call('GET', '/oauth/jwks.json');
    expect(jwks.json.keys).toHaveLength(1);
    expect(jwks.json.keys[0].d).toBeUndefined();
  });
});

describe('connections: refresh', () => {
  it('20 concurrent accessToken() calls: exactly one refresh request, no grant lost', async () => {
    const { connections } = stack.local.services;
    const alice = await aliceUser();
    const record = await connectionStore().getConnection(tenantA.tenant_id, alice.user_id, 'notes');
    expect(record).toBeDefined();
    const server = catalog()[0] as CatalogServer;
    const before = refreshRequests;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        connections.tokenSource.accessToken({ tenant: tenantA, server, connection: record! }),
      ),
    );
    expect(refreshRequests - before).toBe(1);
    const issued = new Set(results.map((r) => (r.status === 'ready' ? r.token : r.status)));
    expect(issued.size).toBe(1);
    expect([...issued][0]).not.toMatch(/^(unavailable|needs_reauth)$/);
    // The rotated refresh token was stored: the grant still refreshes, and the token is accepted.
    const test = await call('POST', '/v1/connections/notes/test', 'alice');
    expect(test.json).toEqual({ ok: true, tools: 1 });
    expect(refreshRequests - before).toBe(2);
  });

  it('invalid_grant marks needs_reauth (rt_version unchanged)', async () => {
    const bob = await bobUser();
    const record = await connectionStore().getConnection(tenantA.tenant_id, bob.user_id, 'notes');
    const refresh = await stack.local.services.secretBox.open(record!.refresh_token_sealed!, {
      tenantId: tenantA.tenant_id,
      userId: bob.user_id,
      field: 'conn:notes:refresh_token',
    });
    const found = await as.provider.RefreshToken.find(refresh);
    await found?.destroy();
    const test = await call('POST', '/v1/connections/notes/test', 'bob');
    expect(test.json).toEqual({ ok: false, code: 'mcp_reauth_required' });
    const view = await call('GET', '/v1/connections/notes', 'bob');
    expect(view.json).toMatchObject({ status: 'needs_reauth', reason: 'invalid_grant' });
  });

  it('a DCR client the authorization server forgot: needs_reauth, the registration dropped, the next consent registers afresh', async () => {
    // Prepare: a tenant of its own (its own DCR client at the AS), a user connected through it
    const tenant = await seedTenant(uid('forgot'));
    const { store, secretBox } = stack.local.services;
    const user = await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: uid('erin') });
    tokens.erin = await stack.token({ user: user.user_id, tenant: tenant.tenant_id });
    const connectOnce = async () => {
      const query = await consent('erin');
      handles.push(query.get('result') as string);
      const done = await call('POST', '/v1/connections/notes/complete', 'erin', {
        result: query.get('result'),
      });
      expect(done.json).toMatchObject({ status: 'connected' });
      return (await connectionStore().getConnection(
        tenant.tenant_id,
        user.user_id,
        'notes',
      )) as ConnectionRecord;
    };
    const first = await connectOnce();
    expect((await connectionStore().getClient(tenant.tenant_id, as.issuer))?.dcr?.client_id).toBe(
      first.client_id,
    );

    // Act: the AS forgets the client (its registrations reset); the next use refreshes
    // oidc-provider's Client model reads dynamic clients from its adapter on every request.
    const clients = as.provider.Client as unknown as { adapter: { destroy(id: string): Promise<void> } };
    await clients.adapter.destroy(first.client_id as string);
    const refused = await call('POST', '/v1/connections/notes/test', 'erin');

    // Assess: the refresh's invalid_client marks the connection and drops the registration
    expect(refused.json).toEqual({ ok: false, code: 'mcp_reauth_required' });
    expect((await call('GET', '/v1/connections/notes', 'erin')).json).toMatchObject({
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
    expect((await connectionStore().getClient(tenant.tenant_id, as.issuer))?.dcr).toBeUndefined();

    // Assess: consenting again registers a new client, and its grant works
    const second = await connectOnce();
    expect(second.client_id).not.toBe(first.client_id);
    expect((await call('POST', '/v1/connections/notes/test', 'erin')).json).toEqual({ ok: true, tools: 1 });
  });

  it('a 403 insufficient_scope: the view names the scopes, and authorize asks for them on top', async () => {
    // Prepare: a grant for notes:read that the MCP server refused for lacking notes:write (§9).
    const { store, secretBox } = stack.local.services;
    const erin = await seedUser(store, secretBox, { tenant_id: tenantA.tenant_id, user_id: uid('erin') });
    tokens.erin = await stack.token({ user: erin.user_id, tenant: tenantA.tenant_id });
    const now = new Date().toISOString();
    const record: ConnectionRecord = {
      tenant_id: tenantA.tenant_id,
      user_id: erin.user_id,
      server: 'notes',
      auth: 'oauth',
      status: 'connected',
      resource: mcp.url,
      issuer: as.issuer,
      client_id: 'client-of-erin',
      scopes: ['notes:read'],
      rt_version: 1,
      version: 1,
      updated_at: now,
    };
    await connectionStore().putConnection(record, null);
    expect(
      await connectionStore().markNeedsReauth(record, 'insufficient_scope', {
        requiredScopes: ['notes:write'],
        now,
      }),
    ).toBe(true);
    // Act
    const view = await call('GET', '/v1/connections/notes', 'erin');
    const started = await call('POST', '/v1/connections/notes/authorize', 'erin', {
      return_to: returnTo.url,
    });
    // Assess
    expect(view.json).toMatchObject({
      status: 'needs_reauth',
      reason: 'insufficient_scope',
      required_scopes: ['notes:write'],
    });
    expect(started.status).toBe(201);
    const scope = new URL(started.json.authorization_url).searchParams.get('scope')?.split(' ') ?? [];
    handles.push(new URL(started.json.authorization_url).searchParams.get('state') as string);
    expect(scope).toEqual(expect.arrayContaining(['notes:read', 'notes:write']));
  });

  it('DELETE revokes the grant at the authorization server', async () => {
    const alice = await aliceUser();
    const record = await connectionStore().getConnection(tenantA.tenant_id, alice.user_id, 'notes');
    const refresh = await stack.local.services.secretBox.open(record!.refresh_token_sealed!, {
      tenantId: tenantA.tenant_id,
      userId: alice.user_id,
      field: 'conn:notes:refresh_token',
    });
    expect(await as.provider.RefreshToken.find(refresh)).toBeDefined();
    expect((await call('DELETE', '/v1/connections/notes', 'alice')).status).toBe(204);
    expect(await as.provider.RefreshToken.find(refresh)).toBeUndefined();
    expect((await call('GET', '/v1/connections/notes', 'alice')).json.status).toBe('not_connected');
  });
});

describe('connections: secrets', () => {
  it('no token, refresh token, client secret or PKCE verifier in the table, responses, URLs or logs', async () => {
    const secrets = [...asSecrets, USER_TOKEN, PRE_SECRET].filter((s) => s.length >= 16);
    expect(asSecrets.length).toBeGreaterThan(6);
    const table = JSON.stringify(await dynamoScan());
    const urls = returnTo.received.map((q) => q.toString());
    const haystacks = { table, responses: seen.join('\n'), urls: urls.join('\n'), logs: logs.join('\n') };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) expect(text.includes(secret), `${where} holds a secret`).toBe(false);
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(handles.length).toBeGreaterThan(4);
    for (const handle of handles)
      expect(table.includes(handle), 'the table holds a state or handle').toBe(false);
  });
});

async function dynamoScan(): Promise<unknown[]> {
  const { ScanCommand } = await import('@aws-sdk/lib-dynamodb');
  const { createDynamoClient } = await import('../../functions/adapters/dynamo.js');
  const client = createDynamoClient({ endpoint: stack.local.services.config.dynamodbEndpoint });
  const items: unknown[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: stack.local.services.config.tableName,
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  client.destroy();
  return items;
}
