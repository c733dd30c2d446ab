import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoStore, StoreConflict } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { escapeKeyPart, key, keys } from '../../functions/adapters/schema.js';
import { createTable } from '../../functions/adapters/table.js';
import { ConditionFailedError, StoreUnavailableError } from '../../functions/core/errors.js';
import type { AuditRecord, SessionRecord, TenantRecord, UserRecord } from '../../functions/core/model.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { sessionRecord, tenantRecord, userRecord } from '../support/records.js';

const T0 = Date.parse('2026-11-29T12:00:00Z');

let db: TestDynamo;
let now: number;
let store: DynamoStore;
let seq = 0;

beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.stop();
});
beforeEach(() => {
  now = T0;
  store = new DynamoStore({ client: db.client, tableName: db.tableName, clock: () => now });
});

/** A fresh id per test so tests share the table without seeing each other. */
const uid = (prefix: string) => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

const tenant = (overrides: Partial<TenantRecord> = {}) =>
  tenantRecord({ tenant_id: uid('t'), version: 0, ...overrides });
const user = (tenantId: string, overrides: Partial<UserRecord> = {}) =>
  userRecord(tenantId, { user_id: uid('u'), version: 0, ...overrides });
const session = (overrides: Partial<SessionRecord> = {}) =>
  sessionRecord({ room_name: uid('lk-mcp-room'), ...overrides });

async function conflictCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConditionFailedError);
  return (error as ConditionFailedError).code;
}

