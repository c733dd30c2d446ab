import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uid } from '../support/fixtures.js';
import { itemsOfKind, type Stack, seedUserWithJwt, startSession, startStack } from './stack.js';

// Session/webhook Lambda timeout (infra/context.ts) and the budget of one hung dependency.
const LAMBDA_TIMEOUT_MS = 25_000;
const SINGLE_FAULT_BUDGET_MS = 10_000;
// DynamoDB: 2 s per attempt, 3 attempts (adapters/dynamo.ts).
const DYNAMO_ATTEMPT_MS = 2_000;

describe('deadlines: DynamoDB hangs', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => {
    await s?.stop();
  });
  afterEach(() => {
    s.dynamoProxy.clear();
    s.dynamoProxy.releaseHung();
    s.livekit.reset();
  });

  it('the session record write never answers → 503 store_unavailable in budget; dispatch, lease and claim undone', async () => {
    // Prepare
    const { tenant, jwt } = await seedUserWithJwt(s, { max_concurrent_sessions: 1 });
    s.dynamoProxy.fail({ mode: 'hang', operations: ['PutItem'], bodyIncludes: '"SESSION#' });

    // Act
    const res = await startSession(s, jwt);
    s.dynamoProxy.clear();

    // Assess
    expect(res.status, res.text).toBe(503);
    expect(res.json.code).toBe('store_unavailable');
    expect(res.ms).toBeGreaterThanOrEqual(3 * DYNAMO_ATTEMPT_MS - 100);
    expect(res.ms).toBeLessThan(SINGLE_FAULT_BUDGET_MS);
    expect(s.dynamoProxy.faults('PutItem')).toBe(3);
    expect(s.livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch')).toHaveLength(1);
    expect(s.livekit.dispatches).toEqual([]);
    const items = await s.db.scan();
    expect(itemsOfKind(items, 'LEASE').filter((i) => String(i.pk).includes(tenant.tenant_id))).toEqual([]);
    expect(itemsOfKind(items, 'DISPATCH').filter((i) => String(i.pk).includes(tenant.tenant_id))).toEqual([]);
    expect(itemsOfKind(items, 'ROOM').filter((i) => i.tenant_id === tenant.tenant_id)).toEqual([]);
    const again = await startSession(s, jwt);
    expect(again.status, again.text).toBe(201);
  });

  it('DynamoDB hangs from the moment the dispatch exists → 503 inside the Lambda timeout, dispatch deleted', async () => {
    // Prepare
    const { tenant, jwt } = await seedUserWithJwt(s, { max_concurrent_sessions: 1 });
    const dispatched = () => s.livekit.calls.some((c) => c.rpc === 'AgentDispatchService/CreateDispatch');
    s.dynamoProxy.fail({ mode: 'hang', when: dispatched });

    // Act
    const res = await startSession(s, jwt);
    s.dynamoProxy.clear();
    s.dynamoProxy.releaseHung();

    // Assess
    expect(res.status, res.text).toBe(503);
    expect(res.ms).toBeLessThan(LAMBDA_TIMEOUT_MS);
    expect(s.livekit.dispatches).toEqual([]);
    const items = await s.db.scan();
    expect(itemsOfKind(items, 'ROOM').filter((i) => i.tenant_id === tenant.tenant_id)).toEqual([]);
  }, 40_000);

  it('every DynamoDB call hangs → an admin read answers 503 within budget', async () => {
    // Prepare
    const admin = await s.adminToken();
    s.dynamoProxy.fail({ mode: 'hang' });

    // Act
    const started = Date.now();
    const res = await fetch(`${s.url}/v1/admin/tenants/acme-${uid('t').toLowerCase()}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const ms = Date.now() - started;

    // Assess
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('store_unavailable');
    expect(ms).toBeLessThan(SINGLE_FAULT_BUDGET_MS);
  });
});
