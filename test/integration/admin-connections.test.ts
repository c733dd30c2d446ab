import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connBinding } from '../../functions/core/connections/context.js';
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

// Real parts: `npm start`'s server (dynalite, dev issuer, admin and session apps), oidc-provider,
// a real MCP server that accepts only tokens issued for its own URL, headless chromium for consent.

const USER_TOKEN = 'admin-conn-user-token-0123456789abcdef';

let stack: LocalStack;
let as: RunningAuthorizationServer;
let mcp: RunningProtectedMcpServer;
let returnTo: CallbackCatcher;
let browser: Browser;
let tenant: TenantRecord;
let other: TenantRecord;
const ids: Record<string, string> = {};
/** The tenant of a user seeded outside `tenant` (by {@link seedMember}). */
const homes: Record<string, string> = {};
const tokens: Record<string, string> = {};
/** Every body an admin got, for the secrets scan. */
const adminSeen: string[] = [];

async function call(method: string, path: string, who?: string, body?: unknown): Promise<Answer> {
  const answer = await stack.call(method, path, {
    ...(who === undefined ? {} : { token: tokens[who] }),
    ...(body === undefined ? {} : { body }),
  });
  if (who?.startsWith('admin')) adminSeen.push(answer.text);
  return answer;
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
    mcp_servers: [
      { name: 'notes', url: mcp.url, webhook: false, auth: { type: 'oauth' } },
      { name: 'plain', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'user_token' } },
      { name: 'open', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'none' } },
      { name: 'dead', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'oauth' } },
    ],
    oauth_return_urls: [returnTo.url],
    version: 0,
    created_at: now,
    updated_at: now,
  });
}

const connectionStore = () =>
  (stack.local.services.store as unknown as { connections: ConnectionStore }).connections;

/** The user's real grant: authorize → consent in chromium → callback → complete. */
async function connect(who: string): Promise<void> {
  const started = await call('POST', '/v1/connections/notes/authorize', who, { return_to: returnTo.url });
  expect(started.status).toBe(201);
  const query = await consentInBrowser(browser, started.json.authorization_url, returnTo);
  const done = await call('POST', '/v1/connections/notes/complete', who, { result: query.get('result') });
  expect(done.json).toMatchObject({ status: 'connected' });
}

/** The user's stored refresh and access tokens, opened (to ask the AS about them and to scan for them). */
async function grantOf(who: string): Promise<{ refresh: string; access: string }> {
  const userId = ids[who] as string;
  const tenantId = homes[who] ?? tenant.tenant_id;
  const record = await connectionStore().getConnection(tenantId, userId, 'notes');
  const open = (sealed: string, field: 'token' | 'refresh_token') =>
    stack.local.services.secretBox.open(sealed, connBinding(tenantId, userId, 'notes', field));
  return {
    refresh: await open(record!.refresh_token_sealed!, 'refresh_token'),
    access: await open(record!.token_sealed!, 'token'),
  };
}

const userConnections = (who: string, tenantId = tenant.tenant_id) =>
  `/v1/admin/tenants/${tenantId}/users/${encodeURIComponent(ids[who] ?? 'nobody')}/connections`;

beforeAll(async () => {
  let issuer = '';
  mcp = await startProtectedMcpServer({ issuer: () => issuer });
  returnTo = await startCallbackCatcher();
  as = await startAuthorizationServer({ resources: () => [mcp.url] });
  issuer = as.issuer;
  stack = await startLocalStack({ ALLOW_INSECURE_MCP_URLS: 'true' });
  tenant = await seedTenant(uid('acme'));
  other = await seedTenant(uid('other'));
  const { store, secretBox } = stack.local.services;
  for (const who of ['alice', 'bob']) {
    ids[who] = uid(who);
    await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: ids[who] as string });
    tokens[who] = await stack.token({ user: ids[who] as string, tenant: tenant.tenant_id });
  }
  tokens.admin = await stack.token({ user: 'ops', tenant: tenant.tenant_id, admin: true });
  tokens.adminOther = await stack.token({ user: 'ops2', tenant: other.tenant_id, admin: true });
  tokens.adminSuper = await stack.token({ user: 'root', superadmin: true });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([stack?.stop(), as?.stop(), mcp?.stop(), returnTo?.stop()]);
});