describe('table and embedded dynalite', () => {
  it('creates the table idempotently', async () => {
    // Act + Assess: a second call on an existing table succeeds.
    await expect(createTable(db.client, db.tableName)).resolves.toBeUndefined();
  });

  it('keeps data on disk across restarts when given a path', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'dynalite-'));
    try {
      const first = await startDynalite({ path: dir, tableName: 'persisted' });
      await new DynamoStore({ client: first.client, tableName: first.tableName }).createTenant(
        tenant({ tenant_id: 'kept' }),
      );
      await first.stop();

      // Act
      const second = await startDynalite({ path: dir, tableName: 'persisted' });
      const found = await new DynamoStore({ client: second.client, tableName: second.tableName }).getTenant(
        'kept',
      );
      await second.stop();

      // Assess
      expect(found?.name).toBe('Acme');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('keys', () => {
  it('are injective for any user id, including #, % and unicode', () => {
    const part = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.string({ unit: fc.constantFrom('#', '%', '2', '3', 'a', 'é', '\uD800', '\uDC00'), maxLength: 8 }),
    );
    fc.assert(
      fc.property(part, part, (a, b) => {
        if (a !== b) expect(keys.user('acme', a).pk).not.toBe(keys.user('acme', b).pk);
      }),
    );
    fc.assert(
      fc.property(part, part, part, part, (a, b, c, d) => {
        if (a !== c || b !== d) expect(key('IDEM', a, b)).not.toBe(key('IDEM', c, d));
      }),
    );
  });

  it('escape only the separator, the escape character and lone surrogates', () => {
    expect(escapeKeyPart('a#b%c')).toBe('a%23b%25c');
    expect(escapeKeyPart('zoë 🎉')).toBe('zoë 🎉');
    expect(escapeKeyPart('x\uD800')).toBe('x%uD800');
  });

  it('keep users with look-alike ids apart in the table', async () => {
    // Prepare
    const t = tenant();
    await store.createTenant(t);
    const ids = ['a#b', 'a%23b', 'a%2523b', 'a', 'a#', 'zoë', 'zoe\u0308', '🎉#%'];

    // Act
    for (const id of ids) await store.createUser(user(t.tenant_id, { user_id: id, display_name: id }));

    // Assess
    for (const id of ids) expect((await store.getUser(t.tenant_id, id))?.display_name).toBe(id);
  });
});

describe('DynamoStore tenants', () => {
  it('creates at version 1 and refuses a second create', async () => {
    // Prepare
    const t = tenant();

    // Act
    const created = await store.createTenant(t);

    // Assess
    expect(created.version).toBe(1);
    expect(await store.getTenant(t.tenant_id)).toEqual(created);
    expect(await conflictCode(store.createTenant(t))).toBe(StoreConflict.alreadyExists);
  });

  it('updates only at the expected version, and exactly one of two racing updates wins', async () => {
    // Prepare
    const t = await store.createTenant(tenant());

    // Act
    const results = await Promise.allSettled([
      store.updateTenant({ ...t, name: 'One' }, 1),
      store.updateTenant({ ...t, name: 'Two' }, 1),
    ]);

    // Assess
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await store.getTenant(t.tenant_id))?.version).toBe(2);
    expect(await conflictCode(store.updateTenant({ ...t, name: 'Stale' }, 1))).toBe(
      StoreConflict.versionConflict,
    );
    expect(await conflictCode(store.updateTenant(tenant(), 1))).toBe(StoreConflict.versionConflict);
  });

  it('deletes only at the expected version and releases its SIP trunks', async () => {
    // Prepare
    const trunk = uid('ST');
    const t = await store.createTenant(tenant({ sip_trunk_ids: [trunk] }));
    expect((await store.tenantBySipTrunk(trunk))?.tenant_id).toBe(t.tenant_id);

    // Act + Assess
    expect(await conflictCode(store.deleteTenant(t.tenant_id, 7))).toBe(StoreConflict.versionConflict);
    expect((await store.deleteTenant(t.tenant_id, 1))?.tenant_id).toBe(t.tenant_id);
    expect(await store.deleteTenant(t.tenant_id, 1)).toBeUndefined();
    expect(await store.tenantBySipTrunk(trunk)).toBeUndefined();
    expect(await store.createTenant(tenant({ sip_trunk_ids: [trunk] }))).toBeDefined();
  });

  it('keeps a SIP trunk with one tenant', async () => {
    // Prepare
    const trunk = uid('ST');
    const a = await store.createTenant(tenant({ sip_trunk_ids: [trunk] }));
    const other = uid('ST');

    // Act
    const code = await conflictCode(store.createTenant(tenant({ sip_trunk_ids: [other, trunk] })));

    // Assess: the refused tenant left no claim on the trunk it did get.
    expect(code).toBe(StoreConflict.sipTrunkTaken);
    expect((await store.tenantBySipTrunk(trunk))?.tenant_id).toBe(a.tenant_id);
    expect(await store.tenantBySipTrunk(other)).toBeUndefined();
    expect(await store.createTenant(tenant({ sip_trunk_ids: [other] }))).toBeDefined();
  });

  it('lists tenants in pages', async () => {
    // Prepare
    for (let i = 0; i < 5; i++) await store.createTenant(tenant());

    // Act
    const seen: string[] = [];
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await store.listTenants({ limit: 2, cursor });
      seen.push(...page.items.map((t) => t.tenant_id));
      cursor = page.cursor;
    } while (cursor !== undefined);

    // Assess
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(5);
  });
});

