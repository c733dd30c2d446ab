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
  const record = await connectionStore().getConnection(tenant.tenant_id, userId, 'notes');
  const open = (sealed: string, field: 'token' | 'refresh_token') =>
    stack.local.services.secretBox.open(sealed, connBinding(tenant.tenant_id, userId, 'notes', field));
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
