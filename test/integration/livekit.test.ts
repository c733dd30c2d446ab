import { jwtVerify, SignJWT } from 'jose';
import { AgentDispatchClient, RoomServiceClient, ServerError, TokenVerifier } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createLiveKitGateway,
  LiveKitCallError,
  type LiveKitGateway,
} from '../../functions/adapters/livekit.js';
import { ConfigError, LiveKitUnavailableError } from '../../functions/core/errors.js';
import { type LiveKitStandIn, startLiveKitStandIn } from '../support/livekit-standin.js';

const apiKey = 'APItestkey';
const apiSecret = 'test-secret-that-is-long-enough-for-hs256-0123456789';
const timeoutSeconds = 1;

let standIn: LiveKitStandIn;
let gateway: LiveKitGateway;

beforeAll(async () => {
  standIn = await startLiveKitStandIn({ apiKey, apiSecret });
  gateway = createLiveKitGateway({
    httpUrl: standIn.url,
    apiKey,
    apiSecret,
    requestTimeoutSeconds: timeoutSeconds,
  });
});

afterEach(() => standIn.reset());
afterAll(() => standIn.stop());

/** Rejection of `promise`, failing the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('LiveKitGateway dispatch calls', () => {
  it('creates, lists and deletes a dispatch through the SDK', async () => {
    // Prepare
    const room = 'lk-mcp-acme-abc';

    // Act
    const { dispatchId } = await gateway.createDispatch(room, 'mcp-agent', 'sealed.jwe');
    const listed = await gateway.listDispatches(room);
    await gateway.deleteDispatch(dispatchId, room);
    const after = await gateway.listDispatches(room);

    // Assess
    expect(dispatchId).toMatch(/^AD_/);
    expect(listed).toEqual([{ id: dispatchId, agentName: 'mcp-agent', metadata: 'sealed.jwe' }]);
    expect(after).toEqual([]);
    expect(standIn.calls.map((c) => [c.rpc, c.authOk])).toEqual([
      ['AgentDispatchService/CreateDispatch', true],
      ['RoomService/ListRooms', true],
      ['AgentDispatchService/ListDispatch', true],
      ['AgentDispatchService/DeleteDispatch', true],
      ['RoomService/ListRooms', true],
      ['AgentDispatchService/ListDispatch', true],
    ]);
    expect(standIn.calls[0]!.body).toEqual({ room, agentName: 'mcp-agent', metadata: 'sealed.jwe' });
    expect(standIn.calls[0]!.grants).toEqual({ roomAdmin: true, room });
  });

  it('lists only the dispatches of the room asked for', async () => {
    // Prepare
    await gateway.createDispatch('room-a', 'agent-a', 'a');
    await gateway.createDispatch('room-b', 'agent-b', 'b');

    // Act
    const listed = await gateway.listDispatches('room-a');
    const unknown = await gateway.listDispatches('room-none');

    // Assess
    expect(listed.map((d) => d.agentName)).toEqual(['agent-a']);
    expect(unknown).toEqual([]);
    // LiveKit answers ListDispatch for a room it does not host with a slow 503: never asked.
    expect(standIn.calls.filter((c) => c.rpc === 'AgentDispatchService/ListDispatch')).toHaveLength(1);
  });

  it('treats deleting a dispatch that is already gone as success', async () => {
    // Prepare
    standIn.addRoom('room-a');

    // Act
    await gateway.deleteDispatch('AD_gone', 'room-a');

    // Assess
    expect(standIn.calls[0]).toMatchObject({ rpc: 'AgentDispatchService/DeleteDispatch', status: 404 });
  });
});

describe('LiveKitGateway.deleteRoom', () => {
  it('deletes a room and its dispatches with a roomCreate token', async () => {
    // Prepare
    await gateway.createDispatch('room-x', 'mcp-agent', 'm');

    // Act
    await gateway.deleteRoom('room-x');

    // Assess
    expect(standIn.rooms).toEqual([]);
    expect(standIn.dispatches).toEqual([]);
    expect(standIn.calls[1]).toMatchObject({
      rpc: 'RoomService/DeleteRoom',
      body: { room: 'room-x' },
      authOk: true,
      grants: { roomCreate: true },
      status: 200,
    });
  });

  it('treats a missing room (404 not_found) as success', async () => {
    // Act
    await gateway.deleteRoom('never-existed');

    // Assess
    expect(standIn.calls).toHaveLength(1);
    expect(standIn.calls[0]!.status).toBe(404);
  });
});

describe('LiveKitGateway.participantToken', () => {
  it('grants exactly roomJoin to the room with publish, subscribe and data', async () => {
    // Prepare
    const before = Date.now();

    // Act
    const { token, expiresAt } = await gateway.participantToken({
      identity: 'alice',
      name: 'Alice',
      metadata: '{"app":1}',
      attributes: { color: 'blue' },
      room: 'lk-mcp-acme-1',
      ttlSeconds: 900,
    });

    // Assess
    const claims = await new TokenVerifier(apiKey, apiSecret).verify(token);
    expect(claims.sub).toBe('alice');
    expect(claims.iss).toBe(apiKey);
    expect(claims.name).toBe('Alice');
    expect(claims.metadata).toBe('{"app":1}');
    expect(claims.attributes).toEqual({ color: 'blue' });
    expect(claims.video).toEqual({
      roomJoin: true,
      room: 'lk-mcp-acme-1',
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    expect(claims.kind).toBeUndefined();
    expect(claims.roomConfig).toBeUndefined();
    expect(claims.exp).toBe(expiresAt.getTime() / 1000);
    expect(expiresAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 900_000);
    expect(expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 900_000);
  });

  it('carries RoomAgentDispatch entries in roomConfig when agents are given', async () => {
    // Act
    const { token } = await gateway.participantToken({
      identity: 'bob',
      room: 'lk-mcp-acme-2',
      ttlSeconds: 60,
      agents: [{ agentName: 'mcp-agent', metadata: 'sealed.jwe' }],
    });

    // Assess
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(apiSecret), {
      issuer: apiKey,
    });
    expect(protectedHeader.alg).toBe('HS256');
    const roomConfig = payload.roomConfig as { agents: { agentName: string; metadata: string }[] };
    expect(roomConfig.agents).toHaveLength(1);
    expect(roomConfig.agents[0]).toMatchObject({ agentName: 'mcp-agent', metadata: 'sealed.jwe' });
    expect(payload.video).toEqual({
      roomJoin: true,
      room: 'lk-mcp-acme-2',
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
  });
});

describe('LiveKit stand-in authentication', () => {
  it('refuses a client signing with the wrong secret', async () => {
    // Prepare
    const wrong = new AgentDispatchClient(standIn.url, apiKey, 'not-the-secret-0123456789abcdef', {
      failover: false,
    });

    // Act
    const err = await rejectionOf(wrong.createDispatch('room-a', 'mcp-agent', { metadata: 'm' }));

    // Assess
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ status: 401 });
    expect((err as Error).message).toMatch(/^invalid token: eyJ/);
    expect(standIn.calls[0]).toMatchObject({ authOk: false, status: 401 });
    expect(standIn.dispatches).toEqual([]);
  });

  it('refuses a client with another API key', async () => {
    // Prepare
    const other = new RoomServiceClient(standIn.url, 'APIother', apiSecret, { failover: false });
    standIn.addRoom('room-a');

    // Act
    const err = await rejectionOf(other.deleteRoom('room-a'));

    // Assess
    expect(err).toMatchObject({ status: 401, message: 'invalid API key: APIother\n' });
    expect(standIn.rooms).toEqual(['room-a']);
  });

  it('keeps the token LiveKit echoes on a 401 out of the gateway error', async () => {
    // Prepare
    const misconfigured = createLiveKitGateway({
      httpUrl: standIn.url,
      apiKey,
      apiSecret: 'not-the-secret-0123456789abcdef',
      requestTimeoutSeconds: 1,
    });

    // Act
    const err = await rejectionOf(misconfigured.createDispatch('room-a', 'mcp-agent', 'm'));

    // Assess
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
    const cause = (err as Error).cause as LiveKitCallError;
    expect(cause).toBeInstanceOf(LiveKitCallError);
    expect(cause).toMatchObject({ rpc: 'AgentDispatchService/CreateDispatch', status: 401 });
    expect(cause.message).toContain('invalid token: [jwt]');
    expect(`${cause.message} ${cause.stack} ${JSON.stringify(cause)}`).not.toMatch(/eyJ[\w-]+\./);
  });

  it('refuses a correctly signed token that lacks roomAdmin for the room', async () => {
    // Prepare
    const secret = new TextEncoder().encode(apiSecret);
    const sign = (video: Record<string, unknown>) =>
      new SignJWT({ video })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(apiKey)
        .setExpirationTime('1m')
        .sign(secret);
    const post = async (token: string) =>
      fetch(`${standIn.url}/twirp/livekit.AgentDispatchService/CreateDispatch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ room: 'room-a', agentName: 'mcp-agent' }),
      });

    // Act
    const joinOnly = await post(await sign({ roomJoin: true, room: 'room-a' }));
    const otherRoom = await post(await sign({ roomAdmin: true, room: 'room-b' }));
    const createOnly = await post(await sign({ roomCreate: true }));

    // Assess
    for (const res of [joinOnly, otherRoom, createOnly]) {
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'unauthenticated' });
    }
    expect(standIn.calls.every((c) => !c.authOk)).toBe(true);
    expect(standIn.dispatches).toEqual([]);
  });

  it('refuses DeleteRoom without roomCreate, and expired or unsigned tokens', async () => {
    // Prepare
    standIn.addRoom('room-a');
    const secret = new TextEncoder().encode(apiSecret);
    const adminOnly = await new SignJWT({ video: { roomAdmin: true, room: 'room-a' } })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(apiKey)
      .setExpirationTime('1m')
      .sign(secret);
    const expired = await new SignJWT({ video: { roomCreate: true } })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(apiKey)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(secret);
    const deleteRoom = (headers: Record<string, string>) =>
      fetch(`${standIn.url}/twirp/livekit.RoomService/DeleteRoom`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ room: 'room-a' }),
      });

    // Act
    const statuses = [
      (await deleteRoom({ authorization: `Bearer ${adminOnly}` })).status,
      (await deleteRoom({ authorization: `Bearer ${expired}` })).status,
      (await deleteRoom({})).status,
    ];

    // Assess
    expect(statuses).toEqual([401, 401, 401]);
    expect(standIn.rooms).toEqual(['room-a']);
  });
});

describe('LiveKitGateway failures', () => {
  it.each(['503', 'reset', 'garbage'] as const)('turns %s into LiveKitUnavailableError', async (mode) => {
    // Prepare
    standIn.failNext(1, mode);

    // Act
    const err = await rejectionOf(gateway.createDispatch('room-a', 'mcp-agent', 'm'));

    // Assess
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
    expect((err as LiveKitUnavailableError).code).toBe('livekit_unavailable');
    expect((err as Error).cause).toBeDefined();
    expect(standIn.calls).toHaveLength(1);
  });

  it('turns a hanging server into LiveKitUnavailableError within the timeout', async () => {
    // Prepare
    standIn.failNext(1, 'hang');
    const started = Date.now();

    // Act
    const err = await rejectionOf(gateway.createDispatch('room-a', 'mcp-agent', 'm'));

    // Assess
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
    expect(elapsed).toBeGreaterThanOrEqual(timeoutSeconds * 1000 - 50);
    expect(elapsed).toBeLessThan(timeoutSeconds * 1000 + 1500);
  });

  it('reports a timeout even when LiveKit did the work, so the caller can clean up', async () => {
    // Prepare
    standIn.failNext(1, 'apply-then-hang');

    // Act
    const err = await rejectionOf(gateway.createDispatch('room-a', 'mcp-agent', 'm'));
    const leftBehind = await gateway.listDispatches('room-a');
    for (const d of leftBehind) await gateway.deleteDispatch(d.id, 'room-a');

    // Assess
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
    expect(leftBehind).toHaveLength(1);
    expect(standIn.dispatches).toEqual([]);
  });

  it('fails every call kind, including deleteRoom and deleteDispatch, on 503', async () => {
    // Prepare
    standIn.failNext(3, '503');
    standIn.addRoom('room-a');

    // Act
    const errors = await Promise.all([
      rejectionOf(gateway.listDispatches('room-a')),
      rejectionOf(gateway.deleteDispatch('AD_x', 'room-a')),
      rejectionOf(gateway.deleteRoom('room-a')),
    ]);

    // Assess
    for (const err of errors) expect(err).toBeInstanceOf(LiveKitUnavailableError);
  });

  it('fails to delete a dispatch in a room LiveKit does not host (503 no response from servers)', async () => {
    // Act
    const err = await rejectionOf(gateway.deleteDispatch('AD_x', 'no-such-room'));

    // Assess
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
    expect((err as Error).cause).toMatchObject({ status: 503, twirpCode: 'unavailable' });
  });

  it('names the timeout in the cause of a hang', async () => {
    // Prepare
    standIn.failNext(1, 'hang');

    // Act
    const err = await rejectionOf(gateway.deleteRoom('room-a'));

    // Assess
    expect((err as Error).cause).toMatchObject({ rpc: 'RoomService/DeleteRoom', status: undefined });
    expect(((err as Error).cause as Error).message).toContain('no answer within 1 s');
  });

  it('fails on a server nobody listens on', async () => {
    // Prepare
    const closed = await startLiveKitStandIn({ apiKey, apiSecret });
    await closed.stop();
    const dead = createLiveKitGateway({ httpUrl: closed.url, apiKey, apiSecret, requestTimeoutSeconds: 1 });

    // Act
    const err = await rejectionOf(dead.createDispatch('room-a', 'mcp-agent', 'm'));

    // Assess
    expect(err).toBeInstanceOf(LiveKitUnavailableError);
  });

  it('recovers after the failures it was told to produce', async () => {
    // Prepare
    standIn.failNext(1, '503');
    await rejectionOf(gateway.createDispatch('room-a', 'mcp-agent', 'm'));

    // Act
    const { dispatchId } = await gateway.createDispatch('room-a', 'mcp-agent', 'm');

    // Assess
    expect(standIn.dispatches.map((d) => d.id)).toEqual([dispatchId]);
  });
});

describe('createLiveKitGateway options', () => {
  it.each([0, -1, 11, Number.NaN])('refuses a request timeout of %s seconds', (requestTimeoutSeconds) => {
    // Act + Assess
    expect(() =>
      createLiveKitGateway({ httpUrl: 'http://127.0.0.1:1', apiKey, apiSecret, requestTimeoutSeconds }),
    ).toThrow(ConfigError);
  });
});
