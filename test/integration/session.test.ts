import { RoomAgentDispatch, RoomConfiguration, TokenSourceRequest } from '@livekit/protocol';
import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { decodeJwt } from 'jose';
import { TokenVerifier } from 'livekit-server-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import type { LiveKitGateway } from '../../functions/adapters/livekit.js';
import { LiveKitUnavailableError } from '../../functions/core/errors.js';
import type { TenantRecord, UserRecord } from '../../functions/core/model.js';
import { createSessionApp, type SessionAppDeps } from '../../functions/session/app.js';
import {
  type Harness,
  recordingLog,
  type SeedMcp,
  seedTenant,
  seedUser,
  startHarness,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';
import { verifierOf } from '../support/jwks-server.js';

let h: Harness;
let verifier: SessionAppDeps['verifier'];

const WS_URL = 'wss://livekit.example.test';
const BASE_CONFIG: SessionAppDeps['config'] = {
  defaultAgentName: 'mcp-agent',
  sessionDispatchMode: 'api',
  sessionTokenTtlSeconds: 900,
  sessionRateLimitPerMinute: 50,
  metadataTtlSeconds: 7200,
  webhookRoomPrefix: 'lk-mcp-',
  corsOrigins: ['https://app.example.test'],
  livekit: { wsUrl: WS_URL },
};

beforeAll(async () => {
  h = await startHarness();
  verifier = verifierOf(h.jwks);
});
afterAll(async () => {
  await h.stop();
});
beforeEach(() => {
  h.livekitServer.reset();
});

function appWith(
  overrides: Partial<SessionAppDeps> & { configOverrides?: Partial<SessionAppDeps['config']> } = {},
) {
  const { configOverrides, ...rest } = overrides;
  return createSessionApp({
    store: h.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    verifier,
    config: { ...BASE_CONFIG, ...configOverrides },
    ...rest,
  });
}

type App = ReturnType<typeof appWith>;

/** A tenant with one user whose MCP URL and token are their own. */
async function tenantWithUser(
  tenantSeed: Parameters<typeof seedTenant>[2] = {},
  userMcp: SeedMcp | null = { url: 'https://mcp.example.com/u', token: `tok-${uid('x')}` },
  userSeed: { status?: 'active' | 'suspended' } = {},
): Promise<{ tenant: TenantRecord; user: UserRecord; token: string; mcp: SeedMcp | null }> {
  const tenant = await seedTenant(h.store, h.secretBox, tenantSeed);
  const user = await seedUser(h.store, h.secretBox, {
    tenant_id: tenant.tenant_id,
    ...(userMcp === null ? {} : { mcp: userMcp }),
    ...userSeed,
  });
  const token = await h.jwks.mint({ sub: user.user_id, tenant_id: tenant.tenant_id });
  return { tenant, user, token, mcp: userMcp };
}

/** Exactly the JSON a LiveKit client SDK's `TokenSource.endpoint` posts. */
function tokenSourceBody(fields: { agentName?: string; agentMetadata?: string; identity?: string } = {}) {
  return new TokenSourceRequest({
    participantName: 'Alice',
    ...(fields.identity === undefined ? {} : { participantIdentity: fields.identity }),
    participantMetadata: '{"app":"ios"}',
    participantAttributes: { plan: 'pro' },
    roomConfig: new RoomConfiguration({
      agents: [
        new RoomAgentDispatch({
          agentName: fields.agentName ?? 'mcp-agent',
          metadata: fields.agentMetadata ?? '{"lang":"en"}',
        }),
      ],
    }),
  }).toJson({ useProtoFieldName: true }) as Record<string, unknown>;
}

function post(
  app: App,
  body: unknown,
  options: { token?: string; idempotencyKey?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  return app.request('/v1/sessions', {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const dispatchCalls = () =>
  h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');

/** The table and the stand-in must look the same after a refused request. */
async function expectNoSideEffects(run: () => Response | Promise<Response>, status: number, code: string) {
  const before = await h.db.scan();
  const callsBefore = h.livekitServer.calls.length;
  const res = await run();
  const body = (await res.json()) as { code: string; status: number };
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(body.code).toBe(code);
  expect(await h.db.scan()).toEqual(before);
  expect(h.livekitServer.calls.length).toBe(callsBefore);
  return res;
}

describe('POST /v1/sessions, api mode', () => {
  it('answers TokenSource.endpoint JSON with a roomJoin-only token and one sealed dispatch', async () => {
    // Prepare
    const { tenant, user, token, mcp } = await tenantWithUser();
    const app = appWith();

    // Act
    const res = await post(app, tokenSourceBody({ agentMetadata: '{"lang":"de"}' }), { token });

    // Assess
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      [
        'agent_name',
        'dispatch_id',
        'expires_at',
        'mcp_servers',
        'participant_identity',
        'participant_token',
        'room_name',
        'server_url',
      ].sort(),
    );
    expect(body.server_url).toBe(WS_URL);
    expect(body.mcp_servers).toEqual([{ name: 'mcp', status: 'ready' }]);
    expect(body.participant_identity).toBe(user.user_id);
    expect(body.agent_name).toBe('mcp-agent');
    const roomName = body.room_name as string;
    expect(roomName).toMatch(new RegExp(`^lk-mcp-${tenant.tenant_id}-[a-z2-7]{24}$`));

    const claims = await new TokenVerifier(TEST_LIVEKIT.apiKey, TEST_LIVEKIT.apiSecret).verify(
      body.participant_token as string,
    );
    expect(claims.sub).toBe(user.user_id);
    expect(claims.video).toEqual({
      roomJoin: true,
      room: roomName,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    expect(claims.kind).toBeUndefined();
    expect(claims.name).toBe('Alice');
    expect(claims.metadata).toBe('{"app":"ios"}');
    expect(claims.attributes).toEqual({ plan: 'pro' });
    expect(claims.roomConfig).toBeUndefined();
    expect(body.expires_at).toBe(new Date((claims.exp as number) * 1000).toISOString().replace('.000Z', 'Z'));

    const calls = dispatchCalls();
    expect(calls).toHaveLength(1);
    const [dispatch] = h.livekitServer.dispatches;
    expect(dispatch?.room).toBe(roomName);
    expect(dispatch?.agentName).toBe('mcp-agent');
    expect(body.dispatch_id).toBe(dispatch?.id);
    const grant = await openDispatchMetadata(dispatch!.metadata, {
      keyring: h.dispatchKeys,
      agentName: 'mcp-agent',
      roomName,
    });
    expect(grant).toMatchObject({
      userId: user.user_id,
      tenantId: tenant.tenant_id,
      participantIdentity: user.user_id,
      roomName,
      agentName: 'mcp-agent',
      client: '{"lang":"de"}',
    });
    expect(grant.mcpServers).toHaveLength(1);
    expect(grant.mcpServers[0]?.url).toBe(mcp?.url);
    expect(grant.mcpServers[0]?.headers.Authorization).toBe(`Bearer ${mcp?.token}`);

    const sessions = await h.store.roomSessions(roomName);
    expect(sessions).toEqual([
      expect.objectContaining({
        room_name: roomName,
        user_id: user.user_id,
        tenant_id: tenant.tenant_id,
        agent_name: 'mcp-agent',
        dispatch_id: dispatch?.id,
        mode: 'api',
        origin: 'session',
        status: 'active',
      }),
    ]);
  });

  it('accepts an empty body and unknown fields, with the tenant agent as default', async () => {
    // Prepare
    const { token } = await tenantWithUser({ agent_names: ['concierge', 'other'] });
    const app = appWith();

    // Act
    const empty = await post(app, '', { token });
    const unknown = await post(
      app,
      { future_field: { x: 1 }, room_config: { agents: [{ deployment: 'prod' }] } },
      { token },
    );

    // Assess
    expect(empty.status).toBe(201);
    expect(((await empty.json()) as { agent_name: string }).agent_name).toBe('concierge');
    expect(unknown.status).toBe(201);
    expect(dispatchCalls()).toHaveLength(2);
  });

  it('gives two users of two tenants each their own MCP configuration', async () => {
    // Prepare
    const a = await tenantWithUser({}, { url: 'https://a.example.com/mcp', token: 'token-of-a' });
    const b = await tenantWithUser({}, { url: 'https://b.example.com/mcp', token: 'token-of-b' });
    const app = appWith();

    // Act
    const [resA, resB] = await Promise.all([
      post(app, tokenSourceBody(), { token: a.token }),
      post(app, tokenSourceBody(), { token: b.token }),
    ]);

    // Assess
    for (const [res, who, other] of [
      [resA, a, b],
      [resB, b, a],
    ] as const) {
      const body = (await res.json()) as { room_name: string; dispatch_id: string };
      const dispatch = h.livekitServer.dispatches.find((d) => d.id === body.dispatch_id)!;
      const grant = await openDispatchMetadata(dispatch.metadata, {
        keyring: h.dispatchKeys,
        agentName: 'mcp-agent',
        roomName: body.room_name,
      });
      expect(grant.userId).toBe(who.user.user_id);
      expect(grant.tenantId).toBe(who.tenant.tenant_id);
      expect(grant.mcpServers[0]?.url).toBe(who.mcp?.url);
      expect(grant.mcpServers[0]?.headers.Authorization).toBe(`Bearer ${who.mcp?.token}`);
      expect(dispatch.metadata).not.toContain(other.mcp?.token);
      expect(JSON.stringify(grant)).not.toContain(other.mcp?.token);
    }
  });
});

describe('POST /v1/sessions, secrets', () => {
  it('never puts the MCP token in a log line, a response or the LiveKit call log in clear', async () => {
    // Prepare
    const secret = `tok-SECRET-${uid('s')}`;
    const { token } = await tenantWithUser({}, { url: 'https://mcp.example.com/s', token: secret });
    const { log, lines } = recordingLog();
    const app = appWith({ log });

    // Act
    const ok = await post(app, tokenSourceBody(), { token });
    h.livekitServer.failNext(1, '503');
    const failed = await post(app, tokenSourceBody(), { token });

    // Assess
    expect(ok.status).toBe(201);
    expect(failed.status).toBe(502);
    expect(lines.length).toBeGreaterThan(0);
    for (const text of [
      ...lines,
      await ok.text(),
      await failed.text(),
      JSON.stringify(h.livekitServer.calls),
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(JSON.stringify(await h.db.scan())).not.toContain(secret);
  });
});

describe('POST /v1/sessions, token mode', () => {
  it('embeds the sealed dispatch in the participant token and records the session, no LiveKit call', async () => {
    // Prepare
    const { tenant, user, token, mcp } = await tenantWithUser();
    const app = appWith({ configOverrides: { sessionDispatchMode: 'token' } });

    // Act
    const res = await post(app, tokenSourceBody(), { token });

    // Assess
    expect(res.status).toBe(201);
    const body = (await res.json()) as {
      room_name: string;
      dispatch_id: string | null;
      participant_token: string;
    };
    expect(body.dispatch_id).toBeNull();
    expect(h.livekitServer.calls).toHaveLength(0);
    const claims = await new TokenVerifier(TEST_LIVEKIT.apiKey, TEST_LIVEKIT.apiSecret).verify(
      body.participant_token,
    );
    expect(claims.video).toEqual({
      roomJoin: true,
      room: body.room_name,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    const roomConfig = decodeJwt(body.participant_token).roomConfig as {
      agents: { agentName: string; metadata: string }[];
    };
    expect(roomConfig.agents).toHaveLength(1);
    expect(roomConfig.agents[0]?.agentName).toBe('mcp-agent');
    const grant = await openDispatchMetadata(roomConfig.agents[0]!.metadata, {
      keyring: h.dispatchKeys,
      agentName: 'mcp-agent',
      roomName: body.room_name,
    });
    expect(grant.userId).toBe(user.user_id);
    expect(grant.tenantId).toBe(tenant.tenant_id);
    expect(grant.participantIdentity).toBe(user.user_id);
    expect(grant.mcpServers[0]?.url).toBe(mcp?.url);
    // The app holds this JWE: no credential in it; the job's start renewal supplies them (§3).
    expect(grant.mcpServers[0]?.headers).toEqual({});
    expect(JSON.stringify(grant)).not.toContain(mcp?.token);
    const sessions = await h.store.roomSessions(body.room_name);
    expect(sessions).toEqual([
      expect.objectContaining({ mode: 'token', dispatch_id: null, status: 'active' }),
    ]);
  });
});

describe('POST /v1/sessions, refusals leave nothing behind', () => {
  it('400 field_not_allowed for room_name and lk./sip. attributes', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    await expectNoSideEffects(() => post(app, { room_name: 'mine' }, { token }), 400, 'field_not_allowed');
    await expectNoSideEffects(
      () => post(app, { participant_attributes: { 'lk.agent.state': 'x' } }, { token }),
      400,
      'field_not_allowed',
    );
    await expectNoSideEffects(
      () => post(app, { participant_attributes: { 'sip.phoneNumber': '+1' } }, { token }),
      400,
      'field_not_allowed',
    );
  });

  it('401 unauthenticated for a missing, bad, expired or foreign JWT', async () => {
    const { user, tenant } = await tenantWithUser();
    const app = appWith();
    const claims = { sub: user.user_id, tenant_id: tenant.tenant_id };
    const expired = await h.jwks.mint(claims, { expiresIn: '-1h' });
    const foreign = await h.jwks.mint(claims, { signWithForeignKey: true });
    const otherAudience = await h.jwks.mint({ ...claims, aud: 'someone-else' });
    const otherIssuer = await h.jwks.mint({ ...claims, iss: 'https://issuer.example.org/' });
    await expectNoSideEffects(() => post(app, {}), 401, 'unauthenticated');
    await expectNoSideEffects(() => post(app, {}, { token: 'not.a.jwt' }), 401, 'unauthenticated');
    await expectNoSideEffects(() => post(app, {}, { token: expired }), 401, 'unauthenticated');
    await expectNoSideEffects(() => post(app, {}, { token: foreign }), 401, 'unauthenticated');
    await expectNoSideEffects(() => post(app, {}, { token: otherAudience }), 401, 'unauthenticated');
    await expectNoSideEffects(() => post(app, {}, { token: otherIssuer }), 401, 'unauthenticated');
  });

  it('403 identity_mismatch, tenant_mismatch, agent_not_allowed', async () => {
    const { user, token } = await tenantWithUser({ agent_names: ['concierge'] });
    const other = await seedTenant(h.store, h.secretBox);
    const wrongTenant = await h.jwks.mint({ sub: user.user_id, tenant_id: other.tenant_id });
    const noTenant = await h.jwks.mint({ sub: user.user_id });
    const app = appWith();
    await expectNoSideEffects(
      () => post(app, { participant_identity: 'someone' }, { token }),
      403,
      'identity_mismatch',
    );
    // v3 (docs/api.md §4): a claim naming a tenant where the sub has no record is 404
    // user_not_found; tenant_mismatch means the claim is missing or not a tenant id.
    await expectNoSideEffects(() => post(app, {}, { token: wrongTenant }), 404, 'user_not_found');
    await expectNoSideEffects(() => post(app, {}, { token: noTenant }), 403, 'tenant_mismatch');
    const notAnId = await h.jwks.mint({ sub: user.user_id, tenant_id: `${user.tenant_id.toUpperCase()}!` });
    await expectNoSideEffects(() => post(app, {}, { token: notAnId }), 403, 'tenant_mismatch');
    const numeric = await h.jwks.mint({ sub: user.user_id, tenant_id: 42 });
    await expectNoSideEffects(() => post(app, {}, { token: numeric }), 403, 'tenant_mismatch');
    const noSuchTenant = await h.jwks.mint({ sub: user.user_id, tenant_id: uid('absent').toLowerCase() });
    await expectNoSideEffects(() => post(app, {}, { token: noSuchTenant }), 404, 'user_not_found');
    await expectNoSideEffects(
      () => post(app, tokenSourceBody({ agentName: 'mcp-agent' }), { token }),
      403,
      'agent_not_allowed',
    );
  });

  it('403 user_suspended and tenant_suspended', async () => {
    const suspendedUser = await tenantWithUser({}, undefined, { status: 'suspended' });
    const suspendedTenant = await tenantWithUser({ status: 'suspended' });
    const app = appWith();
    await expectNoSideEffects(() => post(app, {}, { token: suspendedUser.token }), 403, 'user_suspended');
    await expectNoSideEffects(() => post(app, {}, { token: suspendedTenant.token }), 403, 'tenant_suspended');
  });

  it('the same sub in two tenants is two users: each token starts a session of its own tenant', async () => {
    // Prepare (docs/api.md §4, §6: users are keyed by (tenant, user id))
    const sub = uid('shared');
    const first = await seedTenant(h.store, h.secretBox);
    const second = await seedTenant(h.store, h.secretBox);
    await seedUser(h.store, h.secretBox, {
      tenant_id: first.tenant_id,
      user_id: sub,
      mcp: { url: 'https://mcp.example.com/1' },
    });
    await seedUser(h.store, h.secretBox, {
      tenant_id: second.tenant_id,
      user_id: sub,
      status: 'suspended',
      mcp: { url: 'https://mcp.example.com/2' },
    });
    const app = appWith();
    const tokenOf = (t: TenantRecord) => h.jwks.mint({ sub, tenant_id: t.tenant_id });

    // Act
    const ok = await post(app, {}, { token: await tokenOf(first), idempotencyKey: 'same-key' });
    const suspended = await post(app, {}, { token: await tokenOf(second), idempotencyKey: 'same-key' });

    // Assess: the first tenant's user started; the second tenant's (suspended) record decided its own answer.
    expect(ok.status).toBe(201);
    const room = ((await ok.json()) as { room_name: string }).room_name;
    expect(room.startsWith(`lk-mcp-${first.tenant_id}-`)).toBe(true);
    expect(suspended.status).toBe(403);
    expect(((await suspended.json()) as { code: string }).code).toBe('user_suspended');
    const sessions = (await h.store.listSessions(first.tenant_id)).items;
    expect(sessions.map((x) => [x.tenant_id, x.user_id])).toEqual([[first.tenant_id, sub]]);
    expect((await h.store.listSessions(second.tenant_id)).items).toEqual([]);
  });

  it('404 user_not_found and 409 mcp_not_configured', async () => {
    const tenant = await seedTenant(h.store, h.secretBox);
    const ghost = await h.jwks.mint({ sub: uid('ghost'), tenant_id: tenant.tenant_id });
    const { token } = await tenantWithUser({}, null);
    const app = appWith();
    await expectNoSideEffects(() => post(app, {}, { token: ghost }), 404, 'user_not_found');
    await expectNoSideEffects(() => post(app, {}, { token }), 409, 'mcp_not_configured');
  });

  it('413 payload_too_large over 64 KiB, with or without Content-Length', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    const big = JSON.stringify({ participant_metadata: 'x'.repeat(70 * 1024) });
    await expectNoSideEffects(() => post(app, big, { token }), 413, 'payload_too_large');
    await expectNoSideEffects(
      () =>
        app.request('/v1/sessions', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: new ReadableStream({
            start(controller) {
              for (let i = 0; i < 70; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
              controller.close();
            },
          }),
          duplex: 'half',
        } as RequestInit),
      413,
      'payload_too_large',
    );
  });

  it('422 invalid_request for schema violations', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    const attributes = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    await expectNoSideEffects(() => post(app, '{not json', { token }), 422, 'invalid_request');
    await expectNoSideEffects(
      () => post(app, { participant_name: 'n'.repeat(129) }, { token }),
      422,
      'invalid_request',
    );
    await expectNoSideEffects(
      () => post(app, { participant_metadata: 'm'.repeat(4097) }, { token }),
      422,
      'invalid_request',
    );
    await expectNoSideEffects(
      () => post(app, { participant_attributes: attributes }, { token }),
      422,
      'invalid_request',
    );
    await expectNoSideEffects(() => post(app, { participant_name: 42 }, { token }), 422, 'invalid_request');
    await expectNoSideEffects(
      () => post(app, tokenSourceBody({ agentMetadata: 'm'.repeat(4097) }), { token }),
      422,
      'invalid_request',
    );
  });

  it('429 quota_exceeded when the tenant leases are all taken', async () => {
    const { token } = await tenantWithUser({ max_concurrent_sessions: 1 });
    const app = appWith();
    expect((await post(app, {}, { token })).status).toBe(201);
    const res = await expectNoSideEffects(() => post(app, {}, { token }), 429, 'quota_exceeded');
    expect(res.headers.get('retry-after')).not.toBeNull();
  });

  it('429 rate_limited past the per-user rate', async () => {
    const { token } = await tenantWithUser();
    const app = appWith({ configOverrides: { sessionRateLimitPerMinute: 2 } });
    expect((await post(app, {}, { token })).status).toBe(201);
    expect((await post(app, {}, { token })).status).toBe(201);
    const res = await expectNoSideEffects(() => post(app, {}, { token }), 429, 'rate_limited');
    expect(res.headers.get('retry-after')).not.toBeNull();
  });

  it('502 livekit_unavailable on a LiveKit 503: claim and lease released, nothing dispatched', async () => {
    const { tenant, token } = await tenantWithUser({ max_concurrent_sessions: 1 });
    const app = appWith();
    const before = await h.db.scan();
    h.livekitServer.failNext(1, '503');

    const res = await post(app, {}, { token });

    expect(res.status).toBe(502);
    expect(((await res.json()) as { code: string }).code).toBe('livekit_unavailable');
    expect(h.livekitServer.dispatches).toHaveLength(0);
    const after = await h.db.scan();
    // Only the rate counter moved; no claim, lease or session stays.
    const added = after.filter((i) => !before.some((b) => b.pk === i.pk && b.sk === i.sk));
    expect(added.map((i) => String(i.pk).split('#')[0])).toEqual(['RATE']);
    // The lease was released: the tenant at its limit of 1 can start a session.
    expect((await post(app, {}, { token })).status).toBe(201);
    expect(tenant.max_concurrent_sessions).toBe(1);
  });

  it('502 when LiveKit hangs past the timeout, and no dispatch is left behind', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    h.livekitServer.failNext(1, 'hang');
    const started = Date.now();

    const res = await post(app, {}, { token });

    expect(res.status).toBe(502);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(h.livekitServer.dispatches).toHaveLength(0);
    // The room was never created, so there is nothing to list or delete.
    expect(h.livekitServer.calls.map((c) => c.rpc)).toEqual([
      'AgentDispatchService/CreateDispatch',
      'RoomService/ListRooms',
    ]);
  });

  it('502 when CreateDispatch succeeded but its answer was lost: the dispatch is deleted', async () => {
    const { token } = await tenantWithUser();
    const lossy: LiveKitGateway = {
      ...h.gateway,
      async createDispatch(room, agent, metadata) {
        await h.gateway.createDispatch(room, agent, metadata);
        throw new LiveKitUnavailableError({ cause: new Error('answer lost') });
      },
    };
    const app = appWith({ livekit: lossy });

    const res = await post(app, {}, { token });

    expect(res.status).toBe(502);
    expect(h.livekitServer.dispatches).toHaveLength(0);
    expect(h.livekitServer.calls.map((c) => c.rpc)).toEqual([
      'AgentDispatchService/CreateDispatch',
      'RoomService/ListRooms',
      'AgentDispatchService/ListDispatch',
      'AgentDispatchService/DeleteDispatch',
    ]);
  });

  it('503 store_unavailable when DynamoDB does not answer', async () => {
    const { token } = await tenantWithUser();
    const deadClient = createDynamoClient({
      endpoint: 'http://127.0.0.1:9',
      maxAttempts: 1,
      requestTimeoutMs: 300,
      connectionTimeoutMs: 300,
    });
    const app = appWith({ store: new DynamoStore({ client: deadClient, tableName: h.db.tableName }) });
    await expectNoSideEffects(() => post(app, {}, { token }), 503, 'store_unavailable');
    deadClient.destroy();
  });
});

describe('POST /v1/sessions, Idempotency-Key', () => {
  it('10 concurrent requests with one key make one room and one dispatch', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    const key = uid('key');

    const responses = await Promise.all(
      Array.from({ length: 10 }, () => post(app, tokenSourceBody(), { token, idempotencyKey: key })),
    );

    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Record<string, unknown>[];
    const rooms = new Set(bodies.filter((b) => b.room_name !== undefined).map((b) => b.room_name));
    expect(rooms.size).toBe(1);
    for (const b of bodies.filter((x) => x.code !== undefined))
      expect(b.code).toBe('idempotency_key_in_flight');
    expect(dispatchCalls()).toHaveLength(1);
    expect(h.livekitServer.dispatches).toHaveLength(1);

    // A later repeat gets the same room and dispatch with a fresh token.
    const first = bodies.find((b) => b.room_name !== undefined)!;
    const repeat = await post(app, tokenSourceBody(), { token, idempotencyKey: key });
    expect(repeat.status).toBe(201);
    const again = (await repeat.json()) as Record<string, unknown>;
    expect(again.room_name).toBe(first.room_name);
    expect(again.dispatch_id).toBe(first.dispatch_id);
    expect(dispatchCalls()).toHaveLength(1);
  });

  it('a repeat is not rate limited and creates nothing; a different body is 422', async () => {
    const { token } = await tenantWithUser();
    const app = appWith({ configOverrides: { sessionRateLimitPerMinute: 1 } });
    const key = uid('key');
    const first = await post(app, tokenSourceBody(), { token, idempotencyKey: key });
    expect(first.status).toBe(201);

    const before = await h.db.scan();
    const repeat = await post(app, tokenSourceBody(), { token, idempotencyKey: key });
    expect(repeat.status).toBe(201);
    expect(await h.db.scan()).toEqual(before);
    expect(dispatchCalls()).toHaveLength(1);

    await expectNoSideEffects(
      () => post(app, tokenSourceBody({ agentMetadata: '{"lang":"fr"}' }), { token, idempotencyKey: key }),
      422,
      'idempotency_key_reused',
    );
  });

  it('409 idempotency_key_in_flight with Retry-After while the first is still running', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    const key = uid('key');
    h.livekitServer.failNext(1, 'hang');
    const first = post(app, {}, { token, idempotencyKey: key });
    await until(() => dispatchCalls().length === 1);

    const res = await expectNoSideEffects(
      () => post(app, {}, { token, idempotencyKey: key }),
      409,
      'idempotency_key_in_flight',
    );
    expect(res.headers.get('retry-after')).not.toBeNull();
    expect((await first).status).toBe(502);
  });

  it('after the session ended, the same key starts a new one', async () => {
    const { token } = await tenantWithUser();
    const app = appWith();
    const key = uid('key');
    const first = (await (await post(app, {}, { token, idempotencyKey: key })).json()) as {
      room_name: string;
    };
    for (const s of await h.store.roomSessions(first.room_name)) await h.store.endSession(s);

    const res = await post(app, {}, { token, idempotencyKey: key });

    expect(res.status).toBe(201);
    const second = (await res.json()) as { room_name: string };
    expect(second.room_name).not.toBe(first.room_name);
    expect(dispatchCalls()).toHaveLength(2);
  });

  it('a token-mode repeat carries the dispatch again, freshly sealed', async () => {
    const { token } = await tenantWithUser();
    const app = appWith({ configOverrides: { sessionDispatchMode: 'token' } });
    const key = uid('key');
    const first = (await (await post(app, {}, { token, idempotencyKey: key })).json()) as Record<
      string,
      string
    >;
    const second = (await (await post(app, {}, { token, idempotencyKey: key })).json()) as Record<
      string,
      string
    >;
    expect(second.room_name).toBe(first.room_name);
    expect(second.participant_token).not.toBe(first.participant_token);
    const agents = (decodeJwt(second.participant_token!).roomConfig as { agents: { metadata: string }[] })
      .agents;
    const grant = await openDispatchMetadata(agents[0]!.metadata, {
      keyring: h.dispatchKeys,
      agentName: 'mcp-agent',
      roomName: first.room_name!,
    });
    expect(grant.roomName).toBe(first.room_name);
  });
});

describe('POST /v1/sessions, CORS', () => {
  it('allows the configured origin and no other', async () => {
    const app = appWith();
    const preflight = (origin: string) =>
      app.request('/v1/sessions', {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,idempotency-key',
        },
      });
    const allowed = await preflight('https://app.example.test');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');
    const refused = await preflight('https://evil.example');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();

    const unauthenticated = await post(app, {}, { headers: { origin: 'https://app.example.test' } });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
  });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
