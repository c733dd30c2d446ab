import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { handle } from 'hono/aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TenantRecord, UserRecord } from '../../functions/core/model.js';
import { createWebhookApp, type WebhookAppDeps } from '../../functions/webhook/app.js';
import {
  type Harness,
  otherEvent,
  participantJoined,
  recordingLog,
  roomFinished,
  roomSidOf,
  type SeedTenant,
  type SignedWebhook,
  seedTenant,
  seedUser,
  signExpiredWebhookBody,
  signWebhookBody,
  startHarness,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';

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

function deliver(signed: SignedWebhook | { body: string; authorization?: string }) {
  const headers: Record<string, string> = { 'content-type': 'application/webhook+json' };
  if (signed.authorization !== undefined) headers.authorization = signed.authorization;
  return app.request('/v1/livekit/webhook', { method: 'POST', headers, body: signed.body });
}

async function send(body: string): Promise<{ status: number; action?: string; code?: string }> {
  const res = await deliver(await signWebhookBody(body, TEST_LIVEKIT));
  const json = (await res.json()) as { action?: string; code?: string };
  return { status: res.status, ...json };
}

/** A room LiveKit hosts (participants only join existing rooms). */
function liveRoom(tenantId: string): string {
  const room = `lk-mcp-${tenantId}-${uid('r')}`;
  h.livekitServer.addRoom(room);
  return room;
}

/** A webhook-dispatch tenant with users whose MCP URL and token are their own. */
async function webhookTenant(
  seed: SeedTenant = {},
  userCount = 1,
): Promise<{ tenant: TenantRecord; users: UserRecord[]; tokens: string[] }> {
  const tenant = await seedTenant(h.store, h.secretBox, { webhook_dispatch: true, ...seed });
  const users: UserRecord[] = [];
  const tokens: string[] = [];
  for (let i = 0; i < userCount; i++) {
    const token = `tok-${uid('x')}`;
    tokens.push(token);
    users.push(
      await seedUser(h.store, h.secretBox, {
        tenant_id: tenant.tenant_id,
        mcp: { url: `https://mcp.example.com/${i}`, token },
      }),
    );
  }
  return { tenant, users, tokens };
}

const creates = () => h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');

async function grantOf(metadata: string, roomName: string, agentName = 'mcp-agent') {
  return openDispatchMetadata(metadata, { keyring: h.dispatchKeys, agentName, roomName });
}

describe('webhook: exactly once per event', () => {
  it('20 concurrent + 5 sequential deliveries of one event make exactly one dispatch', async () => {
    // Prepare
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const signed = await signWebhookBody(
      participantJoined({ roomName: room, identity: users[0]!.user_id }),
      TEST_LIVEKIT,
    );

    // Act
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => deliver(signed)));
    const sequential: Response[] = [];
    for (let i = 0; i < 5; i++) sequential.push(await deliver(signed));

    // Assess
    const results = await Promise.all(
      concurrent.map(async (r) => ({ status: r.status, body: (await r.json()) as { action?: string } })),
    );
    expect(results.filter((r) => r.body.action === 'dispatched')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 200) expect(['dispatched', 'duplicate_event']).toContain(r.body.action);
      else {
        expect(r.status).toBe(503);
      }
    }
    for (const r of sequential) {
      expect(r.status).toBe(200);
      expect(((await r.json()) as { action: string }).action).toBe('duplicate_event');
    }
    expect(creates()).toHaveLength(1);
    expect(h.livekitServer.dispatches).toHaveLength(1);
  });

  it('a LiveKit 503 answers 503 and leaves no claim; the retry dispatches exactly once', async () => {
    // Prepare
    const { tenant, users } = await webhookTenant({ max_concurrent_sessions: 1 });
    const room = liveRoom(tenant.tenant_id);
    const body = participantJoined({ roomName: room, identity: users[0]!.user_id });
    const before = await h.db.scan();
    h.livekitServer.failNext(1, '503');

    // Act
    const failed = await send(body);
    const afterFailure = await h.db.scan();
    const retried = await send(body);

    // Assess
    expect(failed.status).toBe(503);
    expect(afterFailure).toEqual(before);
    expect(retried).toMatchObject({ status: 200, action: 'dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
    expect(creates()).toHaveLength(2);
  });
});

