import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { participantJoined, uid } from '../support/fixtures.js';
import { itemsOfKind, type Stack, seedUserWithJwt, sendWebhook, startSession, startStack } from './stack.js';

let s: Stack;

beforeAll(async () => {
  s = await startStack();
});
afterAll(async () => {
  await s?.stop();
});
afterEach(() => {
  s.dynamoProxy.clear();
  s.dynamoProxy.requests.length = 0;
  s.livekit.reset();
});

/** Everything in the table that belongs to one tenant (by id anywhere in the item). */
async function tenantItems(tenantId: string) {
  return (await s.db.scan()).filter((i) => JSON.stringify(i).includes(tenantId));
}

describe('throttling: ProvisionedThroughputExceededException twice, then success', () => {
  it.each(['GetItem', 'Query', 'PutItem', 'UpdateItem'])(
    'on %s: POST /v1/sessions succeeds (standard retry mode)',
    async (operation) => {
      // Prepare
      const { jwt } = await seedUserWithJwt(s, { max_concurrent_sessions: 5 });
      s.dynamoProxy.fail({ mode: 'throttle', times: 2, operations: [operation] });

      // Act: the session path's UpdateItem is the Idempotency-Key claim's completion (the rate
      // limit is a conditional PutItem since the sliding window), so that one carries a key.
      const res = await startSession(
        s,
        jwt,
        operation === 'UpdateItem' ? { 'idempotency-key': uid('k') } : {},
      );

      // Assess
      expect(res.status, res.text).toBe(201);
      expect(s.dynamoProxy.faults(operation)).toBe(2);
      expect(s.livekit.dispatches).toHaveLength(1);
    },
  );

  it('on the event claim: the webhook dispatches once', async () => {
    // Prepare
    const { tenant, user } = await seedUserWithJwt(s, { webhook_dispatch: true });
    const room = `lk-mcp-${tenant.tenant_id}-${uid('r')}`;
    s.livekit.addRoom(room);
    s.dynamoProxy.fail({ mode: 'throttle', times: 2, bodyIncludes: '"EVENT#' });

    // Act
    const res = await sendWebhook(s, participantJoined({ roomName: room, identity: user.user_id }));

    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.json.action).toBe('dispatched');
    expect(s.dynamoProxy.requests.filter((r) => r.fault === 'throttle')).toHaveLength(2);
    expect(s.livekit.dispatches).toHaveLength(1);
  });

  it('on an admin write: the user is created exactly once', async () => {
    // Prepare
    const { tenant } = await seedUserWithJwt(s);
    const admin = await s.adminToken(tenant.tenant_id);
    const userId = uid('u');
    s.dynamoProxy.fail({ mode: 'throttle', times: 2, operations: ['PutItem'] });

    // Act
    const res = await fetch(`${s.url}/v1/admin/tenants/${tenant.tenant_id}/users/${userId}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'if-none-match': '*' },
      body: JSON.stringify({ display_name: 'Throttled' }),
    });

    // Assess
    expect(res.status, await res.clone().text()).toBe(201);
    const users = itemsOfKind(await s.db.scan(), 'USER').filter((i) => i.user_id === userId);
    expect(users).toHaveLength(1);
  });
});

describe('throttling: constant', () => {
  it('from the first call: 503 store_unavailable on every route, nothing written, LiveKit untouched', async () => {
    // Prepare
    const { tenant, user, jwt } = await seedUserWithJwt(s, { webhook_dispatch: true });
    const admin = await s.adminToken(tenant.tenant_id);
    const room = `lk-mcp-${tenant.tenant_id}-${uid('r')}`;
    s.livekit.addRoom(room);
    const before = await s.db.scan();
    s.dynamoProxy.fail({ mode: 'throttle' });

    // Act
    const session = await startSession(s, jwt);
    const hook = await sendWebhook(s, participantJoined({ roomName: room, identity: user.user_id }));
    const put = await fetch(`${s.url}/v1/admin/tenants/${tenant.tenant_id}/users/${uid('u')}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'if-none-match': '*' },
      body: JSON.stringify({ display_name: 'Never' }),
    });
    s.dynamoProxy.clear();

    // Assess
    expect(session.status, session.text).toBe(503);
    expect(session.json.code).toBe('store_unavailable');
    expect(hook.status, hook.text).toBe(503);
    expect(put.status).toBe(503);
    expect(((await put.json()) as { code: string }).code).toBe('store_unavailable');
    expect(await s.db.scan()).toEqual(before);
    expect(s.livekit.calls).toEqual([]);
  });

  it('on the session record write: 503, the dispatch deleted, lease and claim released', async () => {
    // Prepare
    const { tenant, jwt } = await seedUserWithJwt(s, { max_concurrent_sessions: 1 });
    const before = await tenantItems(tenant.tenant_id);
    s.dynamoProxy.fail({ mode: 'throttle', operations: ['PutItem'], bodyIncludes: '"SESSION#' });

    // Act
    const res = await startSession(s, jwt);
    s.dynamoProxy.clear();

    // Assess
    expect(res.status, res.text).toBe(503);
    expect(res.json.code).toBe('store_unavailable');
    expect(s.livekit.dispatches).toEqual([]);
    // Only the per-minute rate counter (not a session) may be new.
    const after = (await tenantItems(tenant.tenant_id)).filter((i) => !String(i.pk).startsWith('RATE#'));
    expect(after).toEqual(before);
    expect((await startSession(s, jwt)).status).toBe(201);
  });

  it('from the moment the dispatch exists: 503, the dispatch deleted, no session; only expiring items stay', async () => {
    // Prepare
    const { tenant, jwt } = await seedUserWithJwt(s, { max_concurrent_sessions: 1 });
    const dispatched = () => s.livekit.calls.some((c) => c.rpc === 'AgentDispatchService/CreateDispatch');
    s.dynamoProxy.fail({ mode: 'throttle', when: dispatched });

    // Act
    const res = await startSession(s, jwt);
    s.dynamoProxy.clear();

    // Assess
    expect(res.status, res.text).toBe(503);
    expect(s.livekit.dispatches).toEqual([]);
    const items = await s.db.scan();
    expect(itemsOfKind(items, 'ROOM').filter((i) => i.tenant_id === tenant.tenant_id)).toEqual([]);
    // What the store could not undo without the store: the lease and the claim, each with a TTL.
    const stuck = [
      ...itemsOfKind(items, 'LEASE').filter((i) => String(i.pk).includes(tenant.tenant_id)),
      ...itemsOfKind(items, 'DISPATCH').filter((i) => String(i.pk).includes(tenant.tenant_id)),
    ];
    const now = Math.floor(Date.now() / 1000);
    for (const item of stuck) {
      expect(typeof item.ttl).toBe('number');
      expect(item.ttl as number).toBeLessThanOrEqual(now + 7200 + 5);
    }
  });
});
