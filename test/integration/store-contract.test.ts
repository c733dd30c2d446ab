import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import type { SessionRecord, TenantRecord, UserRecord } from '../../functions/core/model.js';
import type { ClaimRef, DispatchStore } from '../../functions/core/ports.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { MemoryStore } from '../support/memory-store.js';
import { startMoto } from '../support/moto.js';
import { RECORDS_T0, sessionRecord, tenantRecord, userRecord } from '../support/records.js';

/** A store under test, a way to put tenants and users into it, and its clock to move. */
interface StoreUnderTest {
  store: DispatchStore;
  seedTenant(record: TenantRecord): Promise<void>;
  seedUser(record: UserRecord): Promise<void>;
  /** Moves the store's clock forward by `ms`. */
  advance(ms: number): void;
}

const T0 = RECORDS_T0;
let seq = 0;
const uid = (prefix: string) => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

const tenant = (overrides: Partial<TenantRecord> = {}) =>
  tenantRecord({ tenant_id: uid('t'), webhook_dispatch: true, ...overrides });
const user = (tenantId: string, overrides: Partial<UserRecord> = {}) =>
  userRecord(tenantId, { user_id: uid('u'), ...overrides });
const session = (overrides: Partial<SessionRecord> = {}) =>
  sessionRecord({ room_name: uid('lk-mcp-room'), origin: 'webhook', ...overrides });

/**
 * The semantics the dispatcher, the session service and the webhook rely on, asserted the same
 * way for every implementation of the `DispatchStore` port (the unit tests' fake and DynamoDB).
 */