describe('admin: a user’s connections', () => {
  it('lists the user’s connections with status, issuer and scopes, never a token', async () => {
    await connect('alice');
    expect((await call('PUT', '/v1/connections/plain', 'alice', { token: USER_TOKEN })).status).toBe(200);
    const list = await call('GET', userConnections('alice'), 'admin');
    expect(list.status).toBe(200);
    const items = list.json.items as Record<string, unknown>[];
    expect(items.map((i) => i.server).sort()).toEqual(['notes', 'plain']);
    const notes = items.find((i) => i.server === 'notes');
    expect(notes).toMatchObject({ auth: 'oauth', status: 'connected', issuer: as.issuer });
    expect(notes?.connected_at).toEqual(expect.any(String));
    expect(items.find((i) => i.server === 'plain')).toMatchObject({
      auth: 'user_token',
      status: 'connected',
    });
    // Bob has none yet; a superadmin sees the same.
    expect((await call('GET', userConnections('bob'), 'adminSuper')).json).toEqual({ items: [] });

    const { refresh, access } = await grantOf('alice');
    for (const body of adminSeen) {
      for (const secret of [refresh, access, USER_TOKEN]) expect(body).not.toContain(secret);
      expect(body).not.toMatch(/sealed/);
    }
  });

  it('401 without a token, 403 for an app user, 404 for another tenant’s path or a missing user', async () => {
    expect((await call('GET', userConnections('alice'))).status).toBe(401);
    expect((await call('GET', userConnections('alice'), 'alice')).status).toBe(403);
    const foreign = await call('GET', userConnections('alice'), 'adminOther');
    expect(foreign.status).toBe(404);
    expect(foreign.json.code).toBe('tenant_not_found');
    const missing = await call('GET', userConnections('nobody'), 'admin');
    expect(missing.json.code).toBe('user_not_found');
    // Alice's id under the other tenant is another (missing) user.
    const elsewhere = await call('GET', userConnections('alice', other.tenant_id), 'adminOther');
    expect(elsewhere.json.code).toBe('user_not_found');
    const foreignDelete = await call('DELETE', `${userConnections('alice')}/notes`, 'adminOther');
    expect(foreignDelete.status).toBe(404);
    expect(
      await connectionStore().getConnection(tenant.tenant_id, ids.alice as string, 'notes'),
    ).toBeDefined();
  });

  it('DELETE revokes the grant at the authorization server, audited; refusals write nothing', async () => {
    expect((await call('DELETE', `${userConnections('alice')}/nope`, 'admin')).json.code).toBe(
      'server_not_found',
    );
    expect((await call('DELETE', `${userConnections('alice')}/open`, 'admin')).json.code).toBe(
      'wrong_auth_type',
    );
    expect((await call('DELETE', `${userConnections('nobody')}/notes`, 'admin')).json.code).toBe(
      'user_not_found',
    );
    const { refresh } = await grantOf('alice');
    expect(await as.provider.RefreshToken.find(refresh)).toBeDefined();

    const deleted = await call('DELETE', `${userConnections('alice')}/notes`, 'admin');
    expect(deleted.status).toBe(204);
    expect(await as.provider.RefreshToken.find(refresh)).toBeUndefined();
    expect((await call('GET', '/v1/connections/notes', 'alice')).json.status).toBe('not_connected');
    const items = (await call('GET', userConnections('alice'), 'admin')).json.items as { server: string }[];
    expect(items.map((i) => i.server)).toEqual(['plain']);
    const audit = await stack.local.services.store.listAudit(tenant.tenant_id);
    expect(
      audit.items.some(
        (a) => a.action === 'delete' && a.actor === 'ops' && a.target.endsWith('/connections/notes'),
      ),
    ).toBe(true);
    // Already gone: still 204.
    expect((await call('DELETE', `${userConnections('alice')}/notes`, 'admin')).status).toBe(204);
  });

  it('deleting a user revokes their grants and removes their connections', async () => {
    await connect('bob');
    expect((await call('PUT', '/v1/connections/plain', 'bob', { token: USER_TOKEN })).status).toBe(200);
    const { refresh } = await grantOf('bob');
    expect(await as.provider.RefreshToken.find(refresh)).toBeDefined();
    const path = `/v1/admin/tenants/${tenant.tenant_id}/users/${encodeURIComponent(ids.bob as string)}`;
    expect((await call('DELETE', path, 'admin')).status).toBe(204);
    expect(await as.provider.RefreshToken.find(refresh)).toBeUndefined();
    expect(await connectionStore().listConnections(tenant.tenant_id, ids.bob as string)).toEqual([]);
    expect((await call('DELETE', path, 'admin')).status).toBe(404);
  });
});

