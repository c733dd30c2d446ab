import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { keys } from '../../functions/adapters/schema.js';
import { type AdminService, createAdminService } from '../../functions/core/admin.js';
import { tenantBodySchema, userBodySchema } from '../../functions/core/admin-input.js';
import { createDispatcher } from '../../functions/core/dispatcher.js';
import { DomainError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import { createSessionService, type SessionService } from '../../functions/core/sessions.js';
import { type Harness, seedTenant, seedUser, startHarness, storeOver, uid } from '../support/fixtures.js';
import { type HoldProxy, interleavings, namesKey, startHoldProxy } from '../support/hold-proxy.js';

// docs/api.md §10, one describe per invariant. The two racing flows each talk to dynalite through
// their own hold proxy, so a gate's skip count sees only its own flow's requests; the critical
// steps of both are released in every order that keeps each flow's own order.

let h: Harness;
let sessionSide: HoldProxy;
let adminSide: HoldProxy;
let sessionStore: DynamoStore;
let adminStore: DynamoStore;
let sessions: SessionService;
let admin: AdminService;

const superadmin = { sub: 'ops', superadmin: true, tenantId: undefined };
const MCP = { url: 'https://mcp.example.com/mcp', token: 'user-token' };

beforeAll(async () => {
  h = await startHarness();
  [sessionSide, adminSide] = await Promise.all([
    startHoldProxy(h.db.endpoint),
    startHoldProxy(h.db.endpoint),
  ]);
  sessionStore = storeOver(h, sessionSide.url);
  adminStore = storeOver(h, adminSide.url);
  const config = {
    metadataTtlSeconds: 7200,
    defaultAgentName: 'mcp-agent',
    webhookRoomPrefix: 'lk-mcp-',
    sessionDispatchMode: 'api' as const,
    sessionTokenTtlSeconds: 900,
    sessionRateLimitPerMinute: 1000,
  };
  const clock = () => new Date();
  const dispatcher = createDispatcher({
    store: sessionStore,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    clock,
    log: silentLog,
    config,
  });
  sessions = createSessionService({
    store: sessionStore,
    dispatcher,
    tokens: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    random: (n) => randomBytes(n),
    log: silentLog,
    config,
  });
  admin = createAdminService({
    store: adminStore,
    secretBox: h.secretBox,
    livekit: h.gateway,
    urlGuard: {
      allowedPorts: [],
      allowInsecure: false,
      resolve: async () => [{ address: '93.184.216.34', family: 4 }],
    },
    clock,
    log: silentLog,
    cascadeBudgetMs: 20_000,
  });
}, 30_000);

afterAll(async () => {
  await Promise.all([sessionSide?.stop(), adminSide?.stop()]);
  await h?.stop();
});

/** A fresh tenant with one user who has MCP settings. */
async function seedPair(): Promise<{ tenantId: string; userId: string }> {
  const tenantId = uid('t')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  const userId = uid('u');
  await seedTenant(h.store, h.secretBox, { tenant_id: tenantId, mcp: { url: MCP.url } });
  await seedUser(h.store, h.secretBox, { tenant_id: tenantId, user_id: userId, mcp: MCP });
  return { tenantId, userId };
}

/** How the session start settled: 201, or the refusal's code. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'started';
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
}

/** Runs two flows with their critical steps released in `order` (names of gates). */
async function runInOrder(
  order: string[],
  gates: Map<string, { release(): Promise<void> }>,
  flows: Promise<unknown>[],
): Promise<void> {
  const settled = Promise.allSettled(flows);
  for (const name of order) await gates.get(name)?.release();
  await settled;
}

/** What must hold once a revoke (suspension, delete) has answered, whatever the session did. */
async function assertNothingLive(tenantId: string, userId: string, started: string) {
  // The racing start either was ended by the admin flow or ended itself and answered 403.
  expect(['started', 'user_suspended', 'tenant_suspended']).toContain(started);
  const rooms = h.livekitServer.rooms.filter((r) => r.startsWith(`lk-mcp-${tenantId}-`));
  const dispatches = h.livekitServer.dispatches.filter((d) => d.room.startsWith(`lk-mcp-${tenantId}-`));
  expect(dispatches, 'a dispatch survived').toEqual([]);
  // A start that answered 201 handed out a token: its room must be gone. One that fenced itself
  // off handed out nothing and removed its dispatch; the empty room LiveKit made for it closes
  // on its own (the stand-in never closes rooms).
  if (started === 'started') expect(rooms, 'the room of a 201 survived').toEqual([]);
  expect(await h.store.activeSessionsOfUser(tenantId, userId)).toEqual([]);
  const recorded = (await h.store.listSessions(tenantId)).items;
  expect(recorded.filter((s) => s.status === 'active')).toEqual([]);
}

type AdminFlow = 'revoke' | 'suspend user' | 'delete user' | 'suspend tenant';

/** The admin flow's write (the status, or the record's removal) and its marker listing. */
function adminGates(flow: AdminFlow, tenantId: string, userId: string) {
  const write =
    flow === 'suspend tenant'
      ? { operation: 'PutItem', body: namesKey('pk', keys.tenant(tenantId).pk) }
      : flow === 'delete user'
        ? // A delete leaves a tombstone holding the last version (versions never repeat).
          { operation: 'PutItem', body: namesKey('pk', keys.user(tenantId, userId).pk) }
        : { operation: 'PutItem', body: namesKey('pk', keys.user(tenantId, userId).pk) };
  return {
    write: adminSide.gate('admin: write', write),
    list: adminSide.gate('admin: list markers', {
      operation: 'Query',
      body: namesKey(':pk', keys.activeMarkerPartition(tenantId)),
    }),
  };
}

function runAdmin(flow: AdminFlow, tenantId: string, userId: string): Promise<unknown> {
  switch (flow) {
    case 'revoke':
      return admin.revokeUser(superadmin, tenantId, userId);
    case 'suspend user':
      return admin.putUser(
        superadmin,
        tenantId,
        userId,
        userBodySchema.parse({ status: 'suspended', mcp: { url: MCP.url } }),
        { kind: 'match', any: true, versions: [] },
      );
    case 'delete user':
      return admin.deleteUser(superadmin, tenantId, userId, { kind: 'none' });
    case 'suspend tenant':
      return admin.putTenant(
        superadmin,
        tenantId,
        tenantBodySchema.parse({ name: 'T', status: 'suspended', mcp: { url: MCP.url } }),
        { kind: 'match', any: true, versions: [] },
      );
  }
}

const sessionSteps = ['session: write marker', 'session: re-read status'];
const adminSteps = ['admin: write', 'admin: list markers'];

describe('§10 once a revoke, suspension or delete has answered, no session of it is live', () => {
  const flows: AdminFlow[] = ['revoke', 'suspend user', 'delete user', 'suspend tenant'];
  const orders = interleavings(sessionSteps, adminSteps);

  it('enumerates all 6 orders of the four critical steps', () => {
    expect(orders).toHaveLength(6);
  });

  for (const flow of flows) {
    for (const order of orders) {
      it(`${flow} vs session start: ${order.join(' → ')}`, async () => {
        // Prepare
        const { tenantId, userId } = await seedPair();
        const tenantFence = flow === 'suspend tenant';
        const statusRead = tenantFence
          ? { operation: 'GetItem', body: namesKey('pk', keys.tenant(tenantId).pk), skip: 1 }
          : { operation: 'GetItem', body: namesKey('pk', keys.user(tenantId, userId).pk), skip: 1 };
        const gates = new Map([
          [
            'session: write marker',
            sessionSide.gate('session: write marker', {
              operation: 'PutItem',
              body: namesKey('pk', keys.activeMarkerPartition(tenantId)),
            }),
          ],
          ['session: re-read status', sessionSide.gate('session: re-read status', statusRead)],
        ]);
        const a = adminGates(flow, tenantId, userId);
        gates.set('admin: write', a.write);
        gates.set('admin: list markers', a.list);

        // Act
        const start = outcome(sessions.start({ userId, tenantClaim: tenantId }));
        const done = runAdmin(flow, tenantId, userId);
        await runInOrder(order, gates, [start, done]);
        await sessionSide.openAll();
        await adminSide.openAll();

        // Assess
        await expect(done).resolves.toBeDefined();
        await assertNothingLive(tenantId, userId, await start);
      });
    }
  }

  it('randomized: 8 starts racing one revoke, 5 rounds, leave nothing live', async () => {
    for (let round = 0; round < 5; round++) {
      const { tenantId, userId } = await seedPair();
      const starts = Array.from({ length: 8 }, (_, i) =>
        new Promise((r) => setTimeout(r, Math.random() * 30 + i)).then(() =>
          outcome(sessions.start({ userId, tenantClaim: tenantId })),
        ),
      );
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      await admin.revokeUser(superadmin, tenantId, userId);
      const results = await Promise.all(starts);
      for (const r of results) expect(['started', 'user_suspended']).toContain(r);
      expect(h.livekitServer.dispatches.filter((d) => d.room.startsWith(`lk-mcp-${tenantId}-`))).toEqual([]);
      expect(await h.store.activeSessionsOfUser(tenantId, userId)).toEqual([]);
    }
  }, 60_000);
});

describe('§10 once a tenant delete has answered, none of its users is reachable (vs a user create)', () => {
  const createSteps = ['create: write user', 'create: re-read tenant'];
  const deleteSteps = ['delete: mark deleting', 'delete: list users'];
  const orders = interleavings(createSteps, deleteSteps);

  for (const order of orders) {
    it(order.join(' → '), async () => {
      // Prepare
      const { tenantId } = await seedPair();
      const newUser = uid('late');
      const gates = new Map([
        [
          'create: write user',
          sessionSide.gate('create: write user', {
            operation: 'PutItem',
            body: namesKey('pk', keys.user(tenantId, newUser).pk),
          }),
        ],
        [
          'create: re-read tenant',
          sessionSide.gate('create: re-read tenant', {
            operation: 'GetItem',
            body: namesKey('pk', keys.tenant(tenantId).pk),
            skip: 1,
          }),
        ],
        [
          'delete: mark deleting',
          adminSide.gate('delete: mark deleting', {
            operation: 'PutItem',
            body: namesKey('pk', keys.tenant(tenantId).pk),
          }),
        ],
        [
          'delete: list users',
          adminSide.gate('delete: list users', {
            operation: 'Query',
            body: namesKey(':pk', keys.tenantUsers(tenantId)),
          }),
        ],
      ]);
      // The user create runs on the session side's proxy (its own store), the delete on the admin's.
      const creator = createAdminService({
        store: sessionStore,
        secretBox: h.secretBox,
        livekit: h.gateway,
        urlGuard: { allowedPorts: [], allowInsecure: false, resolve: async () => [] },
        clock: () => new Date(),
        log: silentLog,
        cascadeBudgetMs: 20_000,
      });

      // Act
      const create = outcome(
        creator.putUser(superadmin, tenantId, newUser, userBodySchema.parse({}), { kind: 'create' }),
      );
      const del = admin.deleteTenant(superadmin, tenantId, { kind: 'none' }, true);
      await runInOrder(order, gates, [create, del]);
      await sessionSide.openAll();
      await adminSide.openAll();

      // Assess
      await expect(del).resolves.toEqual({ done: true });
      expect(['started', 'tenant_not_found']).toContain(await create);
      expect(await h.store.getTenant(tenantId)).toBeUndefined();
      expect(await h.store.getUser(tenantId, newUser)).toBeUndefined();
      expect((await h.store.listUsers(tenantId)).items).toEqual([]);
    });
  }
});

describe('§10 a rate limit of N per minute admits at most N in any 60 s window', () => {
  it('20 attempts across a minute boundary at 10/min admit 10 (sliding, not fixed, window)', async () => {
    // Prepare: attempts every 95 ms from 0.95 s before a minute boundary to 0.95 s after it.
    let now = Date.parse('2026-12-01T10:00:00Z') - 950;
    const store = new DynamoStore({ client: h.db.client, tableName: h.db.tableName, clock: () => now });
    const tenantId = uid('t');
    const userId = uid('u');
    const admittedAt: number[] = [];

    // Act
    for (let i = 0; i < 20; i++) {
      if (await store.hitRate(tenantId, userId, 10)) admittedAt.push(now);
      now += 95;
    }
    now += 60_000;
    const afterAMinute = await store.hitRate(tenantId, userId, 10);

    // Assess
    for (const t of admittedAt) {
      expect(admittedAt.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(10);
    }
    expect(admittedAt).toHaveLength(10);
    expect(afterAMinute).toBe(true);
  });

  it('randomized: 20 concurrent attempts at 10/min admit exactly 10, and a refusal writes nothing', async () => {
    const store = new DynamoStore({ client: h.db.client, tableName: h.db.tableName });
    const tenantId = uid('t');
    const userId = uid('u');
    const results = await Promise.all(Array.from({ length: 20 }, () => store.hitRate(tenantId, userId, 10)));
    expect(results.filter(Boolean)).toHaveLength(10);
    const before = JSON.stringify(
      (await h.db.scan()).find((i) => i.pk === keys.rateWindow(tenantId, userId).pk),
    );
    expect(await store.hitRate(tenantId, userId, 10)).toBe(false);
    const after = JSON.stringify(
      (await h.db.scan()).find((i) => i.pk === keys.rateWindow(tenantId, userId).pk),
    );
    expect(after).toBe(before);
  });
});

describe('§10 each webhook event is handled at most once', () => {
  it('randomized: 12 concurrent claims of one event id, one winner', async () => {
    const ref = { kind: 'event' as const, id: uid('EV') };
    const attempts = await Promise.all(
      Array.from({ length: 12 }, () => h.store.tryClaim(ref, { ttlSeconds: 600 })),
    );
    expect(attempts.filter((a) => a.won)).toHaveLength(1);
  });
});

describe('§10 one dispatch per (room sid, agent)', () => {
  it('randomized: 6 concurrent webhook dispatches in one room incarnation make one dispatch', async () => {
    const { tenantId, userId } = await seedPair();
    const tenant = (await h.store.getTenant(tenantId))!;
    const dispatcher = createDispatcher({
      store: h.store,
      livekit: h.gateway,
      sealer: h.sealer,
      secretBox: h.secretBox,
      clock: () => new Date(),
      log: silentLog,
      config: { metadataTtlSeconds: 7200, defaultAgentName: 'mcp-agent', webhookRoomPrefix: 'lk-mcp-' },
    });
    const room = `lk-mcp-${tenantId}-daily`;
    h.livekitServer.addRoom(room);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        dispatcher.dispatch({
          tenant,
          userId,
          participantIdentity: `${userId}-${i}`,
          agentName: 'mcp-agent',
          roomName: room,
          roomSid: 'RM_daily_1',
          perParticipant: false,
          mcpServers: [{ name: 'mcp', url: MCP.url, transport: 'streamable_http', headers: {} }],
          mode: 'api',
          origin: 'webhook',
        }),
      ),
    );
    const dispatched = results.filter((r) => r.status === 'fulfilled' && r.value.status === 'dispatched');
    expect(dispatched).toHaveLength(1);
    expect(h.livekitServer.dispatches.filter((d) => d.room === room)).toHaveLength(1);
  });
});
