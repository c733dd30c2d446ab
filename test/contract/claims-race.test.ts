import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { keys } from '../../functions/adapters/schema.js';
import { ConditionFailedError } from '../../functions/core/errors.js';
import { StoreConflict } from '../../functions/core/ports.js';
import { type Harness, startHarness, storeOver, uid } from '../support/fixtures.js';
import { type HoldProxy, interleavings, namesKey, startHoldProxy } from '../support/hold-proxy.js';
import { tenantRecord, userRecord } from '../support/records.js';

// docs/api.md §10: "a uniqueness claim (phone number, SIP trunk) is held by the record that lists
// it". Two write attempts race through their own hold proxies; their critical requests are
// released in every order that keeps each attempt's own order (unique-claims.ts has the argument).

let h: Harness;
let sideA: HoldProxy;
let sideB: HoldProxy;
let storeA: DynamoStore;
let storeB: DynamoStore;

beforeAll(async () => {
  h = await startHarness();
  [sideA, sideB] = await Promise.all([startHoldProxy(h.db.endpoint), startHoldProxy(h.db.endpoint)]);
  storeA = storeOver(h, sideA.url);
  storeB = storeOver(h, sideB.url);
}, 30_000);

afterAll(async () => {
  await Promise.all([sideA?.stop(), sideB?.stop()]);
  await h?.stop();
});

type Gates = Map<string, { release(): Promise<void> }>;

async function runInOrder(order: string[], gates: Gates, flows: Promise<unknown>[]) {
  const settled = Promise.allSettled(flows);
  for (const name of order) await gates.get(name)?.release();
  const results = await settled;
  await sideA.openAll();
  await sideB.openAll();
  return results;
}

const tenantIdOf = () => uid('c').toLowerCase();
let phoneSeq = 1000;
const phones = (n: number) =>
  Array.from({ length: n }, () => `+1415777${String(++phoneSeq).padStart(4, '0')}`);

/** The claim item of a value, read strongly consistent straight from the table. */
async function claimItem(key: { pk: string; sk: string }) {
  return (
    await h.db.client.send(new GetCommand({ TableName: h.db.tableName, Key: key, ConsistentRead: true }))
  ).Item;
}

const codeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'fulfilled'
    ? 'ok'
    : r.reason instanceof ConditionFailedError
      ? r.reason.code
      : String(r.reason);

describe('§10 two PUTs of one user with the same If-Match: the loser never frees the winner’s number', () => {
  const stepsA = ['A: stamp P', 'A: write user'];
  const stepsB = ['B: stamp P', 'B: write user'];
  const orders = interleavings(stepsA, stepsB);

  it('enumerates all 6 orders', () => expect(orders).toHaveLength(6));

  for (const order of orders) {
    it(order.join(' → '), async () => {
      // Prepare: one user at v1; A sets P and 9 more numbers, B sets P alone, both at If-Match 1.
      const t = tenantIdOf();
      await h.store.createTenant(tenantRecord({ tenant_id: t }));
      const user = await h.store.createUser(userRecord(t, { user_id: uid('u') }));
      const [p, ...nine] = phones(10) as [string, ...string[]];
      const phoneKey = (n: string) => keys.phone(t, n);
      const userKey = keys.user(t, user.user_id);
      const gates: Gates = new Map([
        [
          'A: stamp P',
          sideA.gate('A: stamp P', { operation: 'PutItem', body: namesKey('pk', phoneKey(p).pk) }),
        ],
        [
          'A: write user',
          sideA.gate('A: write user', { operation: 'PutItem', body: namesKey('pk', userKey.pk) }),
        ],
        [
          'B: stamp P',
          sideB.gate('B: stamp P', { operation: 'PutItem', body: namesKey('pk', phoneKey(p).pk) }),
        ],
        [
          'B: write user',
          sideB.gate('B: write user', { operation: 'PutItem', body: namesKey('pk', userKey.pk) }),
        ],
      ]);

      // Act
      const [a, b] = await runInOrder(order, gates, [
        storeA.updateUser({ ...user, phone_numbers: [p, ...nine] }, 1),
        storeB.updateUser({ ...user, phone_numbers: [p] }, 1),
      ]);

      // Assess: one wins, the other is a version conflict; the stored record is the winner's.
      expect([codeOf(a!), codeOf(b!)].sort()).toEqual(['ok', StoreConflict.versionConflict].sort());
      const stored = (await h.store.getUser(t, user.user_id))!;
      expect(stored.phone_numbers).toEqual(codeOf(a!) === 'ok' ? [p, ...nine] : [p]);
      // Every number the record lists is claimed by it; every other one of the ten is free.
      for (const n of [p, ...nine]) {
        const claim = await claimItem(phoneKey(n));
        if (stored.phone_numbers.includes(n)) expect(claim?.owner_id, n).toBe(user.user_id);
        else expect(claim, `${n} left claimed`).toBeUndefined();
      }
      // Another user of the tenant cannot take P.
      const thief = await h.store
        .createUser(userRecord(t, { user_id: uid('w'), phone_numbers: [p] }))
        .catch((e: unknown) => e);
      expect((thief as ConditionFailedError).code).toBe(StoreConflict.phoneNumberTaken);
    });
  }
});

