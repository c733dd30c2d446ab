import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { keys } from '../../functions/adapters/schema.js';
import { type AdminService, createAdminService } from '../../functions/core/admin.js';
import type { GrantCleanup } from '../../functions/core/admin-service.js';
import { createConnectionAdmin } from '../../functions/core/connections/admin.js';
import { complete } from '../../functions/core/connections/callback.js';
import {
  type ConnectionDeps,
  handleHash,
  newHandle,
  stateBinding,
} from '../../functions/core/connections/context.js';
import { DomainError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import type { CatalogServer, TenantRecord, UserRecord } from '../../functions/core/model.js';
import { type Harness, seedUser, startHarness, storeOver, uid } from '../support/fixtures.js';
import { type Gate, type HoldProxy, interleavings, namesKey, startHoldProxy } from '../support/hold-proxy.js';

// docs/api.md §8: deleting a catalog entry revokes the grants it held, and only `complete` stores a
// grant. A `complete` racing the tenant PUT that retires the entry must not leave a connection
// behind: complete stores the grant, then re-reads the tenant (write-then-check,
// functions/core/connections/callback.ts); the PUT writes the tenant, then lists the entry's
// connections and removes them. Each flow talks to dynalite through its own hold proxy; the four
// critical steps are released in every order that keeps each flow's own order.

let h: Harness;
let completeSide: HoldProxy;
let adminSide: HoldProxy;
let admin: AdminService;
let deps: ConnectionDeps;

const superadmin = { sub: 'ops', superadmin: true, tenantId: undefined };
const NOTES: CatalogServer['url'] = 'https://notes.example.com/mcp';
const urlGuard = {
  allowedPorts: [],
  allowInsecure: false,
  resolve: async () => [{ address: '93.184.216.34', family: 4 as const }],
};

function connectionDeps(store: DynamoStore): ConnectionDeps {
  return {
    store: store.connectionStore(),
    secretBox: h.secretBox,
    fetch: async () => {
      throw new Error('no network in this test');
    },
    clock: Date.now,
    log: silentLog,
    config: {
      publicBaseUrl: 'https://dispatch.example.com',
      oauthStateTtlSeconds: 600,
      mcpTokenMinTtlSeconds: 120,
      allowInsecureMcpUrls: false,
    },
  };
}

function adminOver(store: DynamoStore, grants?: GrantCleanup): AdminService {
  return createAdminService({
    store,
    secretBox: h.secretBox,
    livekit: h.gateway,
    urlGuard,
    clock: () => new Date(),
    log: silentLog,
    cascadeBudgetMs: 20_000,
    grants,
  });
}

beforeAll(async () => {
  h = await startHarness();
  [completeSide, adminSide] = await Promise.all([
    startHoldProxy(h.db.endpoint),
    startHoldProxy(h.db.endpoint),
  ]);
  deps = connectionDeps(storeOver(h, completeSide.url));
  const adminStore = storeOver(h, adminSide.url);
  admin = adminOver(adminStore, createConnectionAdmin(connectionDeps(adminStore)));
}, 30_000);

afterAll(async () => {
  await Promise.all([completeSide?.stop(), adminSide?.stop()]);
  await h?.stop();
});

const catalog = [
  { name: 'notes', url: NOTES, auth: { type: 'oauth' as const, scopes: ['notes.read'] } },
  { name: 'wiki', url: 'https://wiki.example.com/mcp', auth: { type: 'none' as const } },
];

/** A tenant whose catalog names `notes` (OAuth), a user, and a callback's one-time result for them. */
async function prepare(): Promise<{ tenant: TenantRecord; user: UserRecord; handle: string }> {
  const tenantId = uid('race-');
  // Written straight to dynalite (not through the gated proxies), as the admin API writes it.
  const created = await adminOver(h.store).putTenant(
    superadmin,
    tenantId,
    { name: 'Race', mcp_servers: catalog },
    { kind: 'create' },
  );
  const tenant = created.record;
  const user = await seedUser(h.store, h.secretBox, { tenant_id: tenantId });
  const handle = newHandle();
  const now = Date.now();
  const result = {
    tenant_id: tenantId,
    user_id: user.user_id,
    server: 'notes',
    state_hash: handleHash('a state'),
    tokens: {
      access_token: `at-${uid('')}`,
      token_type: 'Bearer',
      refresh_token: `rt-${uid('')}`,
      expires_at: now + 3_600_000,
      scopes: ['notes.read'],
      resource: NOTES,
      issuer: 'https://as.example.com',
      client_id: 'https://dispatch.example.com/oauth/tenants/x/client-metadata.json',
    },
  };
  await h.store.connectionStore().putOneTime(
    'result',
    handleHash(handle),
    {
      tenant_id: tenantId,
      user_id: user.user_id,
      server: 'notes',
      expires_at: now + 600_000,
      used: false,
      sealed: await h.secretBox.seal(JSON.stringify(result), stateBinding(tenantId, user.user_id)),
    },
    900,
  );
  return { tenant, user, handle };
}

/** A step that never comes (a flow that skips it) fails the test by name instead of hanging it. */
async function arrivesWithin(gate: Gate, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${gate.name}: never happened`)), ms);
  });
  try {
    await Promise.race([gate.arrived(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const completeSteps = ['complete: store grant', 'complete: re-read tenant'];
const retireSteps = ['put: write tenant', 'put: list connections'];

describe('§8 a complete racing the tenant PUT that retires its catalog entry', () => {
  const orders = interleavings(completeSteps, retireSteps);

  it('enumerates all 6 orders of the four critical steps', () => {
    expect(orders).toHaveLength(6);
  });

  for (const order of orders) {
    it(order.join(' → '), async () => {
      // Prepare: both flows run up to their first critical step.
      const { tenant, user, handle } = await prepare();
      const t = tenant.tenant_id;
      const gates = new Map([
        [
          'complete: store grant',
          completeSide.gate('complete: store grant', {
            operation: 'PutItem',
            body: namesKey('pk', keys.connection(t, user.user_id, 'notes').pk),
          }),
        ],
        [
          // complete is handed the caller's tenant: its only read of the tenant is the check.
          'complete: re-read tenant',
          completeSide.gate('complete: re-read tenant', {
            operation: 'GetItem',
            body: namesKey('pk', keys.tenant(t).pk),
          }),
        ],
        [
          'put: write tenant',
          adminSide.gate('put: write tenant', {
            operation: 'PutItem',
            body: namesKey('pk', keys.tenant(t).pk),
          }),
        ],
        [
          'put: list connections',
          adminSide.gate('put: list connections', {
            operation: 'Query',
            body: namesKey(':pk', keys.tenantConnections(t)),
          }),
        ],
      ]);

      // Act
      const completed = complete(deps, { tenant, user }, 'notes', handle);
      await gates.get('complete: store grant')!.arrived();
      const retired = admin.putTenant(
        superadmin,
        t,
        { name: 'Race', mcp_servers: catalog.filter((s) => s.name !== 'notes') },
        { kind: 'match', any: false, versions: [tenant.version] },
      );
      await gates.get('put: write tenant')!.arrived();
      const settled = Promise.allSettled([completed, retired]);
      for (const name of order) {
        await arrivesWithin(gates.get(name)!, 5_000);
        await gates.get(name)!.release();
      }
      await settled;
      await completeSide.openAll();
      await adminSide.openAll();

      // Assess: the PUT wins; the grant survives in no order. complete answers 200 only when its
      // check came before the tenant write (then the sweep, listing after the grant was stored,
      // removes it), else 404 server_not_found.
      await expect(retired).resolves.toMatchObject({ record: { version: 2 } });
      const checkedFirst = order.indexOf('complete: re-read tenant') < order.indexOf('put: write tenant');
      if (checkedFirst) {
        await expect(completed).resolves.toMatchObject({ server: 'notes', status: 'connected' });
      } else {
        const error = await completed.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(DomainError);
        expect((error as DomainError).code).toBe('server_not_found');
      }
      const left = await h.store.connectionStore().listConnections(t, user.user_id);
      expect(left, 'a connection to the retired entry survived').toEqual([]);
    });
  }
});

describe('§8 a complete whose catalog entry was removed and added again since its caller read it', () => {
  it('is another incarnation of the entry: 404 server_not_found, nothing stored', async () => {
    // Prepare: the caller's tenant as read (notes, incarnation 1); then the entry removed and
    // added again with the same name and URL (incarnation 2), straight to dynalite
    const { tenant, user, handle } = await prepare();
    const t = tenant.tenant_id;
    const direct = adminOver(h.store, createConnectionAdmin(connectionDeps(h.store)));
    const match = (version: number) => ({ kind: 'match' as const, any: false, versions: [version] });
    const without = catalog.filter((s) => s.name !== 'notes');
    await direct.putTenant(superadmin, t, { name: 'Race', mcp_servers: without }, match(1));
    const readded = await direct.putTenant(superadmin, t, { name: 'Race', mcp_servers: catalog }, match(2));
    const entry = (r: TenantRecord) => r.mcp_servers?.find((s) => s.name === 'notes');
    expect(entry(readded.record)?.entry_id).not.toBe(entry(tenant)?.entry_id);

    // Act
    const error = await complete(connectionDeps(h.store), { tenant, user }, 'notes', handle).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect((error as DomainError).code).toBe('server_not_found');
    expect(await h.store.connectionStore().listConnections(t, user.user_id)).toEqual([]);
  });
});