/** A user `who` of tenant `tenantId` with an app token, and an admin token `admin:<tenantId>`. */
async function seedMember(tenantId: string, who: string): Promise<void> {
  const { store, secretBox } = stack.local.services;
  ids[who] = uid(who);
  homes[who] = tenantId;
  await seedUser(store, secretBox, { tenant_id: tenantId, user_id: ids[who] as string });
  tokens[who] = await stack.token({ user: ids[who] as string, tenant: tenantId });
  tokens[`admin:${tenantId}`] ??= await stack.token({ user: 'ops', tenant: tenantId, admin: true });
}

describe('admin: the tenant’s connections across users', () => {
  it('lists them by status, a page at a time, with whose each is; never a token', async () => {
    const t = await seedTenant(uid('wide'));
    await seedMember(t.tenant_id, 'carol');
    await seedMember(t.tenant_id, 'dave');
    await connect('carol');
    expect((await call('PUT', '/v1/connections/plain', 'carol', { token: USER_TOKEN })).status).toBe(200);
    expect((await call('PUT', '/v1/connections/plain', 'dave', { token: USER_TOKEN })).status).toBe(200);
    const daves = await connectionStore().getConnection(t.tenant_id, ids.dave as string, 'plain');
    expect(
      await connectionStore().markNeedsReauth(daves!, 'expired', { now: new Date().toISOString() }),
    ).toBe(true);
    const admin = `admin:${t.tenant_id}`;
    const path = `/v1/admin/tenants/${t.tenant_id}/connections`;

    const all = await call('GET', path, admin);
    expect(all.status).toBe(200);
    const pairs = (all.json.items as { user_id: string; server: string; status: string }[]).map(
      (i) => `${i.status}:${i.user_id === ids.carol ? 'carol' : 'dave'}:${i.server}`,
    );
    expect(pairs.sort()).toEqual([
      'connected:carol:notes',
      'connected:carol:plain',
      'needs_reauth:dave:plain',
    ]);
    expect(all.json.next_cursor).toBeNull();

    const reauth = await call('GET', `${path}?status=needs_reauth`, admin);
    expect(reauth.json.items).toEqual([
      expect.objectContaining({ user_id: ids.dave, server: 'plain', auth: 'user_token', reason: 'expired' }),
    ]);
    expect(reauth.json.next_cursor).toBeNull();

    // A page at a time: the cursor continues the same list, and only that one.
    const first = await call('GET', `${path}?status=connected&limit=1`, admin);
    expect(first.json.items).toHaveLength(1);
    const cursor = first.json.next_cursor as string;
    expect(cursor).toEqual(expect.any(String));
    const second = await call('GET', `${path}?status=connected&limit=1&cursor=${cursor}`, admin);
    expect(
      [...first.json.items, ...second.json.items].map((i: { server: string }) => i.server).sort(),
    ).toEqual(['notes', 'plain']);
    const replayed = await call('GET', `${path}?status=needs_reauth&cursor=${cursor}`, admin);
    expect([replayed.status, replayed.json.code]).toEqual([422, 'invalid_request']);

    const bad = await call('GET', `${path}?status=bogus`, admin);
    expect([bad.status, bad.json.code]).toEqual([422, 'invalid_request']);
    expect((await call('GET', path, 'adminOther')).status).toBe(404);
    expect((await call('GET', path, 'carol')).status).toBe(403);
    const missing = await call('GET', `/v1/admin/tenants/${uid('gone')}/connections`, 'adminSuper');
    expect([missing.status, missing.json.code]).toEqual([404, 'tenant_not_found']);

    const { refresh, access } = await grantOf('carol');
    for (const body of [all.text, reauth.text, first.text, second.text]) {
      for (const secret of [refresh, access, USER_TOKEN]) expect(body).not.toContain(secret);
      expect(body).not.toMatch(/sealed/);
    }
  });
});

