import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { participantJoined, seedTenant, seedUser, uid } from '../support/fixtures.js';
import { itemsOfKind, type Stack, seedUserWithJwt, sendWebhook, startSession, startStack } from './stack.js';

// The session and webhook functions run with a 25 s Lambda timeout (infra/context.ts); the
// LiveKit gateway's per-call timeout is 4 s (adapters/livekit.ts, as compose.ts builds it). One
// hung call must be answered well inside 10 s; the worst double fault inside the Lambda timeout.
const SINGLE_FAULT_BUDGET_MS = 10_000;
const LAMBDA_TIMEOUT_MS = 25_000;
const LIVEKIT_TIMEOUT_MS = 4_000;

let s: Stack;

beforeAll(async () => {
  s = await startStack();
});
afterAll(async () => {
  await s?.stop();
});
beforeEach(() => {
  s.livekit.reset();
  s.dynamoProxy.clear();
});

/** A tenant limited to one concurrent session, with one user who has an MCP URL and token. */
function limitedTenant(extra: Parameters<typeof seedTenant>[2] = {}) {
  return seedUserWithJwt(s, { max_concurrent_sessions: 1, ...extra });
}

/** What the table holds for one tenant and room that a failed request must not leave. */
async function leftovers(tenantId: string, roomName?: string) {
  const items = await s.db.scan();
  const leases = itemsOfKind(items, 'LEASE').filter((i) => String(i.pk).includes(tenantId));
  const claims = itemsOfKind(items, 'DISPATCH').filter(
    (i) => roomName === undefined || String(i.pk).includes(roomName),
  );
  const activeSessions = itemsOfKind(items, 'ROOM').filter(
    (i) => i.tenant_id === tenantId && i.status === 'active',
  );
  return { leases, claims, activeSessions };
}

describe('deadlines: LiveKit hangs during POST /v1/sessions', () => {
  it('CreateDispatch never answers → 502 livekit_unavailable within the budget, lease free, no dispatch', async () => {
    // Prepare
    const { tenant, jwt } = await limitedTenant();
    s.livekit.failNext(1, 'hang');

    // Act
    const res = await startSession(s, jwt);

    // Assess
    expect(res.status, res.text).toBe(502);
    expect(res.json.code).toBe('livekit_unavailable');
    expect(res.ms).toBeGreaterThanOrEqual(LIVEKIT_TIMEOUT_MS - 200);
    expect(res.ms).toBeLessThan(SINGLE_FAULT_BUDGET_MS);
    expect(s.livekit.dispatches).toEqual([]);
    const left = await leftovers(tenant.tenant_id);
    expect(left.activeSessions).toEqual([]);
    expect(left.claims.filter((c) => String(c.pk).includes(tenant.tenant_id))).toEqual([]);
    expect(left.leases).toEqual([]);
    // The one lease is free again: the next session starts.
    const again = await startSession(s, jwt);
    expect(again.status, again.text).toBe(201);
  });

  it('CreateDispatch takes effect but its answer never comes → the dispatch is found and deleted, 502', async () => {
    // Prepare
    const { tenant, jwt } = await limitedTenant();
    s.livekit.failNext(1, 'apply-then-hang');

    // Act
    const res = await startSession(s, jwt);

    // Assess
    expect(res.status, res.text).toBe(502);
    expect(res.ms).toBeLessThan(SINGLE_FAULT_BUDGET_MS);
    const created = s.livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');
    expect(created).toHaveLength(1);
    expect(s.livekit.calls.map((c) => c.rpc)).toContain('AgentDispatchService/DeleteDispatch');
    expect(s.livekit.dispatches).toEqual([]);
    const left = await leftovers(tenant.tenant_id);
    expect(left.activeSessions).toEqual([]);
    const again = await startSession(s, jwt);
    expect(again.status, again.text).toBe(201);
    expect(s.livekit.dispatches).toHaveLength(1);
  });

  it('CreateDispatch applied but unanswered, and the cleanup hangs too → 502 inside the Lambda timeout, lease free', async () => {
    // Prepare
    const { tenant, jwt } = await limitedTenant();
    s.livekit.failNext(2, 'apply-then-hang');

    // Act
    const res = await startSession(s, jwt);

    // Assess
    expect(res.status, res.text).toBe(502);
    expect(res.ms).toBeGreaterThanOrEqual(2 * LIVEKIT_TIMEOUT_MS - 200);
    expect(res.ms).toBeLessThan(LAMBDA_TIMEOUT_MS);
    const left = await leftovers(tenant.tenant_id);
    expect(left.activeSessions).toEqual([]);
    expect(left.leases).toEqual([]);
    // A session's fresh random room takes no dispatch claim, and is never retried (the next
    // request names a new one), so the one residual is an agent in an empty room until LiveKit
    // closes it (see RELIABILITY.md).
    expect(left.claims.filter((c) => String(c.pk).includes(tenant.tenant_id))).toEqual([]);
    expect((await startSession(s, jwt)).status).toBe(201);
  });

  it('a reset connection or a garbage answer → 502 at once, nothing left', async () => {
    for (const mode of ['reset', 'garbage', '503'] as const) {
      // Prepare
      s.livekit.reset();
      const { tenant, jwt } = await limitedTenant();
      s.livekit.failNext(1, mode);

      // Act
      const res = await startSession(s, jwt);

      // Assess
      expect(res.status, `${mode}: ${res.text}`).toBe(502);
      expect(res.ms, mode).toBeLessThan(LIVEKIT_TIMEOUT_MS);
      expect(s.livekit.dispatches, mode).toEqual([]);
      expect((await leftovers(tenant.tenant_id)).activeSessions, mode).toEqual([]);
      expect((await startSession(s, jwt)).status, mode).toBe(201);
    }
  });
});

describe('deadlines: LiveKit hangs during a participant_joined webhook', () => {
  it("503 within the budget, no claim left; LiveKit's retry dispatches exactly once", async () => {
    // Prepare
    const { store, secretBox } = s.server.services;
    const tenant = await seedTenant(store, secretBox, { webhook_dispatch: true, max_concurrent_sessions: 1 });
    const user = await seedUser(store, secretBox, {
      tenant_id: tenant.tenant_id,
      mcp: { url: 'https://mcp.example.com/w', token: `tok-${uid('x')}` },
    });
    const room = `lk-mcp-${tenant.tenant_id}-${uid('r')}`;
    s.livekit.addRoom(room);
    const eventId = `EV_${uid('e')}`;
    const body = participantJoined({ id: eventId, roomName: room, identity: user.user_id });
    const deliver = () => sendWebhook(s, body);
    s.livekit.failNext(1, 'hang');

    // Act
    const first = await deliver();
    const afterFirst = await s.db.scan();
    const retry = await deliver();
    const again = await deliver();

    // Assess
    expect(first.status, first.text).toBe(503);
    expect(first.ms).toBeLessThan(SINGLE_FAULT_BUDGET_MS);
    expect(itemsOfKind(afterFirst, 'EVENT').filter((i) => String(i.pk).includes(eventId))).toEqual([]);
    expect(itemsOfKind(afterFirst, 'DISPATCH').filter((i) => String(i.pk).includes(room))).toEqual([]);
    expect(itemsOfKind(afterFirst, 'LEASE').filter((i) => String(i.pk).includes(tenant.tenant_id))).toEqual(
      [],
    );
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json.action).toBe('dispatched');
    expect(again.json.action).toBe('duplicate_event');
    expect(s.livekit.dispatches.filter((d) => d.room === room)).toHaveLength(1);
  });
});