describe('DynamoStore users', () => {
  it('creates once per tenant; the same id in another tenant is another user', async () => {
    // Prepare
    const a = await store.createTenant(tenant());
    const b = await store.createTenant(tenant());
    const u = await store.createUser(user(a.tenant_id, { display_name: 'A' }));

    // Act + Assess (v3: users are keyed by (tenant, user id), docs/api.md §6)
    expect(await conflictCode(store.createUser(user(a.tenant_id, { user_id: u.user_id })))).toBe(
      StoreConflict.alreadyExists,
    );
    expect(await conflictCode(store.updateUser(user(b.tenant_id, { user_id: u.user_id }), 1))).toBe(
      StoreConflict.versionConflict,
    );
    const other = await store.createUser(user(b.tenant_id, { user_id: u.user_id, display_name: 'B' }));
    expect(other.tenant_id).toBe(b.tenant_id);
    expect((await store.getUser(a.tenant_id, u.user_id))?.display_name).toBe('A');
    expect((await store.getUser(b.tenant_id, u.user_id))?.display_name).toBe('B');
    expect((await store.deleteUser(b.tenant_id, u.user_id))?.tenant_id).toBe(b.tenant_id);
    expect((await store.getUser(a.tenant_id, u.user_id))?.tenant_id).toBe(a.tenant_id);
    expect(await store.getUser(b.tenant_id, u.user_id)).toBeUndefined();
  });

  it('updates at the expected version only', async () => {
    // Prepare
    const t = await store.createTenant(tenant());
    const u = await store.createUser(user(t.tenant_id));

    // Act
    const updated = await store.updateUser({ ...u, display_name: 'Alice' }, 1);

    // Assess
    expect(updated.version).toBe(2);
    expect((await store.getUser(t.tenant_id, u.user_id))?.display_name).toBe('Alice');
    expect(await conflictCode(store.updateUser({ ...u, display_name: 'Stale' }, 1))).toBe(
      StoreConflict.versionConflict,
    );
    expect(await conflictCode(store.deleteUser(t.tenant_id, u.user_id, 1))).toBe(
      StoreConflict.versionConflict,
    );
    expect((await store.deleteUser(t.tenant_id, u.user_id, 2))?.user_id).toBe(u.user_id);
  });

  it('keeps phone numbers unique and moves them with updates', async () => {
    // Prepare
    const t = await store.createTenant(tenant());
    const [p1, p2, p3] = ['+14155550101', '+14155550102', '+14155550103'].map((p) => `${p}${++seq}`) as [
      string,
      string,
      string,
    ];
    const alice = await store.createUser(user(t.tenant_id, { phone_numbers: [p1, p2] }));

    // Act + Assess: p2 is taken; p3, claimed before p2 was refused, is left unclaimed.
    expect(await conflictCode(store.createUser(user(t.tenant_id, { phone_numbers: [p3, p2] })))).toBe(
      StoreConflict.phoneNumberTaken,
    );
    expect(await store.userByPhoneNumber(t.tenant_id, p3)).toBeUndefined();
    expect((await store.userByPhoneNumber(t.tenant_id, p2))?.user_id).toBe(alice.user_id);

    // Act + Assess: alice drops p2 and adds p3; bob can now take p2 but not p3.
    await store.updateUser({ ...alice, phone_numbers: [p1, p3] }, 1);
    expect(await store.userByPhoneNumber(t.tenant_id, p2)).toBeUndefined();
    const bob = await store.createUser(user(t.tenant_id, { phone_numbers: [p2] }));
    expect((await store.userByPhoneNumber(t.tenant_id, p2))?.user_id).toBe(bob.user_id);
    expect(await conflictCode(store.updateUser({ ...bob, phone_numbers: [p2, p3] }, 1))).toBe(
      StoreConflict.phoneNumberTaken,
    );
    expect((await store.getUser(t.tenant_id, bob.user_id))?.phone_numbers).toEqual([p2]);

    // Act + Assess: deleting alice frees her numbers.
    await store.deleteUser(t.tenant_id, alice.user_id);
    expect(await store.userByPhoneNumber(t.tenant_id, p1)).toBeUndefined();
    await store.updateUser({ ...bob, phone_numbers: [p2, p3] }, 1);
    expect((await store.userByPhoneNumber(t.tenant_id, p3))?.user_id).toBe(bob.user_id);
  });

  it('gives a phone number to exactly one of 5 concurrent creators', async () => {
    // Prepare
    const t = await store.createTenant(tenant());
    const phone = `+1415556${++seq}`;

    // Act
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => store.createUser(user(t.tenant_id, { phone_numbers: [phone] }))),
    );

    // Assess
    const winners = results.filter((r) => r.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected')
        expect((r.reason as ConditionFailedError).code).toBe(StoreConflict.phoneNumberTaken);
    }
    expect((await store.userByPhoneNumber(t.tenant_id, phone))?.user_id).toBe(
      winners[0]?.status === 'fulfilled' && winners[0].value.user_id,
    );
  });

  it('takes over an orphaned phone claim only after the grace period', async () => {
    // Prepare: a claim whose owner never listed the number (a write that died midway).
    const t = await store.createTenant(tenant());
    const phone = `+1415555${++seq}`;
    await db.client.send(
      new PutCommand({
        TableName: db.tableName,
        Item: { ...keys.phone(t.tenant_id, phone), owner_id: 'ghost', claimed_at: Math.floor(T0 / 1000) },
      }),
    );

    // Act + Assess
    expect(await conflictCode(store.createUser(user(t.tenant_id, { phone_numbers: [phone] })))).toBe(
      StoreConflict.phoneNumberTaken,
    );
    now = T0 + 301_000;
    const u = await store.createUser(user(t.tenant_id, { phone_numbers: [phone] }));
    expect((await store.userByPhoneNumber(t.tenant_id, phone))?.user_id).toBe(u.user_id);
  });

  it('lists 120 users of a tenant in pages, and only that tenant', async () => {
    // Prepare
    const t = await store.createTenant(tenant());
    const other = await store.createTenant(tenant());
    await store.createUser(user(other.tenant_id));
    expect(await store.hasUsers(t.tenant_id)).toBe(false);
    const ids = Array.from({ length: 120 }, (_, i) => `user-${String(i).padStart(3, '0')}-${seq}`);
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map((id) => store.createUser(user(t.tenant_id, { user_id: id }))),
      );
    }

    // Act
    const seen: string[] = [];
    let pages = 0;
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await store.listUsers(t.tenant_id, { limit: 50, cursor });
      seen.push(...page.items.map((u) => u.user_id));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined);

    // Assess
    expect(seen).toEqual(ids);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(await store.hasUsers(t.tenant_id)).toBe(true);
    const first = (await store.listUsers(t.tenant_id, { limit: 1 })).items[0] as unknown as Record<
      string,
      unknown
    >;
    expect(Object.keys(first)).not.toContain('pk');
    expect(Object.keys(first)).not.toContain('gsi1pk');
  });
});

