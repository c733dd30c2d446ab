import { describe, expect, it } from 'vitest';
import type { OAuthTokenSource } from '../../functions/core/connections/ports.js';
import { sameResource } from '../../functions/core/connections/view.js';
import { silentLog } from '../../functions/core/log.js';
import type {
  CatalogServer,
  ConnectionRecord,
  TenantRecord,
  UserRecord,
} from '../../functions/core/model.js';
import { createSecretBox } from '../../functions/core/sealing.js';
import { createServerResolver } from '../../functions/core/servers.js';
import { createStoredTokenSource } from '../../functions/core/token-source.js';
import { storedMcp, testKeyring } from '../support/fixtures.js';
import { MemoryStore } from '../support/memory-store.js';

const box = createSecretBox(testKeyring('storage-servers'));
const NOW = 1_800_000_000;
const clock = () => new Date(NOW * 1000);

const tenant = (servers: CatalogServer[], more: Partial<TenantRecord> = {}): TenantRecord => ({
  tenant_id: 'acme',
  name: 'Acme',
  dispatch_policy: 'per_room',
  agent_names: [],
  status: 'active',
  webhook_dispatch: true,
  sip_trunk_ids: [],
  version: 1,
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
  mcp_servers: servers,
  ...more,
});
const user: UserRecord = {
  tenant_id: 'acme',
  user_id: 'alice',
  phone_numbers: [],
  status: 'active',
  version: 1,
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
};
const server = (
  name: string,
  auth: CatalogServer['auth'],
  more: Partial<CatalogServer> = {},
): CatalogServer => ({
  name,
  url: `https://${name}.example.com/mcp`,
  webhook: false,
  auth,
  ...more,
});

async function connection(name: string, more: Partial<ConnectionRecord> = {}): Promise<ConnectionRecord> {
  return {
    tenant_id: 'acme',
    user_id: 'alice',
    server: name,
    auth: 'oauth',
    status: 'connected',
    resource: `https://${name}.example.com/mcp`,
    token_sealed: await box.seal(`at-${name}`, {
      tenantId: 'acme',
      userId: 'alice',
      field: `conn:${name}:token`,
    }),
    rt_version: 1,
    version: 1,
    updated_at: '2026-01-01T00:00:00Z',
    ...more,
  };
}

function resolver(
  store: MemoryStore,
  oauthTokens: OAuthTokenSource = createStoredTokenSource({ secretBox: box, clock }),
) {
  return createServerResolver({ secretBox: box, connections: store, oauthTokens, log: silentLog });
}

describe('server resolution (docs/api.md §4, §8)', () => {
  it('decides each OAuth connection: pending without a token, wrong auth type, expiry', async () => {
    // Prepare
    const store = new MemoryStore();
    store.putConnection(await connection('fresh', { access_expires_at: NOW + 60 }));
    store.putConnection(await connection('stale', { access_expires_at: NOW }));
    store.putConnection(await connection('pending', { status: 'pending', token_sealed: undefined }));
    store.putConnection(await connection('typed', { auth: 'user_token' }));
    const t = tenant(['fresh', 'stale', 'pending', 'typed'].map((n) => server(n, { type: 'oauth' })));

    // Act
    const { states, grants } = await resolver(store)({ tenant: t, user, origin: 'session' });

    // Assess
    expect(states).toEqual([
      { name: 'fresh', status: 'ready' },
      { name: 'stale', status: 'needs_reauth', reason: 'expired' },
      { name: 'pending', status: 'not_connected' },
      { name: 'typed', status: 'not_connected' },
    ]);
    expect(grants).toEqual([
      {
        name: 'fresh',
        url: 'https://fresh.example.com/mcp',
        transport: 'streamable_http',
        auth: 'oauth',
        expires_at: NOW + 60,
        headers: { Authorization: 'Bearer at-fresh' },
      },
    ]);
  });

  it('passes the token source what it needs, and reads no connection when no entry needs one', async () => {
    // Prepare
    const store = new MemoryStore();
    store.putConnection(await connection('crm'));
    let reads = 0;
    const counting = {
      listConnections: async (t: string, u: string) => {
        reads++;
        return store.listConnections(t, u);
      },
    };
    const seen: string[] = [];
    const source: OAuthTokenSource = {
      accessToken: async ({ tenant: t, server: s, connection: c }) => {
        seen.push(`${t.tenant_id}/${s.name}/${c.user_id}`);
        return { status: 'unavailable', code: 'mcp_auth_unavailable' };
      },
    };
    const resolve = createServerResolver({
      secretBox: box,
      connections: counting,
      oauthTokens: source,
      log: silentLog,
    });

    // Act
    const oauth = await resolve({
      tenant: tenant([server('crm', { type: 'oauth' })]),
      user,
      origin: 'session',
    });
    const none = await resolve({
      tenant: tenant([server('wiki', { type: 'none' })]),
      user,
      origin: 'session',
    });

    // Assess
    expect(oauth.states).toEqual([{ name: 'crm', status: 'unavailable' }]);
    expect(seen).toEqual(['acme/crm/alice']);
    expect(none.grants.map((g) => g.name)).toEqual(['wiki']);
    expect(reads).toBe(1);
  });

  it('leaves out a catalog entry named like the user’s own mcp, and never sends a secret that does not open', async () => {
    // Prepare: the user's mcp is named `docs`; the static token of `broken` was sealed for another entry
    const store = new MemoryStore();
    const misplaced = await box.seal('tok', { tenantId: 'acme', userId: '', field: 'catalog:other:token' });
    const t = tenant([
      server('docs', { type: 'none' }),
      server('broken', { type: 'static', token_sealed: misplaced }),
    ]);
    const u: UserRecord = {
      ...user,
      mcp: await storedMcp(
        box,
        { tenantId: 'acme', userId: 'alice' },
        { url: 'https://mine.example.com/', name: 'docs' },
      ),
    };

    // Act
    const { states, grants } = await resolver(store)({ tenant: t, user: u, origin: 'session' });

    // Assess
    expect(states).toEqual([
      { name: 'docs', status: 'ready' },
      { name: 'broken', status: 'unavailable' },
    ]);
    expect(grants).toEqual([
      {
        name: 'docs',
        url: 'https://mine.example.com/',
        transport: 'streamable_http',
        auth: 'static',
        headers: {},
      },
    ]);
  });

  it('compares resources as URLs (a root path with or without its slash)', () => {
    expect(sameResource('https://a.example.com', 'https://a.example.com/')).toBe(true);
    expect(sameResource('https://A.example.com/mcp', 'https://a.example.com/mcp')).toBe(true);
    expect(sameResource('https://a.example.com/mcp', 'https://a.example.com/mcp/')).toBe(false);
    expect(sameResource('https://a.example.com/mcp', 'not a url')).toBe(false);
  });
});