describe('admin: a catalog entry or a tenant that goes takes its grants along', () => {
  it('removing a catalog entry deletes its users’ connections and revokes their grants', async () => {
    const t = await seedTenant(uid('shrink'));
    await seedMember(t.tenant_id, 'erin');
    await connect('erin');
    expect((await call('PUT', '/v1/connections/plain', 'erin', { token: USER_TOKEN })).status).toBe(200);
    const { refresh } = await grantOf('erin');
    expect(await as.provider.RefreshToken.find(refresh)).toBeDefined();

    const put = await stack.call('PUT', `/v1/admin/tenants/${t.tenant_id}`, {
      token: tokens[`admin:${t.tenant_id}`],
      headers: { 'if-match': '"1"' },
      body: {
        name: t.name,
        // `notes` and `dead` are gone; `plain` stays as it was.
        mcp_servers: [
          { name: 'plain', url: 'http://localhost:9/mcp', auth: { type: 'user_token' } },
          { name: 'open', url: 'http://localhost:9/mcp', auth: { type: 'none' } },
        ],
        oauth_return_urls: [returnTo.url],
      },
    });
    expect(put.status).toBe(200);
    expect(await as.provider.RefreshToken.find(refresh)).toBeUndefined();
    const left = await connectionStore().listConnections(t.tenant_id, ids.erin as string);
    expect(left.map((r) => r.server)).toEqual(['plain']);
    expect((await call('GET', '/v1/connections/notes', 'erin')).json.code).toBe('server_not_found');
  });

  it('a catalog entry whose auth type changes drops the credentials of the old type', async () => {
    const t = await seedTenant(uid('retype'));
    await seedMember(t.tenant_id, 'fay');
    expect((await call('PUT', '/v1/connections/plain', 'fay', { token: USER_TOKEN })).status).toBe(200);
    const put = await stack.call('PUT', `/v1/admin/tenants/${t.tenant_id}`, {
      token: tokens[`admin:${t.tenant_id}`],
      headers: { 'if-match': '"1"' },
      body: {
        name: t.name,
        mcp_servers: [{ name: 'plain', url: 'http://localhost:9/mcp', auth: { type: 'oauth' } }],
        oauth_return_urls: [returnTo.url],
      },
    });
    expect(put.status).toBe(200);
    expect(await connectionStore().listConnections(t.tenant_id, ids.fay as string)).toEqual([]);
  });

  it('deleting a tenant revokes every grant, a leftover without its user included', async () => {
    const t = await seedTenant(uid('bye'));
    await seedMember(t.tenant_id, 'gus');
    await seedMember(t.tenant_id, 'hal');
    await connect('gus');
    await connect('hal');
    const gus = await grantOf('gus');
    const hal = await grantOf('hal');
    // Hal's record goes without the admin API (as when a `complete` raced his delete): his
    // connection is left, listed by no user, and the tenant's delete still finds and revokes it.
    const { store } = stack.local.services;
    const halRecord = await store.getUser(t.tenant_id, ids.hal as string);
    await store.deleteUser(t.tenant_id, ids.hal as string, halRecord?.version);

    const deleted = await call('DELETE', `/v1/admin/tenants/${t.tenant_id}?cascade=true`, 'adminSuper');
    expect(deleted.status).toBe(204);
    expect(await as.provider.RefreshToken.find(gus.refresh)).toBeUndefined();
    expect(await as.provider.RefreshToken.find(hal.refresh)).toBeUndefined();
    for (const who of ['gus', 'hal']) {
      expect(await connectionStore().listConnections(t.tenant_id, ids[who] as string)).toEqual([]);
    }
    expect((await connectionStore().listTenantConnections(t.tenant_id, {})).items).toEqual([]);
  });
});

