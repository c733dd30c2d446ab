import { decodeJwt } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  participantJoined,
  roomFinished,
  signExpiredWebhookBody,
  signWebhookBody,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';
import {
  deliverWebhook,
  type Stack,
  seedUserWithJwt,
  sendWebhook,
  startSession,
  startStack,
} from './stack.js';

let api: Stack;
let token: Stack;

beforeAll(async () => {
  [api, token] = await Promise.all([startStack(), startStack({ SESSION_DISPATCH_MODE: 'token' })]);
});
afterAll(async () => {
  await Promise.all([api?.stop(), token?.stop()]);
});
beforeEach(() => {
  api.livekit.reset();
  token.livekit.reset();
});

const creates = (s: Stack) => s.livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');

describe('replay: a captured webhook', () => {
  it('replayed after its token expired → 401 invalid_signature, nothing read or written', async () => {
    // Prepare
    const { tenant, user } = await seedUserWithJwt(api, { webhook_dispatch: true });
    const room = `lk-mcp-${tenant.tenant_id}-${uid('r')}`;
    api.livekit.addRoom(room);
    const body = participantJoined({ roomName: room, identity: user.user_id });
    const captured = await signWebhookBody(body, TEST_LIVEKIT);
    expect((await deliverWebhook(api, captured)).json.action).toBe('dispatched');
    const before = await api.db.scan();
    const callsBefore = api.livekit.calls.length;
    // The same body under the same key, its token now past `exp` (what the capture becomes).
    const expired = await signExpiredWebhookBody(body, TEST_LIVEKIT);

    // Act
    const res = await deliverWebhook(api, expired);
    // And a fresh event (new id) under an expired token: refused before its id is looked at.
    const fresh = await deliverWebhook(
      api,
      await signExpiredWebhookBody(
        participantJoined({ roomName: room, identity: user.user_id }),
        TEST_LIVEKIT,
      ),
    );

    // Assess
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('invalid_signature');
    expect(fresh.status).toBe(401);
    expect(await api.db.scan()).toEqual(before);
    expect(api.livekit.calls.length).toBe(callsBefore);
  });

  it('replayed inside its window → duplicate_event, no second dispatch', async () => {
    // Prepare
    const { tenant, user } = await seedUserWithJwt(api, { webhook_dispatch: true });
    const room = `lk-mcp-${tenant.tenant_id}-${uid('r')}`;
    api.livekit.addRoom(room);
    const captured = await signWebhookBody(
      participantJoined({ roomName: room, identity: user.user_id }),
      TEST_LIVEKIT,
    );

    // Act
    const first = await deliverWebhook(api, captured);
    const replays = [];
    for (let i = 0; i < 3; i++) replays.push(await deliverWebhook(api, captured));

    // Assess
    expect(first.json.action).toBe('dispatched');
    expect(replays.map((r) => r.json.action)).toEqual([
      'duplicate_event',
      'duplicate_event',
      'duplicate_event',
    ]);
    expect(creates(api)).toHaveLength(1);
    expect(api.livekit.dispatches.filter((d) => d.room === room)).toHaveLength(1);
  });
});

