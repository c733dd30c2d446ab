import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  otherEvent,
  participantJoined,
  roomFinished,
  signWebhookBody,
  TEST_LIVEKIT,
} from '../support/fixtures.js';
import { type Answer, type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §5 (POST /v1/livekit/webhook) as LiveKit sees it, over `npm start`.

let stack: LocalStack;

async function deliver(body: string, contentType = 'application/webhook+json'): Promise<Answer> {
  const signed = await signWebhookBody(body, TEST_LIVEKIT);
  return stack.call('POST', '/v1/livekit/webhook', {
    body,
    headers: { 'content-type': contentType, authorization: signed.authorization },
  });
}

beforeAll(async () => {
  stack = await startLocalStack();
  const superadmin = await stack.token({ user: 'ops', superadmin: true });
  const put = async (path: string, body: unknown) =>
    expect((await stack.call('PUT', path, { token: superadmin, body })).status).toBe(201);
  await put('/v1/admin/tenants/acme', {
    name: 'Acme',
    webhook_dispatch: true,
    sip_trunk_ids: ['ST_acme'],
    mcp: { url: 'http://localhost:9/mcp', token: 'tenant-token' },
  });
  await put('/v1/admin/tenants/acme/users/alice', { phone_numbers: ['+15550123456'] });
  await put('/v1/admin/tenants/quota', {
    name: 'Quota',
    webhook_dispatch: true,
    max_concurrent_sessions: 1,
    mcp: { url: 'http://localhost:9/mcp' },
  });
  await put('/v1/admin/tenants/quota/users/q1', {});
  await put('/v1/admin/tenants/quota/users/q2', {});
});

afterAll(async () => {
  await stack?.stop();
});

describe('webhook: answers', () => {
  it('200 {"ok":true,"action"} for dispatched, duplicate_event, already_dispatched, ignored, ended', async () => {
    // Prepare
    const joined = participantJoined({ id: 'EV_contract_1', roomName: 'lk-mcp-acme-r1', identity: 'alice' });

    // Act
    const first = await deliver(joined);
    const again = await deliver(joined);
    const second = await deliver(participantJoined({ roomName: 'lk-mcp-acme-r1', identity: 'alice' }));
    const outside = await deliver(participantJoined({ roomName: 'other-room', identity: 'alice' }));
    const other = await deliver(otherEvent('track_published', { roomName: 'lk-mcp-acme-r1' }));
    const finished = await deliver(roomFinished({ roomName: 'lk-mcp-acme-r1' }));

    // Assess
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ ok: true, action: 'dispatched' });
    expect(again.json).toEqual({ ok: true, action: 'duplicate_event' });
    expect(second.json).toEqual({ ok: true, action: 'already_dispatched' });
    expect(outside.json).toEqual({ ok: true, action: 'ignored' });
    expect(other.json).toEqual({ ok: true, action: 'ignored' });
    expect(finished.json).toEqual({ ok: true, action: 'ended' });
    expect(stack.livekit.dispatches.filter((d) => d.room === 'lk-mcp-acme-r1')).toHaveLength(1);
  });

  it('200 quota_exceeded when the tenant leases are all taken', async () => {
    // Act
    const a = await deliver(participantJoined({ roomName: 'lk-mcp-quota-a', identity: 'q1' }));
    const b = await deliver(participantJoined({ roomName: 'lk-mcp-quota-b', identity: 'q2' }));

    // Assess
    expect(a.json).toEqual({ ok: true, action: 'dispatched' });
    expect(b.json).toEqual({ ok: true, action: 'quota_exceeded' });
  });

  it('dispatches a SIP caller of a listed trunk, found by the E.164 number (a + added)', async () => {
    // Act
    const answer = await deliver(
      participantJoined({
        roomName: 'sip-call-1',
        identity: 'sip_15550123456',
        kind: 'SIP',
        attributes: { 'sip.trunkID': 'ST_acme', 'sip.phoneNumber': '15550123456' },
      }),
    );

    // Assess
    expect(answer.json).toEqual({ ok: true, action: 'dispatched' });
  });

  it('accepts plain application/json too', async () => {
    const answer = await deliver(otherEvent('room_started', { roomName: 'x' }), 'application/json');
    expect(answer.json).toEqual({ ok: true, action: 'ignored' });
  });
});

describe('webhook: refusals', () => {
  it('401 invalid_signature for a missing or wrong signature, with no side effect', async () => {
    // Prepare
    const body = participantJoined({
      id: 'EV_contract_forged',
      roomName: 'lk-mcp-acme-forged',
      identity: 'alice',
    });
    const forged = await signWebhookBody(body, {
      apiKey: TEST_LIVEKIT.apiKey,
      apiSecret: 'wrong-secret-0123456789',
    });

    // Act
    const unsigned = await stack.call('POST', '/v1/livekit/webhook', {
      body,
      headers: { 'content-type': 'application/webhook+json' },
    });
    const wrong = await stack.call('POST', '/v1/livekit/webhook', {
      body,
      headers: { 'content-type': 'application/webhook+json', authorization: forged.authorization },
    });
    const genuine = await deliver(body);

    // Assess
    for (const answer of [unsigned, wrong]) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('content-type')).toBe('application/problem+json');
      expect(answer.json.code).toBe('invalid_signature');
    }
    // Nothing was claimed by the refused deliveries: the genuine one is processed, not a duplicate.
    expect(genuine.json).toEqual({ ok: true, action: 'dispatched' });
  });

  it('413 over 1 MiB; a signed body just under it is accepted', async () => {
    // Prepare
    const padding = 'p'.repeat(1024 * 1024 - 200);
    const under = JSON.stringify({
      event: 'room_started',
      id: 'EV_big',
      room: { name: 'r', metadata: padding },
    });
    const over = `${under}${' '.repeat(1024 * 1024 + 1 - under.length)}`;

    // Act
    const accepted = await deliver(under);
    const refused = await deliver(over);

    // Assess
    expect(Buffer.byteLength(under)).toBeLessThanOrEqual(1024 * 1024);
    expect(accepted.status).toBe(200);
    expect(refused.status).toBe(413);
    expect(refused.json.code).toBe('payload_too_large');
  });
});