function describeStore(name: string, makeStore: () => StoreUnderTest) {
  describe(`${name}: tenants and users`, () => {
    it('reads seeded records, finds them by SIP trunk and phone number, and nothing else', async () => {
      // Prepare
      const t = makeStore();
      const trunk = uid('ST');
      const phone = `+1555${String(++seq).padStart(7, '0')}`;
      const acme = tenant({ sip_trunk_ids: [trunk] });
      const alice = user(acme.tenant_id, { phone_numbers: [phone] });
      await t.seedTenant(acme);
      await t.seedUser(alice);

      // Act + Assess
      expect(await t.store.getTenant(acme.tenant_id)).toEqual(acme);
      expect(await t.store.getUser(acme.tenant_id, alice.user_id)).toEqual(alice);
      expect(await t.store.tenantBySipTrunk(trunk)).toEqual(acme);
      expect(await t.store.userByPhoneNumber(acme.tenant_id, phone)).toEqual(alice);
      expect(await t.store.getTenant(uid('none'))).toBeUndefined();
      expect(await t.store.getUser(acme.tenant_id, uid('none'))).toBeUndefined();
      expect(await t.store.getUser(uid('none'), alice.user_id)).toBeUndefined();
      expect(await t.store.tenantBySipTrunk(uid('ST'))).toBeUndefined();
      expect(await t.store.userByPhoneNumber(acme.tenant_id, '+15550000000')).toBeUndefined();
      expect(await t.store.userByPhoneNumber(uid('none'), phone)).toBeUndefined();
    });
  });

  describe(`${name}: expiring claims`, () => {
    const ref = (): ClaimRef => ({ kind: 'event', id: uid('EV') });

    it('lets exactly one of 10 concurrent claimers win; the others see it in progress', async () => {
      const { store } = makeStore();
      const key = ref();
      const attempts = await Promise.all(
        Array.from({ length: 10 }, () => store.tryClaim(key, { ttlSeconds: 60 })),
      );
      const won = attempts.filter((a) => a.won);
      expect(won).toHaveLength(1);
      for (const a of attempts)
        if (!a.won) expect(a.current).toMatchObject({ state: 'in_progress', stale: false });
    });

    it('lets a stale claim be taken over and returns it; never a completed one before its TTL', async () => {
      const t = makeStore();
      const stale = ref();
      const first = await t.store.tryClaim(stale, { ttlSeconds: 600, holdSeconds: 5, attrs: { n: 1 } });
      const done = ref();
      const other = await t.store.tryClaim(done, { ttlSeconds: 600, holdSeconds: 5 });
      if (!first.won || !other.won) throw new Error('first claims must win');
      await t.store.completeClaim(done, other.owner, { action: 'dispatched' }, 600);
      t.advance(6000);

      const retaken = await t.store.tryClaim(stale, { ttlSeconds: 600 });
      const blocked = await t.store.tryClaim(done, { ttlSeconds: 600 });

      expect(retaken).toMatchObject({
        won: true,
        previous: { owner: first.owner, attrs: { n: 1 }, stale: true },
      });
      expect(blocked).toMatchObject({
        won: false,
        current: { state: 'completed', attrs: { action: 'dispatched' } },
      });
      t.advance(601_000);
      expect(await t.store.getClaim(done)).toBeUndefined();
      expect(await t.store.tryClaim(done, { ttlSeconds: 60 })).toMatchObject({ won: true });
    });

    it('is completed, updated and released only by its owner', async () => {
      const { store } = makeStore();
      const key = ref();
      const claim = await store.tryClaim(key, { ttlSeconds: 60 });
      if (!claim.won) throw new Error('must win');

      await expect(store.completeClaim(key, 'someone-else', {}, 60)).rejects.toMatchObject({
        code: 'claim_lost',
      });
      await expect(store.updateClaim(key, 'someone-else', { a: 1 })).rejects.toMatchObject({
        code: 'claim_lost',
      });
      expect(await store.releaseClaim(key, 'someone-else')).toBe(false);
      await store.updateClaim(key, claim.owner, { a: 1 });
      expect(await store.getClaim(key)).toMatchObject({ owner: claim.owner, attrs: { a: 1 } });
      expect(await store.releaseClaim(key, claim.owner)).toBe(true);
      expect(await store.getClaim(key)).toBeUndefined();
    });

    it('keeps dispatch claims per room, agent and participant, and idempotency keys per user, apart', async () => {
      const { store } = makeStore();
      const room = uid('RM');
      const refs: ClaimRef[] = [
        { kind: 'dispatch', room, agent: 'agent' },
        { kind: 'dispatch', room, agent: 'agent', participant: 'alice' },
        { kind: 'dispatch', room, agent: 'agent', participant: 'bob' },
        { kind: 'dispatch', room, agent: 'other' },
        { kind: 'idempotency', tenant: 't', user: room, key: 'k' },
        { kind: 'idempotency', tenant: 't', user: 'k', key: room },
        { kind: 'idempotency', tenant: 'u', user: room, key: 'k' },
        { kind: 'event', id: room },
      ];
      const attempts = await Promise.all(refs.map((r) => store.tryClaim(r, { ttlSeconds: 60 })));
      expect(attempts.map((a) => a.won)).toEqual(refs.map(() => true));
    });
  });

  describe(`${name}: key limits`, () => {
    it('says whether a claim fits the table keys, and refuses one that does not', async () => {
      const { store } = makeStore();
      const huge: ClaimRef = { kind: 'dispatch', room: `RM_${'x'.repeat(3000)}`, agent: 'mcp-agent' };
      expect(store.fits({ kind: 'event', id: 'EV_ok' })).toBe(true);
      expect(store.fits(huge)).toBe(false);
      await expect(store.getClaim(huge)).rejects.toMatchObject({ code: 'key_too_long' });
    });
  });

  describe(`${name}: leases and rate`, () => {
    it('holds at most max leases; a released or expired slot is free again, only for its holder', async () => {
      const t = makeStore();
      const tenantId = uid('t');
      const a = await t.store.acquireLease(tenantId, 2, 'a', 60);
      const b = await t.store.acquireLease(tenantId, 2, 'b', 60);
      expect([a, b].sort()).toEqual([0, 1]);
      expect(await t.store.acquireLease(tenantId, 2, 'c', 60)).toBeNull();
      expect(await t.store.releaseLease(tenantId, a!, 'b')).toBe(false);
      expect(await t.store.releaseLease(tenantId, a!, 'a')).toBe(true);
      expect(await t.store.acquireLease(tenantId, 2, 'c', 60)).toBe(a);
      t.advance(61_000);
      expect(await t.store.acquireLease(tenantId, 2, 'd', 60)).not.toBeNull();
    });

    it('allows limit starts per user per minute, then refuses until the next minute', async () => {
      const t = makeStore();
      const u = uid('u');
      const hits = [];
      for (let i = 0; i < 4; i++) hits.push(await t.store.hitRate('t1', u, 3));
      expect(hits).toEqual([true, true, true, false]);
      expect(await t.store.hitRate('t1', uid('u'), 3)).toBe(true);
      t.advance(60_000);
      expect(await t.store.hitRate('t1', u, 3)).toBe(true);
    });
  });

  describe(`${name}: sessions`, () => {
    it('ends a session once, with its duration, and never writes it active again', async () => {
      const t = makeStore();
      const s = session();
      await t.store.putSession(s);
      await t.store.putSession(s);

      const ended = await t.store.endSession(s, new Date(T0 + 90_000));
      const again = await t.store.endSession(s, new Date(T0 + 95_000));

      expect(ended).toMatchObject({
        status: 'ended',
        duration_seconds: 90,
        ended_at: new Date(T0 + 90_000).toISOString(),
      });
      expect(again).toBeUndefined();
      await expect(t.store.putSession(s)).rejects.toMatchObject({ code: 'session_ended' });
      expect(await t.store.roomSessions(s.room_name)).toEqual([ended]);
    });

    it("keeps every participant's and every room incarnation's session apart", async () => {
      const { store } = makeStore();
      const room = uid('lk-mcp-room');
      const records = [
        session({ room_name: room }),
        session({ room_name: room, participant_identity: 'bob', user_id: 'bob' }),
        session({ room_name: room, room_sid: 'RM_a' }),
        session({ room_name: room, room_sid: 'RM_b' }),
      ];
      for (const r of records) await store.putSession(r);
      await store.endSession(records[2]!);

      const sessions = await store.roomSessions(room);
      expect(sessions).toHaveLength(4);
      expect(sessions.filter((s) => s.status === 'ended').map((s) => s.room_sid)).toEqual(['RM_a']);
      expect(await store.roomSessions(uid('lk-mcp-room'))).toEqual([]);
    });
  });
}

