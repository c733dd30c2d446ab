import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LocalServer } from '../../functions/local.js';
import { participantJoined, signWebhookBody, TEST_LIVEKIT, uid } from '../support/fixtures.js';
import type { LiveKitStandIn } from '../support/livekit-standin.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

const MCP_TOKEN = 'mcp-SECRET-observability-77';

let livekit: LiveKitStandIn;
let local: LocalServer;
let stack: LocalStack;
let base: string;
let superToken: string;
let written: string[] = [];

type Line = Record<string, unknown>;

/** The JSON log lines written since the last reset. */
function lines(): Line[] {
  return written
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

const metricsOf = (requestId: string) =>
  lines()
    .filter((l) => l.message === 'metric' && l.request_id === requestId)
    .map((l) => l.metric);

async function post(path: string, body: string, headers: Record<string, string>) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

async function put(path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${superToken}`,
      'content-type': 'application/json',
      'if-none-match': '*',
    },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
}

beforeAll(async () => {
  stack = await startLocalStack({ LOG_LEVEL: 'DEBUG', SESSION_RATE_LIMIT_PER_MINUTE: '2' });
  ({ livekit, local, base } = stack);
  superToken = await local.mintToken!({ user: 'ops', superadmin: true });
  await put('/v1/admin/tenants/acme', {
    name: 'Acme',
    mcp: { url: 'http://localhost:9/mcp', token: MCP_TOKEN },
    webhook_dispatch: true,
  });
  await put('/v1/admin/tenants/acme/users/alice', {});
  await put('/v1/admin/tenants/acme/users/rita', {});
  await put('/v1/admin/tenants/tiny', {
    name: 'Tiny',
    mcp: { url: 'http://localhost:9/mcp' },
    max_concurrent_sessions: 1,
  });
  await put('/v1/admin/tenants/tiny/users/tina', {});
  await put('/v1/admin/tenants/tiny/users/tom', {});
});

beforeEach(() => {
  written = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
  }
  return () => {
    vi.restoreAllMocks();
    expect(written.join('')).not.toContain(MCP_TOKEN);
  };
});

afterAll(async () => {
  await stack?.stop();
});

describe('session API observability', () => {
  it('counts a started session and its dispatch; the lines carry request, tenant, room and dispatch ids', async () => {
    // Prepare
    const token = await local.mintToken!({ user: 'alice', tenant: 'acme' });

    // Act
    const res = await post('/v1/sessions', '{}', {
      authorization: `Bearer ${token}`,
      'x-request-id': 'req-s1',
    });

    // Assess
    const started = (await res.json()) as { room_name: string; dispatch_id: string };
    expect(res.status).toBe(201);
    expect(metricsOf('req-s1')).toEqual(['SessionsStarted', 'DispatchesCreated']);
    const last = lines()
      .filter((l) => l.request_id === 'req-s1')
      .at(-1);
    expect(last).toMatchObject({
      request_id: 'req-s1',
      tenant_id: 'acme',
      room: started.room_name,
      dispatch_id: started.dispatch_id,
    });
  });

  it('counts quota and rate refusals', async () => {
    // Prepare
    const tina = await local.mintToken!({ user: 'tina', tenant: 'tiny' });
    const tom = await local.mintToken!({ user: 'tom', tenant: 'tiny' });
    const rita = await local.mintToken!({ user: 'rita', tenant: 'acme' });
    expect((await post('/v1/sessions', '{}', { authorization: `Bearer ${tina}` })).status).toBe(201);
    for (let i = 0; i < 2; i++) {
      expect((await post('/v1/sessions', '{}', { authorization: `Bearer ${rita}` })).status).toBe(201);
    }

    // Act
    const quota = await post('/v1/sessions', '{}', {
      authorization: `Bearer ${tom}`,
      'x-request-id': 'req-q',
    });
    const rate = await post('/v1/sessions', '{}', {
      authorization: `Bearer ${rita}`,
      'x-request-id': 'req-r',
    });

    // Assess
    expect(quota.status).toBe(429);
    expect(rate.status).toBe(429);
    expect(metricsOf('req-q')).toEqual(['QuotaRejections']);
    expect(metricsOf('req-r')).toEqual(['RateRejections']);
  });

  it('counts each failed LiveKit call', async () => {
    // Prepare
    const token = await local.mintToken!({ user: 'alice', tenant: 'acme' });
    livekit.failNext(20, '503');

    // Act
    const res = await post('/v1/sessions', '{}', {
      authorization: `Bearer ${token}`,
      'x-request-id': 'req-lk',
    });
    livekit.failNext(0, '503');

    // Assess
    expect(res.status).toBe(502);
    const counted = metricsOf('req-lk');
    expect(counted.length).toBeGreaterThan(0);
    expect(new Set(counted)).toEqual(new Set(['LiveKitFailures']));
  });
});

describe('webhook observability', () => {
  const deliver = async (body: string, requestId: string, signed = true) =>
    post('/v1/livekit/webhook', body, {
      'content-type': 'application/webhook+json',
      'x-request-id': requestId,
      ...(signed ? { authorization: (await signWebhookBody(body, TEST_LIVEKIT)).authorization } : {}),
    });

  it('counts a dispatch, a duplicate event and a rejected signature; lines name the event and room', async () => {
    // Prepare
    const room = `lk-mcp-acme-${uid('w')}`;
    livekit.addRoom(room);
    const event = participantJoined({ roomName: room, identity: 'alice' });

    // Act
    const first = await deliver(event, 'req-w1');
    const again = await deliver(event, 'req-w2');
    const unsigned = await deliver(event, 'req-w3', false);

    // Assess
    expect(await first.json()).toEqual({ ok: true, action: 'dispatched' });
    expect(await again.json()).toEqual({ ok: true, action: 'duplicate_event' });
    expect(unsigned.status).toBe(401);
    expect(metricsOf('req-w1')).toEqual(['DispatchesCreated']);
    expect(metricsOf('req-w2')).toEqual(['DuplicateEvents']);
    expect(metricsOf('req-w3')).toEqual(['RejectedSignatures']);
    const handled = lines().find((l) => l.message === 'webhook handled' && l.request_id === 'req-w1');
    expect(handled).toMatchObject({
      event_id: JSON.parse(event).id,
      room,
      tenant_id: 'acme',
      dispatch_id: expect.any(String),
      action: 'dispatched',
    });
  });
});
