import { lookup } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connections } from '../../functions/adapters/dynamo/connections.js';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createSafeFetch } from '../../functions/adapters/safe-fetch.js';
import { type ConnectionDeps, storeNewGrant } from '../../functions/core/connections/context.js';
import type { ConnectionStore } from '../../functions/core/connections/ports.js';
import { createTokenSource } from '../../functions/core/connections/token-source.js';
import { ConditionFailedError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import type { CatalogServer, ConnectionRecord, TenantRecord } from '../../functions/core/model.js';
import { createSecretBox } from '../../functions/core/sealing.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { testKeyring, uid } from '../support/fixtures.js';
import { MemoryConnectionStore } from '../support/memory-store.js';
import { type ScriptedServer, startScriptedServer } from '../support/oauth/scripted-server.js';
import { tenantRecord } from '../support/records.js';

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(() => db?.stop());

const dynamoConnections = () =>
  (new DynamoStore({ client: db.client, tableName: db.tableName }) as unknown as { connections: Connections })
    .connections;

function record(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    tenant_id: 'acme',
    user_id: uid('u'),
    server: 'notes',
    auth: 'oauth',
    status: 'connected',
    resource: 'https://mcp.example.com/mcp',
    issuer: 'https://as.example.com',
    client_id: 'client-1',
    rt_version: 1,
    version: 1,
    updated_at: '2026-12-03T12:00:00Z',
    ...overrides,
  };
}

const refreshed = {
  token_sealed: 'sealed-new',
  token_fingerprint: 'fp_new',
  access_expires_at: 2_000_000_000,
  refresh_token_sealed: 'sealed-rt-new',
  scopes: ['notes:read'],
  refreshed_at: '2026-12-03T12:01:00Z',
};