describe('DynamoStore claims', () => {
  const claimKey = () => ({ kind: 'event', id: uid('EV') }) as const;

  it('lets exactly one of 10 concurrent claimers win', async () => {
    // Prepare
    const k = claimKey();

    // Act
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () => store.tryClaim(k, { ttlSeconds: 3600 })),
    );

    // Assess
    const winners = attempts.filter((a) => a.won);
    expect(winners).toHaveLength(1);
    const losers = attempts.filter((a) => !a.won);
    for (const l of losers) if (!l.won) expect(l.current.owner).toBe(winners[0]?.won ? winners[0].owner : '');
  });

  it('lets a stale in-progress claim be taken over and returns it', async () => {
    // Prepare
    const k = claimKey();
    const first = await store.tryClaim(k, { ttlSeconds: 3600, holdSeconds: 30, attrs: { room: 'r1' } });

    // Act
    const early = await store.tryClaim(k, { ttlSeconds: 3600 });
    now += 31_000;
    const late = await store.tryClaim(k, { ttlSeconds: 3600 });

    // Assess
    expect(first.won).toBe(true);
    expect(early.won).toBe(false);
    expect(!early.won && early.current.state).toBe('in_progress');
    expect(late.won).toBe(true);
    expect(late.won && late.previous?.attrs).toEqual({ room: 'r1' });
    expect(late.won && late.previous?.stale).toBe(true);
  });

  it('never retakes a completed claim before its TTL, and does after it', async () => {
    // Prepare
    const k = claimKey();
    const first = await store.tryClaim(k, { ttlSeconds: 60, holdSeconds: 5 });
    if (!first.won) throw new Error('first claim lost');
    await store.completeClaim(k, first.owner, { dispatch_id: 'AD_9' }, 600);

    // Act
    now += 300_000;
    const during = await store.tryClaim(k, { ttlSeconds: 60 });
    now += 301_000;
    const after = await store.tryClaim(k, { ttlSeconds: 60 });

    // Assess
    expect(during.won).toBe(false);
    expect(!during.won && during.current).toMatchObject({
      state: 'completed',
      attrs: { dispatch_id: 'AD_9' },
    });
    expect(after.won).toBe(true);
    expect(after.won && after.previous?.state).toBe('completed');
  });

  it('treats a claim past its TTL as absent', async () => {
    // Prepare
    const k = claimKey();
    await store.tryClaim(k, { ttlSeconds: 10, holdSeconds: 60 });

    // Act
    now += 11_000;

    // Assess
    expect(await store.getClaim(k)).toBeUndefined();
    expect((await store.tryClaim(k, { ttlSeconds: 10 })).won).toBe(true);
  });

  it('is released and completed only by its owner', async () => {
    // Prepare
    const k = claimKey();
    const first = await store.tryClaim(k, { ttlSeconds: 3600, attrs: { body_hash: 'h1' } });
    if (!first.won) throw new Error('first claim lost');

    // Act + Assess
    expect(await store.releaseClaim(k, 'someone-else')).toBe(false);
    expect(await conflictCode(store.completeClaim(k, 'someone-else', {}, 60))).toBe(StoreConflict.claimLost);
    await store.updateClaim(k, first.owner, { room: 'r2' }, 120);
    expect((await store.getClaim(k))?.attrs).toEqual({ body_hash: 'h1', room: 'r2' });
    expect((await store.getClaim(k))?.lease_until).toBe(now + 120_000);
    expect(await store.releaseClaim(k, first.owner)).toBe(true);
    expect(await store.getClaim(k)).toBeUndefined();
    expect((await store.tryClaim(k, { ttlSeconds: 3600 })).won).toBe(true);
  });

  it('keeps dispatch claims per room, agent and participant apart', async () => {
    // Prepare
    const room = uid('room');

    // Act
    const perRoom = await store.tryClaim({ kind: 'dispatch', room, agent: 'agent' }, { ttlSeconds: 60 });
    const perAlice = await store.tryClaim(
      { kind: 'dispatch', room, agent: 'agent', participant: 'alice' },
      { ttlSeconds: 60 },
    );
    const perBob = await store.tryClaim(
      { kind: 'dispatch', room, agent: 'agent', participant: 'bob' },
      { ttlSeconds: 60 },
    );

    // Assess
    expect([perRoom.won, perAlice.won, perBob.won]).toEqual([true, true, true]);
  });
});

