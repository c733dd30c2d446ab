import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWebhookApp, type WebhookAppDeps } from '../../functions/webhook/app.js';
import {
  type Harness,
  participantJoined,
  seedTenant,
  seedUser,
  signWebhookBody,
  startHarness,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';

// docs/api.md §5 with v3's identity per tenant: a room `<prefix><tenant>-<anything>` belongs to
// the longest existing tenant id that fits, the user is the identity within that tenant, and a
// SIP caller is the number within the trunk's tenant.

let h: Harness;
let app: ReturnType<typeof createWebhookApp>;

const CONFIG: WebhookAppDeps['config'] = {
  defaultAgentName: 'mcp-agent',
  metadataTtlSeconds: 7200,
  webhookRoomPrefix: 'lk-mcp-',
  livekit: TEST_LIVEKIT,
};

beforeAll(async () => {
  h = await startHarness();
  app = createWebhookApp({
    store: h.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    config: CONFIG,
  });
});
afterAll(async () => {
  await h.stop();
});
beforeEach(() => {
  h.livekitServer.reset();
});

async function send(body: string): Promise<{ status: number; action?: string }> {
  const signed = await signWebhookBody(body, TEST_LIVEKIT);
  const res = await app.request('/v1/livekit/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/webhook+json', authorization: signed.authorization },
    body: signed.body,
  });
  return { status: res.status, ...((await res.json()) as { action?: string }) };
}

const tenantId = (prefix: string) => uid(prefix).toLowerCase();

function join(roomName: string, identity: string, attributes?: Record<string, string>) {
  h.livekitServer.addRoom(roomName);
  return send(
    participantJoined({
      roomName,
      identity,
      ...(attributes === undefined ? {} : { kind: 'SIP', attributes }),
    }),
  );
}

async function grantOf(roomName: string) {
  const dispatch = h.livekitServer.dispatches.find((d) => d.room === roomName);
  expect(dispatch, `no dispatch in ${roomName}`).toBeDefined();
  return openDispatchMetadata(dispatch!.metadata, {
    keyring: h.dispatchKeys,
    agentName: 'mcp-agent',
    roomName,
  });
}