describe('webhook: signature checked before anything else', () => {
  it.each([
    [
      'tampered body',
      async (body: string) => ({ ...(await signWebhookBody(body, TEST_LIVEKIT)), body: `${body} ` }),
    ],
    [
      'wrong secret',
      (body: string) =>
        signWebhookBody(body, { apiKey: TEST_LIVEKIT.apiKey, apiSecret: 'another-secret-0123456789abcdef' }),
    ],
    [
      'wrong key',
      (body: string) => signWebhookBody(body, { apiKey: 'APIother', apiSecret: TEST_LIVEKIT.apiSecret }),
    ],
    ['expired token', (body: string) => signExpiredWebhookBody(body, TEST_LIVEKIT)],
    ['missing header', async (body: string) => ({ body })],
    ['garbage header', async (body: string) => ({ body, authorization: 'Bearer garbage.not.jwt' })],
  ])('%s: 401 invalid_signature, no read/write, no LiveKit call', async (_name, sign) => {
    // Prepare
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const delivery = await sign(participantJoined({ roomName: room, identity: users[0]!.user_id }));
    const before = await h.db.scan();

    // Act
    const res = await deliver(delivery);

    // Assess
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('invalid_signature');
    expect(await h.db.scan()).toEqual(before);
    expect(h.livekitServer.calls).toHaveLength(0);
  });

  it('refuses bodies over 1 MiB with 413 and accepts large signed ones below', async () => {
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const padded = (size: number) => {
      const event = JSON.parse(participantJoined({ roomName: room, identity: users[0]!.user_id })) as {
        participant: { metadata?: string };
      };
      event.participant.metadata = 'm'.repeat(size);
      return JSON.stringify(event);
    };
    const tooBig = await deliver(await signWebhookBody(padded(1024 * 1024), TEST_LIVEKIT));
    expect(tooBig.status).toBe(413);
    const big = await send(padded(600 * 1024));
    expect(big).toMatchObject({ status: 200, action: 'dispatched' });
  });
});

describe('webhook: through API Gateway', () => {
  it('verifies and handles a base64-encoded body (HTTP API payload v2)', async () => {
    // Prepare
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const signed = await signWebhookBody(
      participantJoined({ roomName: room, identity: users[0]!.user_id }),
      TEST_LIVEKIT,
    );
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: '/v1/livekit/webhook',
      rawQueryString: '',
      headers: { 'content-type': 'application/webhook+json', authorization: signed.authorization },
      requestContext: {
        accountId: '123456789012',
        apiId: 'api',
        domainName: 'api.execute-api.eu-west-1.amazonaws.com',
        domainPrefix: 'api',
        http: {
          method: 'POST',
          path: '/v1/livekit/webhook',
          protocol: 'HTTP/1.1',
          sourceIp: '127.0.0.1',
          userAgent: 'Go-http-client/1.1',
        },
        requestId: 'req-1',
        routeKey: '$default',
        stage: '$default',
        time: '29/Nov/2026:12:00:00 +0000',
        timeEpoch: Date.now(),
      },
      body: Buffer.from(signed.body, 'utf8').toString('base64'),
      isBase64Encoded: true,
    };

    // Act
    const result = (await handle(app)(event as never, {} as never)) as { statusCode: number; body: string };

    // Assess
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ ok: true, action: 'dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
  });
});