describe('DynamoStore leases', () => {
  it('holds at most max leases, and a released or expired slot is free again', async () => {
    // Prepare
    const t = uid('t');

    // Act
    const a = await store.acquireLease(t, 2, 'room-a', 60);
    const b = await store.acquireLease(t, 2, 'room-b', 60);
    const c = await store.acquireLease(t, 2, 'room-c', 60);

    // Assess
    expect(new Set([a, b])).toEqual(new Set([0, 1]));
    expect(c).toBeNull();
    expect(await store.releaseLease(t, a!, 'room-b')).toBe(false);
    expect(await store.releaseLease(t, a!, 'room-a')).toBe(true);
    expect(await store.acquireLease(t, 2, 'room-d', 60)).toBe(a);
    expect(await store.acquireLease(t, 2, 'room-e', 60)).toBeNull();
    now += 61_000;
    const retaken = [
      await store.acquireLease(t, 2, 'room-f', 60),
      await store.acquireLease(t, 2, 'room-g', 60),
    ];
    expect(new Set(retaken)).toEqual(new Set([0, 1]));
    // An expired holder cannot free the slot another holder now has.
    expect(await store.releaseLease(t, b!, 'room-b')).toBe(false);
    expect(await leaseHolders(t)).toEqual(['room-f', 'room-g']);
  });

  it('grants exactly 3 of 10 concurrent acquires with max 3', async () => {
    // Prepare
    const t = uid('t');

    // Act
    const slots = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.acquireLease(t, 3, `room-${i}`, 60)),
    );

    // Assess
    const granted = slots.filter((s) => s !== null);
    expect(granted).toHaveLength(3);
    expect(new Set(granted)).toEqual(new Set([0, 1, 2]));
  });
});

/** Holders of the tenant's lease items, read from the raw table. */
async function leaseHolders(tenantId: string): Promise<string[]> {
  const items = await db.scan();
  return items
    .filter((i) => i.pk === keys.leasePartition(tenantId))
    .map((i) => String(i.holder))
    .sort();
}