describe.each([
  ['DynamoDB (dynalite)', dynamoConnections],
  ['the in-memory fake', () => new MemoryConnectionStore()],
] as [string, () => ConnectionStore][])('connection store on %s', (_name, make) => {
  it('puts create-only or over a version, lists strongly consistent, deletes', async () => {
    const store = make();
    const r = record();
    await store.putConnection(r, null);
    await expect(store.putConnection(r, null)).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(store.putConnection({ ...r, version: 3 }, 2)).rejects.toBeInstanceOf(ConditionFailedError);
    await store.putConnection({ ...r, version: 2 }, 1);
    expect((await store.listConnections('acme', r.user_id)).map((c) => c.version)).toEqual([2]);
    expect(await store.listConnections('other', r.user_id)).toEqual([]);
    expect((await store.deleteConnection('acme', r.user_id, 'notes'))?.version).toBe(2);
    expect(await store.getConnection('acme', r.user_id, 'notes')).toBeUndefined();
  });

  it('the refresh lock: one holder; the store needs rt_version = n AND owner = me', async () => {
    const store = make();
    const r = record();
    await store.putConnection(r, null);
    const now = 1_000_000;
    expect(await store.takeRefreshLock(r, { owner: 'a', until: now + 20_000, now })).toBeDefined();
    expect(await store.takeRefreshLock(r, { owner: 'b', until: now + 20_000, now })).toBeUndefined();
    expect(await store.storeRefresh(r, 'b', refreshed)).toBe(false);
    // A lock past its `until` may be taken over; the old holder can then no longer store.
    expect(
      await store.takeRefreshLock(r, { owner: 'b', until: now + 50_000, now: now + 30_000 }),
    ).toBeDefined();
    expect(await store.storeRefresh(r, 'a', refreshed)).toBe(false);
    expect(await store.storeRefresh(r, 'b', refreshed)).toBe(true);
    const after = await store.getConnection('acme', r.user_id, 'notes');
    expect(after).toMatchObject({ rt_version: 2, version: 2, token_sealed: 'sealed-new' });
    expect(after?.refresh_lock).toBeUndefined();
    // invalid_grant for the grant that was sent (rt_version 1) must not mark the new one.
    expect(await store.markNeedsReauth(r, 'invalid_grant', { now: 'x' })).toBe(false);
    expect(await store.takeRefreshLock(r, { owner: 'c', until: now + 20_000, now })).toBeUndefined();
    expect(await store.markNeedsReauth(after!, 'invalid_grant', { now: 'x' })).toBe(true);
    expect(await store.getConnection('acme', r.user_id, 'notes')).toMatchObject({
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
  });

  it('lists a tenant’s connections across users by status, following every status change', async () => {
    const store = make();
    const tenantId = uid('t');
    const a = record({ tenant_id: tenantId, user_id: 'a' });
    const b = record({ tenant_id: tenantId, user_id: 'b', status: 'needs_reauth', reason: 'expired' });
    const c = record({ tenant_id: tenantId, user_id: 'c', server: 'crm', status: 'pending' });
    for (const r of [a, b, c]) await store.putConnection(r, null);
    await store.putConnection(record({ tenant_id: uid('elsewhere'), user_id: 'a' }), null);
    const listed = async (status?: ConnectionRecord['status']) =>
      (await store.listTenantConnections(tenantId, status === undefined ? {} : { status })).items.map(
        (r) => `${r.status}:${r.user_id}:${r.server}`,
      );
    expect(await listed()).toEqual(['connected:a:notes', 'needs_reauth:b:notes', 'pending:c:crm']);
    expect(await listed('needs_reauth')).toEqual(['needs_reauth:b:notes']);
    // A status written by an update moves the item in the list.
    expect(await store.markNeedsReauth(a, 'invalid_grant', { now: 'x' })).toBe(true);
    expect(await listed('needs_reauth')).toEqual(['needs_reauth:a:notes', 'needs_reauth:b:notes']);
    const now = 1_000_000;
    const locked = await store.takeRefreshLock(b, { owner: 'o', until: now + 1_000, now });
    expect(locked).toBeDefined();
    expect(await store.storeRefresh(b, 'o', refreshed)).toBe(true);
    expect(await listed('connected')).toEqual(['connected:b:notes']);
    // A page at a time.
    const first = await store.listTenantConnections(tenantId, {}, { limit: 2 });
    expect(first.items).toHaveLength(2);
    const rest = await store.listTenantConnections(tenantId, {}, { limit: 2, cursor: first.cursor });
    expect([...first.items, ...rest.items].map((r) => r.user_id).sort()).toEqual(['a', 'b', 'c']);
    await store.deleteConnection(tenantId, 'c', 'crm');
    expect(await listed('pending')).toEqual([]);
  });

  it('one-time items are used once, while unexpired, by their user only', async () => {
    const store = make();
    const hash = uid('h');
    const item = {
      tenant_id: 'acme',
      user_id: 'alice',
      server: 'notes',
      expires_at: 5_000,
      used: false,
      sealed: 's',
    };
    await store.putOneTime('result', hash, item, 60);
    await expect(store.putOneTime('result', hash, item, 60)).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await store.takeOneTime('result', hash, { now: 1_000, userId: 'bob' })).toBe(false);
    expect(await store.takeOneTime('result', hash, { now: 6_000 })).toBe(false);
    const takes = await Promise.all(
      Array.from({ length: 10 }, () => store.takeOneTime('result', hash, { now: 1_000, userId: 'alice' })),
    );
    expect(takes.filter(Boolean)).toHaveLength(1);
    expect((await store.getOneTime('result', hash))?.used).toBe(true);
    expect(await store.getOneTime('state', hash)).toBeUndefined();
  });

  it('a new pending pointer replaces the old one and says which', async () => {
    const store = make();
    const user = uid('u');
    expect(
      await store.setPendingPointer('acme', user, { server: 'notes', state_hash: 'h1', expires_at: 9 }),
    ).toBe(undefined);
    const old = await store.setPendingPointer('acme', user, {
      server: 'notes',
      state_hash: 'h2',
      expires_at: 9,
    });
    expect(old?.state_hash).toBe('h1');
    await store.clearPendingPointer('acme', user, 'notes', 'h1');
    expect((await store.listPending('acme', user)).map((p) => p.state_hash)).toEqual(['h2']);
    await store.clearPendingPointer('acme', user, 'notes', 'h2');
    expect(await store.getPendingPointer('acme', user, 'notes')).toBeUndefined();
  });

  it('forgets a DCR registration only while it is still the one named; the issuer metadata stays', async () => {
    const store = make();
    const tenant = uid('t');
    const issuer = 'https://as.example.com';
    const client = (clientId: string) => ({
      tenant_id: tenant,
      issuer,
      as_metadata: { issuer },
      dcr: { client_id: clientId, token_endpoint_auth_method: 'none' },
      updated_at: 'x',
    });
    await store.putClient(client('old'));
    expect(await store.forgetDcrClient(tenant, issuer, 'other')).toBe(false);
    expect((await store.getClient(tenant, issuer))?.dcr?.client_id).toBe('old');
    expect(await store.forgetDcrClient(tenant, issuer, 'old')).toBe(true);
    const after = await store.getClient(tenant, issuer);
    expect(after?.dcr).toBeUndefined();
    expect(after?.as_metadata).toEqual({ issuer });
    expect(await store.forgetDcrClient(tenant, issuer, 'old')).toBe(false);
    expect(await store.forgetDcrClient(tenant, 'https://elsewhere.example.com', 'old')).toBe(false);
    // A newer registration stored meanwhile is not forgotten for the old one.
    await store.putClient(client('new'));
    expect(await store.forgetDcrClient(tenant, issuer, 'old')).toBe(false);
    expect((await store.getClient(tenant, issuer))?.dcr?.client_id).toBe('new');
  });
});

describe('the token source when the authorization server fails', () => {
  let as: ScriptedServer;
  const box = createSecretBox(testKeyring('s1'));
  const tenant: TenantRecord = tenantRecord({ tenant_id: 'acme' });
  const server: CatalogServer = {
    name: 'notes',
    url: 'https://mcp.example.com/mcp',
    webhook: false,
    auth: { type: 'oauth' },
  };
  let store: Connections;
  let deps: ConnectionDeps;
  const now = () => Date.now();

  beforeAll(async () => {
    as = await startScriptedServer();
    store = dynamoConnections();
    deps = {
      store: store as unknown as ConnectionDeps['store'],
      secretBox: box,
      fetch: createSafeFetch({
        allowedPorts: [],
        allowInsecure: true,
        resolve: async (host) => [...(await lookup(host, { all: true }))],
      }),
      clock: now,
      log: silentLog,
      config: {
        publicBaseUrl: 'http://localhost:8787',
        oauthStateTtlSeconds: 600,
        mcpTokenMinTtlSeconds: 300,
        allowInsecureMcpUrls: true,
      },
      refreshPollMs: 20,
    };
    await store.putClient({
      tenant_id: 'acme',
      issuer: 'https://as.example.com',
      as_metadata: {
        issuer: 'https://as.example.com',
        authorization_endpoint: `${as.origin}/auth`,
        token_endpoint: `${as.origin}/token`,
      },
      dcr: { client_id: 'client-1', token_endpoint_auth_method: 'none' },
      updated_at: 'x',
    });
  });
  afterAll(() => as?.stop());

  async function seed(expiresInS: number): Promise<ConnectionRecord> {
    const r = record();
    const bind = (f: 'token' | 'refresh_token') => ({
      tenantId: 'acme',
      userId: r.user_id,
      field: `conn:notes:${f}` as const,
    });
    const c = {
      ...r,
      token_sealed: await box.seal('old-access-token', bind('token')),
      token_fingerprint: box.fingerprint('old-access-token'),
      access_expires_at: Math.floor(now() / 1000) + expiresInS,
      refresh_token_sealed: await box.seal('old-refresh-token', bind('refresh_token')),
    };
    await store.putConnection(c, null);
    return c;
  }

  it('unreachable: an unexpired token is still ready with its expires_at; an expired one is unavailable', async () => {
    as.routes.set('POST /token', { status: 503, body: 'down' });
    const source = createTokenSource(deps);
    const soon = await seed(60);
    const ready = await source.accessToken({ tenant, server, connection: soon });
    expect(ready).toEqual({ status: 'ready', token: 'old-access-token', expires_at: soon.access_expires_at });
    const gone = await seed(-10);
    expect(await source.accessToken({ tenant, server, connection: gone })).toEqual({
      status: 'unavailable',
      code: 'mcp_auth_unavailable',
    });
    // Nothing was marked, and the lock was given back.
    const after = await store.getConnection('acme', gone.user_id, 'notes');
    expect(after).toMatchObject({ status: 'connected', rt_version: 1 });
    expect(after?.refresh_lock).toBeUndefined();
  });

  it('invalid_grant for a grant replaced meanwhile leaves the new grant connected', async () => {
    const source = createTokenSource(deps);
    const c = await seed(-10);
    const bind = { tenantId: 'acme', userId: c.user_id, field: 'conn:notes:token' as const };
    const replacement = {
      ...c,
      token_sealed: await box.seal('new-consent-token', bind),
      token_fingerprint: box.fingerprint('new-consent-token'),
      access_expires_at: Math.floor(now() / 1000) + 3600,
      rt_version: 2,
      version: 2,
    };
    // While the refresh is at the AS, the user consents again (complete writes a new rt_version).
    as.routes.set('POST /token', () => {
      void store.putConnection(replacement, 1);
      return { status: 400, json: { error: 'invalid_grant' }, delayMs: 300 };
    });
    const result = await source.accessToken({ tenant, server, connection: c });
    expect(result).toMatchObject({ status: 'ready', token: 'new-consent-token' });
    expect(await store.getConnection('acme', c.user_id, 'notes')).toMatchObject({
      status: 'connected',
      rt_version: 2,
    });
  });

  it('a new consent while a refresh is at the AS: the refresh stores nothing over the new grant', async () => {
    // Prepare: the stored grant needs a refresh; while the token request is in flight the user
    // consents again and complete stores the new grant (storeNewGrant, a new rt_version).
    const source = createTokenSource(deps);
    const c = await seed(-10);
    const bind = { tenantId: 'acme', userId: c.user_id, field: 'conn:notes:token' as const };
    let stored: Promise<ConnectionRecord> | undefined;
    as.routes.set('POST /token', () => {
      stored = storeNewGrant(
        store,
        { tenantId: 'acme', userId: c.user_id, server: 'notes' },
        'now',
        async () => ({
          auth: 'oauth',
          resource: c.resource,
          issuer: c.issuer,
          client_id: c.client_id,
          scopes: c.scopes,
          token_sealed: await box.seal('new-consent-token', bind),
          token_fingerprint: box.fingerprint('new-consent-token'),
          access_expires_at: Math.floor(now() / 1000) + 3600,
        }),
      );
      return {
        status: 200,
        json: { access_token: 'refreshed-old-grant', token_type: 'Bearer', expires_in: 3600 },
        delayMs: 300,
      };
    });
    // Act
    const result = await source.accessToken({ tenant, server, connection: c });
    // Assess: the refresher lost its store and used what the new grant holds.
    expect(await stored).toMatchObject({ rt_version: c.rt_version + 1 });
    expect(result).toMatchObject({ status: 'ready', token: 'new-consent-token' });
    const after = await store.getConnection('acme', c.user_id, 'notes');
    expect(after).toMatchObject({ status: 'connected', rt_version: c.rt_version + 1 });
    expect(await box.open(after!.token_sealed!, bind)).toBe('new-consent-token');
  });

  it('invalid_grant for the stored grant marks needs_reauth', async () => {
    as.routes.set('POST /token', { status: 400, json: { error: 'invalid_grant' } });
    const c = await seed(-10);
    expect(await createTokenSource(deps).accessToken({ tenant, server, connection: c })).toMatchObject({
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
    expect(await store.getConnection('acme', c.user_id, 'notes')).toMatchObject({
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
  });

  it('a catalog entry naming another resource: needs_reauth resource_changed, no request', async () => {
    const c = await seed(3600);
    const hits = as.hits.length;
    const moved = { ...server, url: 'https://mcp.example.com/v2' };
    expect(await createTokenSource(deps).accessToken({ tenant, server: moved, connection: c })).toMatchObject(
      {
        status: 'needs_reauth',
        reason: 'resource_changed',
      },
    );
    expect(as.hits.length).toBe(hits);
  });
});