describe('§10 a write dropping a number vs the next write adding it back', () => {
  const orders = interleavings(['C: release P'], ['D: stamp P', 'D: write user']);

  for (const order of orders) {
    it(order.join(' → '), async () => {
      // Prepare: the user lists P at v1; C drops it (v2); D, having read v2, adds it back (v3).
      const t = tenantIdOf();
      await h.store.createTenant(tenantRecord({ tenant_id: t }));
      const [p] = phones(1) as [string];
      const user = await h.store.createUser(userRecord(t, { user_id: uid('u'), phone_numbers: [p] }));
      const phoneKey = keys.phone(t, p);
      const userKey = keys.user(t, user.user_id);
      const release = sideA.gate('C: release P', {
        operation: 'DeleteItem',
        body: namesKey('pk', phoneKey.pk),
      });
      const gates: Gates = new Map([
        ['C: release P', release],
        ['D: stamp P', sideB.gate('D: stamp P', { operation: 'PutItem', body: namesKey('pk', phoneKey.pk) })],
        [
          'D: write user',
          sideB.gate('D: write user', { operation: 'PutItem', body: namesKey('pk', userKey.pk) }),
        ],
      ]);
      const c = storeA.updateUser({ ...user, phone_numbers: [] }, 1);
      // C's release is held only after its write answered: D reads v2.
      await release.arrived();
      const d = storeB.updateUser({ ...user, phone_numbers: [p] }, 2);

      // Act
      const [cr, dr] = await runInOrder(order, gates, [c, d]);

      // Assess
      expect([codeOf(cr!), codeOf(dr!)]).toEqual(['ok', 'ok']);
      expect((await h.store.getUser(t, user.user_id))?.phone_numbers).toEqual([p]);
      expect((await claimItem(phoneKey))?.owner_id).toBe(user.user_id);
      expect((await h.store.userByPhoneNumber(t, p))?.user_id).toBe(user.user_id);
    });
  }
});

describe('§10 SIP trunks: unique across tenants, never freed by a losing write', () => {
  const orders = interleavings(['A: stamp S', 'A: write tenant'], ['B: stamp S', 'B: write tenant']);

  for (const order of orders) {
    it(`two PUTs of one tenant with the same If-Match: ${order.join(' → ')}`, async () => {
      // Prepare
      const tenant = await h.store.createTenant(tenantRecord({ tenant_id: tenantIdOf() }));
      const [s, ...nine] = Array.from({ length: 10 }, (_, i) => `ST_${uid('s')}_${i}`) as [
        string,
        ...string[],
      ];
      const tenantKey = keys.tenant(tenant.tenant_id);
      const gates: Gates = new Map([
        [
          'A: stamp S',
          sideA.gate('A: stamp S', { operation: 'PutItem', body: namesKey('pk', keys.sipTrunk(s).pk) }),
        ],
        [
          'A: write tenant',
          sideA.gate('A: write tenant', { operation: 'PutItem', body: namesKey('pk', tenantKey.pk) }),
        ],
        [
          'B: stamp S',
          sideB.gate('B: stamp S', { operation: 'PutItem', body: namesKey('pk', keys.sipTrunk(s).pk) }),
        ],
        [
          'B: write tenant',
          sideB.gate('B: write tenant', { operation: 'PutItem', body: namesKey('pk', tenantKey.pk) }),
        ],
      ]);

      // Act
      const [a, b] = await runInOrder(order, gates, [
        storeA.updateTenant({ ...tenant, sip_trunk_ids: [s, ...nine] }, 1),
        storeB.updateTenant({ ...tenant, sip_trunk_ids: [s] }, 1),
      ]);

      // Assess
      expect([codeOf(a!), codeOf(b!)].sort()).toEqual(['ok', StoreConflict.versionConflict].sort());
      const stored = (await h.store.getTenant(tenant.tenant_id))!;
      for (const trunk of [s, ...nine]) {
        const claim = await claimItem(keys.sipTrunk(trunk));
        if (stored.sip_trunk_ids.includes(trunk)) expect(claim?.owner_id).toBe(tenant.tenant_id);
        else expect(claim).toBeUndefined();
      }
      const other = await h.store
        .createTenant(tenantRecord({ tenant_id: tenantIdOf(), sip_trunk_ids: [s] }))
        .catch((e: unknown) => e);
      expect((other as ConditionFailedError).code).toBe(StoreConflict.sipTrunkTaken);
      expect((await h.store.tenantBySipTrunk(s))?.tenant_id).toBe(tenant.tenant_id);
    });
  }

  for (const first of ['A', 'B']) {
    it(`two tenants adding one trunk at once: exactly one holds it (${first} stamps first)`, async () => {
      // Prepare
      const x = await h.store.createTenant(tenantRecord({ tenant_id: tenantIdOf() }));
      const y = await h.store.createTenant(tenantRecord({ tenant_id: tenantIdOf() }));
      const s = `ST_${uid('x')}`;
      const gates: Gates = new Map([
        ['A', sideA.gate('A', { operation: 'PutItem', body: namesKey('pk', keys.sipTrunk(s).pk) })],
        ['B', sideB.gate('B', { operation: 'PutItem', body: namesKey('pk', keys.sipTrunk(s).pk) })],
      ]);

      // Act
      const [a, b] = await runInOrder(first === 'A' ? ['A', 'B'] : ['B', 'A'], gates, [
        storeA.updateTenant({ ...x, sip_trunk_ids: [s] }, 1),
        storeB.updateTenant({ ...y, sip_trunk_ids: [s] }, 1),
      ]);

      // Assess: the first stamp wins; the other is 409 sip_trunk_taken and its record is unchanged.
      const winner = first === 'A' ? x : y;
      const loser = first === 'A' ? y : x;
      expect([codeOf(a!), codeOf(b!)]).toEqual(
        first === 'A' ? ['ok', StoreConflict.sipTrunkTaken] : [StoreConflict.sipTrunkTaken, 'ok'],
      );
      expect((await h.store.tenantBySipTrunk(s))?.tenant_id).toBe(winner.tenant_id);
      expect((await h.store.getTenant(loser.tenant_id))?.sip_trunk_ids).toEqual([]);
      expect((await claimItem(keys.sipTrunk(s)))?.owner_id).toBe(winner.tenant_id);
    });
  }
});