describe('DynamoStore rate limit', () => {
  it('allows limit hits per minute per user, then refuses until the next minute', async () => {
    // Prepare
    const u = uid('u');

    // Act
    const hits = await Promise.all(Array.from({ length: 5 }, () => store.hitRate('t1', u, 3)));
    const otherUser = await store.hitRate('t1', uid('u'), 3);
    now += 60_000;
    const nextMinute = await store.hitRate('t1', u, 3);

    // Assess
    expect(hits.filter(Boolean)).toHaveLength(3);
    expect(otherUser).toBe(true);
    expect(nextMinute).toBe(true);
    const counter = (await db.scan()).find((i) => i.pk === keys.rateWindow('t1', u).pk);
    expect(counter?.ttl).toBe(Math.floor((T0 + 60_000) / 1000) + 120);
  });

  it('a renewal admitted on a window read ahead: a stale read never admits past the limit', async () => {
    // Prepare: five windows read ahead while the session has no renewal yet
    const sid = uid('sid');
    const stale = await Promise.all(Array.from({ length: 5 }, () => store.renewalRateWindow(sid)));

    // Act: three admitted one by one on their read-ahead windows (each stale but the first: its
    // conditional put fails and it reads afresh), then two more on theirs (stale
    // by then), then one refused on a fresh read (nothing written), then the next minute
    const first = [];
    for (const seen of stale.slice(0, 3)) first.push(await store.hitRenewalRate(sid, 3, seen));
    const late = await Promise.all(stale.slice(3).map((seen) => store.hitRenewalRate(sid, 3, seen)));
    const before = (await db.scan()).find((i) => i.pk === keys.renewalRateWindow(sid).pk);
    const refused = await store.hitRenewalRate(sid, 3, await store.renewalRateWindow(sid));
    const after = (await db.scan()).find((i) => i.pk === keys.renewalRateWindow(sid).pk);
    now += 60_001;
    const nextMinute = await store.hitRenewalRate(sid, 3, await store.renewalRateWindow(sid));

    // Assess
    expect(first).toEqual([true, true, true]);
    expect(late).toEqual([false, false]);
    expect(refused).toBe(false);
    expect(after).toEqual(before);
    expect(nextMinute).toBe(true);
  });
});

describe('DynamoStore sessions', () => {
  it('ends a session once, with its duration, and drops it from the user’s active list', async () => {
    // Prepare
    const s = session({ user_id: uid('u'), tenant_id: uid('t') });
    await store.markSessionActive(s);
    await store.putSession(s);
    await store.putSession(s);
    expect(await store.activeSessionsOfUser(s.tenant_id, s.user_id)).toEqual([s]);
    expect(await store.activeSessionsOfUser(s.tenant_id, `${s.user_id}x`)).toEqual([]);
    expect(await store.activeSessionsOfTenant(s.tenant_id)).toEqual([s]);

    // Act
    const ended = await store.endSession(s, new Date(T0 + 95_400));
    const again = await store.endSession(s, new Date(T0 + 200_000));
    // Still listed until its room is gone and its marker removed (a retry resumes from here).
    expect(await store.activeSessionsOfUser(s.tenant_id, s.user_id)).toEqual([s]);
    await store.unmarkSessionActive(s);
    await store.unmarkSessionActive(s);

    // Assess
    expect(ended).toMatchObject({
      status: 'ended',
      duration_seconds: 95,
      ended_at: new Date(T0 + 95_400).toISOString(),
    });
    expect(again).toBeUndefined();
    expect(await store.roomSessions(s.room_name)).toEqual([ended]);
    expect(await store.activeSessionsOfUser(s.tenant_id, s.user_id)).toEqual([]);
    expect(await store.activeSessionsOfTenant(s.tenant_id)).toEqual([]);
    expect(await conflictCode(store.putSession(s))).toBe(StoreConflict.sessionEnded);
  });

  it('finds a user’s active sessions by exact user id, even with # in ids', async () => {
    // Prepare
    const tenantId = uid('t');
    const a = session({ tenant_id: tenantId, user_id: 'a', participant_identity: 'a' });
    const ab = session({ tenant_id: tenantId, user_id: 'a#b', participant_identity: 'a#b' });
    await store.markSessionActive(a);
    await store.markSessionActive(ab);

    // Act
    const ofA = await store.activeSessionsOfUser(tenantId, 'a');
    const ofAb = await store.activeSessionsOfUser(tenantId, 'a#b');

    // Assess
    expect(ofA).toEqual([a]);
    expect(ofAb).toEqual([ab]);
    expect(await store.activeSessionsOfTenant(tenantId)).toHaveLength(2);
  });

  it('keeps every participant’s session of a room and lists a tenant’s sessions newest first', async () => {
    // Prepare
    const tenantId = uid('t');
    const room = uid('room');
    const times = [0, 1, 2, 3].map((i) => new Date(T0 + i * 1000).toISOString());
    await store.putSession(
      session({ tenant_id: tenantId, room_name: room, participant_identity: 'a', created_at: times[0]! }),
    );
    await store.putSession(
      session({ tenant_id: tenantId, room_name: room, participant_identity: 'b', created_at: times[1]! }),
    );
    await store.putSession(session({ tenant_id: tenantId, created_at: times[2]! }));
    await store.putSession(session({ tenant_id: tenantId, created_at: times[3]! }));
    await store.putSession(session({ tenant_id: uid('t') }));

    // Act
    const first = await store.listSessions(tenantId, { limit: 3 });
    const rest = await store.listSessions(tenantId, { limit: 3, cursor: first.cursor });

    // Assess
    expect((await store.roomSessions(room)).map((s) => s.participant_identity).sort()).toEqual(['a', 'b']);
    expect([...first.items, ...rest.items].map((s) => s.created_at)).toEqual([...times].reverse());
    expect(rest.cursor).toBeUndefined();
  });

  it('writes a TTL on session items', async () => {
    // Prepare
    const s = session();

    // Act
    await store.putSession(s);

    // Assess
    const item = (await db.scan()).find((i) => i.pk === keys.roomPartition(s.room_name));
    expect(item?.ttl).toBe(Math.floor(T0 / 1000) + 90 * 24 * 3600);
  });
});