describe('webhook: participant_joined', () => {
  it('per_room: two participants of one tenant get one dispatch, sealed for the first', async () => {
    const { tenant, users, tokens } = await webhookTenant({}, 2);
    const room = liveRoom(tenant.tenant_id);

    const first = await send(participantJoined({ roomName: room, identity: users[0]!.user_id }));
    const second = await send(participantJoined({ roomName: room, identity: users[1]!.user_id }));

    expect(first).toMatchObject({ status: 200, action: 'dispatched' });
    expect(second).toMatchObject({ status: 200, action: 'already_dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
    const grant = await grantOf(h.livekitServer.dispatches[0]!.metadata, room);
    expect(grant.participantIdentity).toBe(users[0]!.user_id);
    expect(grant.mcpServers[0]?.headers.Authorization).toBe(`Bearer ${tokens[0]}`);
    const sessions = await h.store.roomSessions(room);
    expect(sessions).toEqual([
      expect.objectContaining({ origin: 'webhook', room_sid: roomSidOf(room), user_id: users[0]!.user_id }),
    ]);
  });

  it("per_participant: one dispatch each, each with its own user's config; another tenant gets none", async () => {
    const { tenant, users, tokens } = await webhookTenant(
      { dispatch_policy: 'per_participant', agent_names: ['helper'] },
      2,
    );
    const stranger = (await webhookTenant({ dispatch_policy: 'per_participant' })).users[0]!;
    const room = liveRoom(tenant.tenant_id);

    const a = await send(participantJoined({ roomName: room, identity: users[0]!.user_id }));
    const b = await send(participantJoined({ roomName: room, identity: users[1]!.user_id }));
    const again = await send(participantJoined({ roomName: room, identity: users[1]!.user_id }));
    const foreign = await send(participantJoined({ roomName: room, identity: stranger.user_id }));

    expect([a.action, b.action, again.action, foreign.action]).toEqual([
      'dispatched',
      'dispatched',
      'already_dispatched',
      'ignored',
    ]);
    const dispatches = h.livekitServer.dispatches;
    expect(dispatches).toHaveLength(2);
    for (const [i, user] of users.entries()) {
      const opened = await Promise.all(dispatches.map((d) => grantOf(d.metadata, room, 'helper')));
      const mine = opened.find((g) => g.participantIdentity === user.user_id)!;
      expect(mine.userId).toBe(user.user_id);
      expect(mine.mcpServers[0]?.headers.Authorization).toBe(`Bearer ${tokens[i]}`);
    }
    expect(dispatches.every((d) => d.agentName === 'helper')).toBe(true);
  });

  it('a participant of another tenant gets nothing in a room named for a tenant, even first', async () => {
    const owner = await webhookTenant();
    const other = await webhookTenant();
    const room = liveRoom(owner.tenant.tenant_id);

    const res = await send(participantJoined({ roomName: room, identity: other.users[0]!.user_id }));

    expect(res).toMatchObject({ status: 200, action: 'ignored' });
    expect(h.livekitServer.calls).toHaveLength(0);
  });

  it('ignores agents, egress and ingress; a room outside the prefix; a tenant without webhook_dispatch', async () => {
    const { tenant, users } = await webhookTenant();
    const off = await webhookTenant({ webhook_dispatch: false });
    const room = liveRoom(tenant.tenant_id);
    const id = users[0]!.user_id;

    for (const kind of ['AGENT', 'EGRESS', 'INGRESS'] as const) {
      expect(await send(participantJoined({ roomName: room, identity: id, kind }))).toMatchObject({
        action: 'ignored',
      });
    }
    expect(await send(participantJoined({ roomName: `other-${uid('r')}`, identity: id }))).toMatchObject({
      action: 'ignored',
    });
    expect(
      await send(
        participantJoined({ roomName: liveRoom(off.tenant.tenant_id), identity: off.users[0]!.user_id }),
      ),
    ).toMatchObject({ action: 'ignored' });
    expect(await send(participantJoined({ roomName: room, identity: uid('nobody') }))).toMatchObject({
      action: 'ignored',
    });
    expect(h.livekitServer.calls).toHaveLength(0);
  });

  it('a room that already has a session (from POST /v1/sessions) is already_dispatched', async () => {
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    await h.store.putSession({
      room_name: room,
      tenant_id: tenant.tenant_id,
      user_id: users[0]!.user_id,
      participant_identity: users[0]!.user_id,
      agent_name: 'mcp-agent',
      dispatch_id: null,
      mode: 'token',
      origin: 'session',
      status: 'active',
      created_at: new Date().toISOString(),
    });

    const res = await send(participantJoined({ roomName: room, identity: users[0]!.user_id }));

    expect(res).toMatchObject({ status: 200, action: 'already_dispatched' });
    expect(h.livekitServer.calls).toHaveLength(0);
  });

  it('an abandoned in-progress claim: the existing dispatch is adopted, no second agent', async () => {
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const claimKey = { kind: 'dispatch', room: roomSidOf(room), agent: 'mcp-agent' } as const;
    await h.store.tryClaim(claimKey, { ttlSeconds: 7200, holdSeconds: 0 });
    const { dispatchId } = await h.gateway.createDispatch(room, 'mcp-agent', 'sealed-by-the-dead-attempt');
    await new Promise((r) => setTimeout(r, 5));

    const res = await send(participantJoined({ roomName: room, identity: users[0]!.user_id }));

    expect(res).toMatchObject({ status: 200, action: 'dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
    expect(creates()).toHaveLength(1);
    const [session] = await h.store.roomSessions(room);
    expect(session?.dispatch_id).toBe(dispatchId);
  });

  it('per_room: a join while the first dispatch is in flight is retried, never lost', async () => {
    // Prepare: the first participant's CreateDispatch hangs until the 1 s timeout.
    const { tenant, users } = await webhookTenant({}, 2);
    const room = liveRoom(tenant.tenant_id);
    const second = participantJoined({ roomName: room, identity: users[1]!.user_id });
    h.livekitServer.failNext(1, 'hang');
    const first = send(participantJoined({ roomName: room, identity: users[0]!.user_id }));
    while (creates().length === 0) await new Promise((r) => setTimeout(r, 10));

    // Act
    const during = await send(second);
    const firstResult = await first;
    const retried = await send(second);

    // Assess
    expect(during).toMatchObject({ status: 503, code: 'dispatch_in_progress' });
    expect(firstResult).toMatchObject({ status: 503, code: 'livekit_unavailable' });
    expect(retried).toMatchObject({ status: 200, action: 'dispatched' });
    expect(h.livekitServer.dispatches).toHaveLength(1);
    const grant = await grantOf(h.livekitServer.dispatches[0]!.metadata, room);
    expect(grant.participantIdentity).toBe(users[1]!.user_id);
  });

  it('quota_exceeded is a 200 and nothing is dispatched', async () => {
    const { tenant, users } = await webhookTenant({ max_concurrent_sessions: 1 }, 2);
    const room1 = liveRoom(tenant.tenant_id);
    const room2 = liveRoom(tenant.tenant_id);
    expect(await send(participantJoined({ roomName: room1, identity: users[0]!.user_id }))).toMatchObject({
      action: 'dispatched',
    });

    const full = await send(participantJoined({ roomName: room2, identity: users[1]!.user_id }));

    expect(full).toMatchObject({ status: 200, action: 'quota_exceeded' });
    expect(h.livekitServer.dispatches.filter((d) => d.room === room2)).toHaveLength(0);
  });
});

describe('webhook: logging', () => {
  it('logs why a participant is ignored and never logs a secret', async () => {
    // Prepare
    const { log, lines } = recordingLog();
    const logged = createWebhookApp({
      store: h.store,
      livekit: h.gateway,
      sealer: h.sealer,
      secretBox: h.secretBox,
      config: CONFIG,
      log,
    });
    const { tenant, users, tokens } = await webhookTenant();
    const suspended = await seedUser(h.store, h.secretBox, {
      tenant_id: tenant.tenant_id,
      status: 'suspended',
    });
    const room = liveRoom(tenant.tenant_id);
    const deliverTo = async (body: string) => {
      const signed = await signWebhookBody(body, TEST_LIVEKIT);
      const res = await logged.request('/v1/livekit/webhook', {
        method: 'POST',
        headers: { authorization: signed.authorization },
        body: signed.body,
      });
      return (await res.json()) as { action: string };
    };

    // Act
    const unknown = await deliverTo(participantJoined({ roomName: room, identity: uid('nobody') }));
    const off = await deliverTo(participantJoined({ roomName: room, identity: suspended.user_id }));
    const ok = await deliverTo(participantJoined({ roomName: room, identity: users[0]!.user_id }));

    // Assess
    expect([unknown.action, off.action, ok.action]).toEqual(['ignored', 'ignored', 'dispatched']);
    expect(lines.some((l) => l.includes('unknown user'))).toBe(true);
    expect(lines.some((l) => l.includes('suspended'))).toBe(true);
    for (const line of lines) expect(line).not.toContain(tokens[0]);
  });
});

describe('webhook: SIP participants', () => {
  async function sipTenant() {
    const trunk = `ST_${uid('trunk')}`;
    const tenant = await seedTenant(h.store, h.secretBox, { sip_trunk_ids: [trunk] });
    const phone = `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const user = await seedUser(h.store, h.secretBox, {
      tenant_id: tenant.tenant_id,
      phone_numbers: [phone],
      mcp: { url: 'https://sip-mcp.example.com/mcp', token: `sip-${uid('tok')}` },
    });
    return { trunk, tenant, user, phone };
  }

  it.each([
    ['with +', (phone: string) => phone],
    ['without +', (phone: string) => phone.slice(1)],
  ])("a listed trunk and a known number (%s) get that user's config", async (_name, spell) => {
    const { trunk, user, tenant, phone } = await sipTenant();
    const room = `call-${uid('r')}`;
    h.livekitServer.addRoom(room);
    const identity = `sip_${phone}`;

    const res = await send(
      participantJoined({
        roomName: room,
        identity,
        kind: 'SIP',
        attributes: { 'sip.trunkID': trunk, 'sip.phoneNumber': spell(phone) },
      }),
    );

    expect(res).toMatchObject({ status: 200, action: 'dispatched' });
    const [dispatch] = h.livekitServer.dispatches;
    const grant = await grantOf(dispatch!.metadata, room);
    expect(grant.userId).toBe(user.user_id);
    expect(grant.tenantId).toBe(tenant.tenant_id);
    expect(grant.participantIdentity).toBe(identity);
    expect(grant.mcpServers[0]?.url).toBe('https://sip-mcp.example.com/mcp');
  });

  it('an unlisted trunk or an unknown number is ignored', async () => {
    const { trunk, phone } = await sipTenant();
    const room = `call-${uid('r')}`;

    const unlisted = await send(
      participantJoined({
        roomName: room,
        identity: 'sip_a',
        kind: 'SIP',
        attributes: { 'sip.trunkID': 'ST_unknown', 'sip.phoneNumber': phone },
      }),
    );
    const unknown = await send(
      participantJoined({
        roomName: room,
        identity: 'sip_b',
        kind: 'SIP',
        attributes: { 'sip.trunkID': trunk, 'sip.phoneNumber': '+15550000000' },
      }),
    );

    expect(unlisted).toMatchObject({ status: 200, action: 'ignored' });
    expect(unknown).toMatchObject({ status: 200, action: 'ignored' });
    expect(h.livekitServer.calls).toHaveLength(0);
  });
});

describe('webhook: room_finished and other events', () => {
  it('ends the session with its duration and frees the lease for the next session', async () => {
    // Prepare
    const { tenant, users } = await webhookTenant({ max_concurrent_sessions: 1 }, 2);
    const room1 = liveRoom(tenant.tenant_id);
    const room2 = liveRoom(tenant.tenant_id);
    expect(await send(participantJoined({ roomName: room1, identity: users[0]!.user_id }))).toMatchObject({
      action: 'dispatched',
    });
    expect(await send(participantJoined({ roomName: room2, identity: users[1]!.user_id }))).toMatchObject({
      action: 'quota_exceeded',
    });

    // Act
    const finished = await send(roomFinished({ roomName: room1 }));
    const retry = await send(participantJoined({ roomName: room2, identity: users[1]!.user_id }));

    // Assess
    expect(finished).toMatchObject({ status: 200, action: 'ended' });
    const [ended] = await h.store.roomSessions(room1);
    expect(ended).toMatchObject({ status: 'ended' });
    expect(typeof ended?.duration_seconds).toBe('number');
    expect(ended?.ended_at).toBeDefined();
    expect(retry).toMatchObject({ status: 200, action: 'dispatched' });
    expect(
      await h.store.getClaim({ kind: 'dispatch', room: roomSidOf(room1), agent: 'mcp-agent' } as const),
    ).toBeUndefined();
  });

  it('a room name used again (a new incarnation, new sid) dispatches again after room_finished', async () => {
    // Prepare
    const { tenant, users } = await webhookTenant();
    const room = liveRoom(tenant.tenant_id);
    const identity = users[0]!.user_id;
    const first = { roomName: room, roomSid: `RM_${uid('a')}` };
    expect(await send(participantJoined({ ...first, identity }))).toMatchObject({ action: 'dispatched' });
    expect(await send(roomFinished(first))).toMatchObject({ action: 'ended' });
    h.livekitServer.reset();

    // Act
    const sameIncarnation = await send(participantJoined({ ...first, identity }));
    const next = await send(participantJoined({ roomName: room, roomSid: `RM_${uid('b')}`, identity }));

    // Assess
    expect(sameIncarnation).toMatchObject({ status: 200, action: 'ignored' });
    expect(next).toMatchObject({ status: 200, action: 'dispatched' });
    expect(creates()).toHaveLength(1);
    const sessions = await h.store.roomSessions(room);
    expect(sessions.map((s) => s.status).sort()).toEqual(['active', 'ended']);
  });

  it('an unknown room is ignored; other events are acknowledged', async () => {
    expect(await send(roomFinished({ roomName: `lk-mcp-nobody-${uid('r')}` }))).toMatchObject({
      status: 200,
      action: 'ignored',
    });
    expect(await send(otherEvent('track_published', { roomName: 'lk-mcp-x-y' }))).toMatchObject({
      status: 200,
      action: 'ignored',
    });
  });
});