describe('webhook: the room names its tenant, the identity is a user of that tenant', () => {
  it('dispatches as the longest existing tenant; the same id in a shorter tenant is another user', async () => {
    // Prepare: tenants `<x>` and `<x>-corp`, one user id in both, each with its own MCP URL.
    const short = tenantId('w');
    const long = `${short}-corp`;
    const sub = uid('same');
    for (const [t, n] of [
      [short, 1],
      [long, 2],
    ] as const) {
      await seedTenant(h.store, h.secretBox, { tenant_id: t, webhook_dispatch: true });
      await seedUser(h.store, h.secretBox, {
        tenant_id: t,
        user_id: sub,
        mcp: { url: `https://mcp.example.com/${n}` },
      });
    }
    const inLong = `lk-mcp-${long}-${uid('r')}`;
    const inShort = `lk-mcp-${short}-daily-${uid('r')}`;

    // Act
    const a = await join(inLong, sub);
    const b = await join(inShort, sub);

    // Assess
    expect(a).toMatchObject({ status: 200, action: 'dispatched' });
    expect(b).toMatchObject({ status: 200, action: 'dispatched' });
    const longGrant = await grantOf(inLong);
    expect(longGrant).toMatchObject({ tenantId: long, userId: sub });
    expect(longGrant.mcpServers[0]?.url).toBe('https://mcp.example.com/2');
    const shortGrant = await grantOf(inShort);
    expect(shortGrant).toMatchObject({ tenantId: short, userId: sub });
    expect(shortGrant.mcpServers[0]?.url).toBe('https://mcp.example.com/1');
    expect((await h.store.roomSessions(inLong)).map((s) => s.tenant_id)).toEqual([long]);
  });

  it('never dispatches a participant of another tenant, nor in a room that names no tenant', async () => {
    // Prepare: `<x>` (webhook) has the user; `<x>-b` (webhook) does not; `<x>-off` has no webhook dispatch.
    const own = tenantId('o');
    await seedTenant(h.store, h.secretBox, { tenant_id: own, webhook_dispatch: true });
    await seedTenant(h.store, h.secretBox, { tenant_id: `${own}-b`, webhook_dispatch: true });
    await seedTenant(h.store, h.secretBox, { tenant_id: `${own}-off`, webhook_dispatch: false });
    const user = await seedUser(h.store, h.secretBox, {
      tenant_id: own,
      mcp: { url: 'https://mcp.example.com/o' },
    });

    // Act
    const foreign = await join(`lk-mcp-${own}-b-${uid('r')}`, user.user_id);
    const offTenant = await join(`lk-mcp-${own}-off-${uid('r')}`, user.user_id);
    const noTenant = await join(`lk-mcp-${tenantId('nosuch')}-${uid('r')}`, user.user_id);
    const noDash = await join(`lk-mcp-${own}`, user.user_id);
    const home = await join(`lk-mcp-${own}-${uid('r')}`, user.user_id);

    // Assess
    expect(foreign).toMatchObject({ status: 200, action: 'ignored' });
    expect(offTenant).toMatchObject({ status: 200, action: 'ignored' });
    expect(noTenant).toMatchObject({ status: 200, action: 'ignored' });
    expect(noDash).toMatchObject({ status: 200, action: 'ignored' });
    expect(home).toMatchObject({ status: 200, action: 'dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
  });
});

describe('§10 one room belongs to one tenant, under concurrent joins', () => {
  it('two tenants’ participants joining one room at once: only the room’s tenant gets an agent', async () => {
    // Prepare: per-participant dispatch, so a second participant could get a dispatch of its own.
    const a = tenantId('ra');
    const b = tenantId('rb');
    for (const id of [a, b]) {
      await seedTenant(h.store, h.secretBox, {
        tenant_id: id,
        webhook_dispatch: true,
        dispatch_policy: 'per_participant',
      });
    }
    const ua = await seedUser(h.store, h.secretBox, {
      tenant_id: a,
      mcp: { url: 'https://mcp.example.com/a' },
    });
    const ub = await seedUser(h.store, h.secretBox, {
      tenant_id: b,
      mcp: { url: 'https://mcp.example.com/b' },
    });

    for (let round = 0; round < 8; round++) {
      const room = `lk-mcp-${a}-${uid('r')}`;
      h.livekitServer.reset();
      // Act: both joins in flight at once, in both orders of sending.
      const joins = round % 2 === 0 ? [ua.user_id, ub.user_id] : [ub.user_id, ua.user_id];
      const results = await Promise.all(joins.map((identity) => join(room, identity)));

      // Assess: A's participant dispatched, B's ignored; one dispatch, sealed for tenant A's user.
      const byIdentity = Object.fromEntries(joins.map((identity, i) => [identity, results[i]]));
      expect(byIdentity[ua.user_id]).toMatchObject({ status: 200, action: 'dispatched' });
      expect(byIdentity[ub.user_id]).toMatchObject({ status: 200, action: 'ignored' });
      expect(h.livekitServer.dispatches.filter((d) => d.room === room)).toHaveLength(1);
      expect(await grantOf(room)).toMatchObject({
        tenantId: a,
        userId: ua.user_id,
        participantIdentity: ua.user_id,
      });
    }
  });
});

describe('webhook: SIP callers are found within the trunk’s tenant', () => {
  it('one number in two tenants: the trunk decides whose user calls', async () => {
    // Prepare
    const phone = `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const seeded = [];
    for (const n of [1, 2]) {
      const trunk = `ST_${uid('trunk')}`;
      const tenant = await seedTenant(h.store, h.secretBox, { sip_trunk_ids: [trunk] });
      const user = await seedUser(h.store, h.secretBox, {
        tenant_id: tenant.tenant_id,
        phone_numbers: [phone],
        mcp: { url: `https://sip.example.com/${n}` },
      });
      seeded.push({ trunk, tenant, user });
    }
    const room = `call-${uid('r')}`;

    // Act
    const res = await join(room, `sip_${phone}`, {
      'sip.trunkID': seeded[1]!.trunk,
      'sip.phoneNumber': phone.slice(1),
    });

    // Assess
    expect(res).toMatchObject({ status: 200, action: 'dispatched' });
    const grant = await grantOf(room);
    expect(grant).toMatchObject({ tenantId: seeded[1]!.tenant.tenant_id, userId: seeded[1]!.user.user_id });
    expect(grant.mcpServers[0]?.url).toBe('https://sip.example.com/2');
  });

  it("a number known only in another tenant is ignored on this tenant's trunk", async () => {
    // Prepare
    const phone = `+1556${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const trunk = `ST_${uid('trunk')}`;
    await seedTenant(h.store, h.secretBox, { sip_trunk_ids: [trunk] });
    const other = await seedTenant(h.store, h.secretBox);
    await seedUser(h.store, h.secretBox, {
      tenant_id: other.tenant_id,
      phone_numbers: [phone],
      mcp: { url: 'https://x.example.com/' },
    });

    // Act
    const res = await join(`call-${uid('r')}`, `sip_${phone}`, {
      'sip.trunkID': trunk,
      'sip.phoneNumber': phone,
    });

    // Assess
    expect(res).toMatchObject({ status: 200, action: 'ignored' });
    expect(h.livekitServer.dispatches).toHaveLength(0);
  });
});