describe('replay: a participant token reused after its session ended', () => {
  it('token mode: LiveKit brings the agent back from the token → the webhook deletes the room', async () => {
    // Prepare: a session in token mode (the token itself carries the sealed dispatch).
    const { user, jwt } = await seedUserWithJwt(token);
    const started = await startSession(token, jwt);
    expect(started.status, started.text).toBe(201);
    const room = started.json.room_name as string;
    const claims = decodeJwt(started.json.participant_token as string) as {
      roomConfig?: { agents?: { agentName: string; metadata: string }[] };
    };
    const agent = claims.roomConfig?.agents?.[0];
    expect(agent?.metadata).toBeTruthy();
    expect(
      (await sendWebhook(token, roomFinished({ roomName: room, roomSid: 'RM_first' }))).json.action,
    ).toBe('ended');
    // The participant joins again with the same token: LiveKit creates the room anew and applies
    // the token's room configuration, dispatching the agent with the old sealed metadata.
    await token.server.services.livekit.createDispatch(room, agent!.agentName, agent!.metadata);
    expect(token.livekit.dispatches.filter((d) => d.room === room)).toHaveLength(1);

    // Act
    const joined = await sendWebhook(
      token,
      participantJoined({ roomName: room, roomSid: 'RM_second', identity: user.user_id }),
    );

    // Assess
    expect(joined.status, joined.text).toBe(200);
    expect(joined.json.action).not.toBe('dispatched');
    expect(token.livekit.rooms).not.toContain(room);
    expect(token.livekit.dispatches.filter((d) => d.room === room)).toEqual([]);
    const sessions = await token.server.services.store.roomSessions(room);
    expect(sessions.map((s) => s.status)).toEqual(['ended']);
  });

  it('token mode, after an admin revoke: the same — the room is deleted, no agent stays', async () => {
    // Prepare
    const { tenant, user, jwt } = await seedUserWithJwt(token);
    const started = await startSession(token, jwt);
    const room = started.json.room_name as string;
    const agent = (
      decodeJwt(started.json.participant_token as string) as {
        roomConfig: { agents: { agentName: string; metadata: string }[] };
      }
    ).roomConfig.agents[0]!;
    const admin = await token.adminToken(tenant.tenant_id);
    const revoked = await fetch(
      `${token.url}/v1/admin/tenants/${tenant.tenant_id}/users/${user.user_id}/revoke`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      },
    );
    expect(revoked.status).toBeLessThan(300);
    await token.server.services.livekit.createDispatch(room, agent.agentName, agent.metadata);

    // Act
    const joined = await sendWebhook(
      token,
      participantJoined({ roomName: room, roomSid: 'RM_again', identity: user.user_id }),
    );

    // Assess
    expect(joined.status, joined.text).toBe(200);
    expect(token.livekit.rooms).not.toContain(room);
    expect(token.livekit.dispatches.filter((d) => d.room === room)).toEqual([]);
  });

  it('api mode, webhook-dispatch tenant: no new dispatch for the ended session, the room is deleted', async () => {
    // Prepare
    const { user, jwt } = await seedUserWithJwt(api, { webhook_dispatch: true });
    const started = await startSession(api, jwt);
    expect(started.status, started.text).toBe(201);
    const room = started.json.room_name as string;
    expect((await sendWebhook(api, roomFinished({ roomName: room, roomSid: 'RM_first' }))).json.action).toBe(
      'ended',
    );
    expect(api.livekit.dispatches.filter((d) => d.room === room)).toHaveLength(1);
    // LiveKit drops a finished room's dispatches; the reused token makes a new, empty room.
    api.livekit.reset();
    api.livekit.addRoom(room);

    // Act
    const joined = await sendWebhook(
      api,
      participantJoined({ roomName: room, roomSid: 'RM_second', identity: user.user_id }),
    );
    const again = await sendWebhook(
      api,
      participantJoined({ roomName: room, roomSid: 'RM_second', identity: user.user_id }),
    );

    // Assess
    expect(joined.status, joined.text).toBe(200);
    expect(joined.json.action).not.toBe('dispatched');
    expect(again.status, again.text).toBe(200);
    expect(creates(api)).toEqual([]);
    expect(api.livekit.rooms).not.toContain(room);
  });

  it('a webhook-named room reused by the same participant later (new sid) → dispatched once, no churn', async () => {
    // Prepare
    const { tenant, user } = await seedUserWithJwt(api, { webhook_dispatch: true });
    const room = `lk-mcp-${tenant.tenant_id}-daily`;
    api.livekit.addRoom(room);
    expect(
      (
        await sendWebhook(
          api,
          participantJoined({ roomName: room, roomSid: 'RM_mon', identity: user.user_id }),
        )
      ).json.action,
    ).toBe('dispatched');
    expect((await sendWebhook(api, roomFinished({ roomName: room, roomSid: 'RM_mon' }))).json.action).toBe(
      'ended',
    );
    api.livekit.reset();
    api.livekit.addRoom(room);

    // Act
    const tuesday = await sendWebhook(
      api,
      participantJoined({ roomName: room, roomSid: 'RM_tue', identity: user.user_id }),
    );

    // Assess: a new incarnation (new sid) is a new session; the ended one stays ended.
    expect(tuesday.status, tuesday.text).toBe(200);
    expect(tuesday.json.action).toBe('dispatched');
    const creates = api.livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');
    expect(creates).toHaveLength(1);
    expect(api.livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/DeleteDispatch')).toEqual([]);
  });
});