describe('DynamoStore audit', () => {
  const audit = (overrides: Partial<AuditRecord> = {}): AuditRecord => ({
    tenant_id: 'acme',
    target: 'user:alice',
    version: 1,
    actor: 'admin-1',
    action: 'create',
    changed_fields: ['display_name'],
    at: new Date(T0).toISOString(),
    ...overrides,
  });

  it('writes one record per target version and lists newest first', async () => {
    // Prepare
    const tenantId = uid('t');
    const first = audit({ tenant_id: tenantId });

    // Act
    const wrote = await store.putAudit(first);
    const rewrote = await store.putAudit({ ...first, actor: 'retry' });
    await store.putAudit(
      audit({ tenant_id: tenantId, version: 2, action: 'update', at: new Date(T0 + 1000).toISOString() }),
    );

    // Assess
    expect([wrote, rewrote]).toEqual([true, false]);
    expect(await store.getAudit(first.target, 1)).toEqual(first);
    expect(await store.getAudit(first.target, 3)).toBeUndefined();
    const page = await store.listAudit(tenantId);
    expect(page.items.map((a) => a.version)).toEqual([2, 1]);
  });
});

describe('DynamoStore errors', () => {
  it('turns an unreachable store into StoreUnavailableError after retries', async () => {
    // Prepare: a port nothing listens on.
    const client = createDynamoClient({
      endpoint: 'http://127.0.0.1:9',
      maxAttempts: 2,
      requestTimeoutMs: 500,
    });
    const broken = new DynamoStore({ client, tableName: 'x-table' });

    // Act + Assess
    await expect(broken.getTenant('acme')).rejects.toBeInstanceOf(StoreUnavailableError);
    client.destroy();
  });

  it('turns a request timeout into StoreUnavailableError', async () => {
    // Prepare: a server that accepts and never answers.
    const { createServer } = await import('node:http');
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = createDynamoClient({
      endpoint: `http://127.0.0.1:${port}`,
      maxAttempts: 2,
      requestTimeoutMs: 200,
    });

    // Act
    const started = Date.now();
    const error = await new DynamoStore({ client, tableName: 'x-table' })
      .getUser('acme', 'alice')
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(5000);
    client.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('is the same table the raw client sees (no hidden prefixes)', async () => {
    // Prepare
    const t = await store.createTenant(tenant());
    const raw = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: db.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      }),
    );

    // Act
    const item = await raw.send(
      new GetItemCommand({
        TableName: db.tableName,
        Key: { pk: { S: `TENANT#${t.tenant_id}` }, sk: { S: 'TENANT' } },
      }),
    );

    // Assess
    expect(item.Item?.name?.S).toBe('Acme');
    raw.destroy();
  });
});