describeStore('MemoryStore (unit-test fake)', () => {
  let now = T0;
  const store = new MemoryStore(() => now);
  return {
    store,
    seedTenant: async (r) => void store.tenants.set(r.tenant_id, r),
    seedUser: async (r) => void store.setUser(r),
    advance: (ms) => {
      now += ms;
    },
  };
});

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.stop();
});

describeStore('DynamoStore (dynalite)', () => {
  let now = T0;
  const store = new DynamoStore({ client: db.client, tableName: db.tableName, clock: () => now });
  return {
    store,
    seedTenant: async (r) => void (await store.createTenant(r)),
    seedUser: async (r) => void (await store.createUser(r)),
    advance: (ms) => {
      now += ms;
    },
  };
});

// moto's server: a second DynamoDB-compatible implementation, so that what dynalite does not model
// (key size limits, ReturnValuesOnConditionCheckFailure) is checked against another one.
let moto: TestDynamo;
beforeAll(async () => {
  moto = await startMoto();
}, 900_000);
afterAll(async () => {
  await moto?.stop();
});

describeStore('DynamoStore (moto server)', () => {
  let now = T0;
  const store = new DynamoStore({ client: moto.client, tableName: moto.tableName, clock: () => now });
  return {
    store,
    seedTenant: async (r) => void (await store.createTenant(r)),
    seedUser: async (r) => void (await store.createUser(r)),
    advance: (ms) => {
      now += ms;
    },
  };
});
