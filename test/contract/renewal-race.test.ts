import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../functions/adapters/schema.js';
import { type AdminService, createAdminService } from '../../functions/core/admin.js';
import { silentLog } from '../../functions/core/log.js';
import { holderOf } from '../../functions/core/session-resources.js';
import { type Harness, startHarness, storeOver } from '../support/fixtures.js';
import { type HoldProxy, interleavings, namesKey, startHoldProxy } from '../support/hold-proxy.js';
import { type RenewalRig, renew, renewalRig, startSession } from '../support/renewal.js';

// docs/api.md §9, §10: a renewal racing a revoke never hands out credentials once the revoke has
// answered, and never brings back the lease the revoke released. The renewal writes its jti and
// rate window, then re-reads session, user and tenant while it extends its lease (write-then-check,
// functions/core/renewal.ts); the
// revoke writes the user's status, then ends the session and frees its lease. The two flows talk
// to dynalite through their own hold proxies; their critical steps are released in every order.

let h: Harness;
let renewalSide: HoldProxy;
let adminSide: HoldProxy;
let rig: RenewalRig;
let admin: AdminService;

const superadmin = { sub: 'ops', superadmin: true, tenantId: undefined };

beforeAll(async () => {
  h = await startHarness();
  [renewalSide, adminSide] = await Promise.all([
    startHoldProxy(h.db.endpoint),
    startHoldProxy(h.db.endpoint),
  ]);
  rig = renewalRig(h, { store: storeOver(h, renewalSide.url) });
  admin = createAdminService({
    store: storeOver(h, adminSide.url),
    secretBox: h.secretBox,
    livekit: h.gateway,
    urlGuard: {
      allowedPorts: [],
      allowInsecure: false,
      resolve: async () => [{ address: '93.184.216.34', family: 4 }],
    },
    clock: () => new Date(),
    log: silentLog,
    cascadeBudgetMs: 20_000,
  });
}, 30_000);

afterAll(async () => {
  await Promise.all([renewalSide?.stop(), adminSide?.stop()]);
  await h?.stop();
});

const renewalSteps = ['renewal: extend lease', 'renewal: re-read user'];
const revokeSteps = ['revoke: write user', 'revoke: end session'];

describe('§10 a renewal racing a revoke', () => {
  // The renewal extends its lease and re-reads its user at the same time, so both of its orders
  // are possible: 6 interleavings each.
  const orders = [
    ...interleavings(renewalSteps, revokeSteps),
    ...interleavings([...renewalSteps].reverse(), revokeSteps),
  ];

  it('enumerates all 12 orders of the four critical steps', () => {
    expect(orders).toHaveLength(12);
    expect(new Set(orders.map((o) => o.join()))).toHaveProperty('size', 12);
  });

  for (const order of orders) {
    it(order.join(' → '), async () => {
      // Prepare: a live session holding a lease; both flows run up to their first critical step.
      const s = await startSession(h, rig, { maxConcurrentSessions: 3 });
      const { tenantId, userId } = s;
      const gates = new Map([
        [
          'renewal: extend lease',
          renewalSide.gate('renewal: extend lease', {
            operation: 'UpdateItem',
            body: namesKey('pk', keys.lease(tenantId, 0).pk),
          }),
        ],
        [
          // The first read of the user is the early refusal; the second is the check after the writes.
          'renewal: re-read user',
          renewalSide.gate('renewal: re-read user', {
            operation: 'GetItem',
            body: namesKey('pk', keys.user(tenantId, userId).pk),
            skip: 1,
          }),
        ],
        [
          'revoke: write user',
          adminSide.gate('revoke: write user', {
            operation: 'PutItem',
            body: namesKey('pk', keys.user(tenantId, userId).pk),
          }),
        ],
        [
          'revoke: end session',
          adminSide.gate('revoke: end session', {
            operation: 'UpdateItem',
            body: namesKey('pk', keys.roomPartition(s.session.room_name)),
          }),
        ],
      ]);

      // Act
      const renewal = renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
      await gates.get('renewal: extend lease')!.arrived();
      const revoke = admin.revokeUser(superadmin, tenantId, userId);
      await gates.get('revoke: write user')!.arrived();
      const settled = Promise.allSettled([renewal, revoke]);
      for (const name of order) await gates.get(name)!.release();
      await settled;
      await renewalSide.openAll();
      await adminSide.openAll();

      // Assess: credentials only when the renewal's check came before the revoke's first write, so
      // before the revoke answered; never a lease of the revoked session left behind.
      await expect(revoke).resolves.toMatchObject({ done: true });
      const answer = await renewal;
      const checkedFirst = order.indexOf('renewal: re-read user') < order.indexOf('revoke: write user');
      expect(answer.status).toBe(checkedFirst ? 200 : 403);
      if (!checkedFirst) expect(answer.json.code).toBe('session_ended');
      const holder = holderOf(s.session.room_name, s.session.agent_name, s.session.participant_identity);
      const leases = (await h.db.scan()).filter(
        (i) => String(i.pk) === keys.leasePartition(tenantId) && i.holder === holder,
      );
      expect(leases, 'a lease of the revoked session survived').toEqual([]);
      expect((await h.store.roomSessions(s.session.room_name))[0]?.status).toBe('ended');
      // Once the revoke has answered, every renewal is refused.
      const after = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
      expect(after.status).toBe(403);
    });
  }
});