describe('admin: discovery dry run', () => {
  const discover = (tenantId: string, server: string) =>
    `/v1/admin/tenants/${tenantId}/servers/${server}/discover`;

  it('reports the resource, the authorization server and the registration path, writing nothing', async () => {
    const res = await call('POST', discover(other.tenant_id, 'notes'), 'adminOther');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      resource: mcp.url,
      authorization_server: { issuer: as.issuer, code_challenge_methods_supported: ['S256'] },
      registration: 'dcr',
    });
    expect(res.json.authorization_server.token_endpoint).toBe(`${as.issuer.replace(/\/$/, '')}/token`);
    // Nothing recorded: no client for the tenant at that issuer, no audit entry.
    expect(await connectionStore().getClient(other.tenant_id, as.issuer)).toBeUndefined();
    expect((await stack.local.services.store.listAudit(other.tenant_id)).items).toEqual([]);
  });

  it('a pre-registered client is the path; one bound to another issuer is 409 oauth_issuer_mismatch', async () => {
    const { store } = stack.local.services;
    const base = (await store.getTenant(other.tenant_id)) as TenantRecord;
    const withClient = (issuer: string) => ({
      ...base,
      mcp_servers: (base.mcp_servers ?? []).map((s) =>
        s.name === 'notes' ? { ...s, auth: { type: 'oauth' as const, client_id: 'pre', issuer } } : s,
      ),
    });
    await store.updateTenant({ ...withClient(as.issuer), version: base.version + 1 }, base.version);
    expect((await call('POST', discover(other.tenant_id, 'notes'), 'adminOther')).json.registration).toBe(
      'preregistered',
    );
    const current = (await store.getTenant(other.tenant_id)) as TenantRecord;
    await store.updateTenant(
      {
        ...withClient('https://elsewhere.example'),
        mcp_servers: withClient('https://elsewhere.example').mcp_servers,
        version: current.version + 1,
      },
      current.version,
    );
    const mismatch = await call('POST', discover(other.tenant_id, 'notes'), 'adminOther');
    expect(mismatch.status).toBe(409);
    expect(mismatch.json.code).toBe('oauth_issuer_mismatch');
  });

  it('404 server_not_found, 409 wrong_auth_type, 502 oauth_discovery_failed with a reason, 404 for another tenant', async () => {
    expect((await call('POST', discover(tenant.tenant_id, 'nope'), 'admin')).json.code).toBe(
      'server_not_found',
    );
    expect((await call('POST', discover(tenant.tenant_id, 'plain'), 'admin')).json.code).toBe(
      'wrong_auth_type',
    );
    const dead = await call('POST', discover(tenant.tenant_id, 'dead'), 'admin');
    expect(dead.status).toBe(502);
    expect(dead.json.code).toBe('oauth_discovery_failed');
    expect(dead.json.reason).toEqual(expect.any(String));
    expect((await call('POST', discover(tenant.tenant_id, 'notes'), 'adminOther')).status).toBe(404);
    expect((await call('POST', discover(tenant.tenant_id, 'notes'))).status).toBe(401);
  });
});
