import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { silentLog } from '../../functions/core/log.js';
import { createDispatchSealer } from '../../functions/core/sealing.js';
import { createCredentialsApp } from '../../functions/credentials/app.js';
import { type Harness, seedUser, startHarness, testKeyring, uid } from '../support/fixtures.js';
import {
  longAssertion,
  type RenewalRig,
  renew,
  renewalRig,
  snapshot,
  startSession,
  TEST_AGENT,
  TEST_BASE_URL,
  TEST_MCP,
  TEST_REFRESH_URL,
  written,
} from '../support/renewal.js';

// docs/api.md §9, every row, over the credentials app against dynalite: what it answers and what
// it wrote (only its jti, its rate window and the lease; nothing for a refused assertion).

let h: Harness;
let rig: RenewalRig;

beforeAll(async () => {
  h = await startHarness();
  rig = renewalRig(h);
}, 30_000);

afterAll(async () => {
  await h?.stop();
});

const kinds = (keys: string[]) => keys.map((k) => k.replace(/^(-?[A-Z]+)#.*$/, '$1'));

describe('POST /v1/worker/credentials renews a live job', () => {
  it('answers new metadata: same sid, room, pid and aud; new jti, iat, exp; refresh_at and refresh_url', async () => {
    // Prepare
    const s = await startSession(h, rig, { maxConcurrentSessions: 3 });
    const before = await snapshot(h);
    const now = Math.floor(Date.now() / 1000);
    // Act
    const res = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
    // Assess
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const claims = await rig.open(res.json.metadata as string);
    expect(claims).toMatchObject({
      sid: s.session.sid,
      room: s.session.room_name,
      pid: s.userId,
      aud: TEST_AGENT,
      sub: s.userId,
      tid: s.tenantId,
      refresh_url: TEST_REFRESH_URL,
      unavailable: [],
    });
    expect(claims.jti).not.toBe(s.claims.jti);
    expect(claims.exp - claims.iat).toBe(7200);
    expect(claims.iat).toBeGreaterThanOrEqual(now);
    expect(claims.refresh_at).toBe(claims.iat + 900);
    expect(claims.mcp_servers).toEqual([
      {
        name: 'mcp',
        url: TEST_MCP.url,
        transport: 'streamable_http',
        auth: 'static',
        headers: { Authorization: `Bearer ${TEST_MCP.token}${s.userId}` },
      },
    ]);
    expect(kinds(written(before, await snapshot(h)))).toEqual(['JTI', 'LEASE', 'RATE']);
  });

  it('every dispatch seals a sid (128 bits, base64url, not the room or dispatch id) and its pointer', async () => {
    const s = await startSession(h, rig);
    expect(s.claims.sid).toBe(s.session.sid);
    expect(s.session.sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(s.session.sid).not.toBe(s.session.room_name);
    expect(s.session.sid).not.toBe(s.session.dispatch_id);
    expect(s.claims.refresh_url).toBe(TEST_REFRESH_URL);
    expect(s.claims.refresh_at).toBe(s.claims.iat + 900);
    expect(await h.store.sessionPointer(s.session.sid)).toMatchObject({ room_name: s.session.room_name });
    expect((await h.store.roomSessions(s.session.room_name))[0]?.sid).toBe(s.session.sid);
  });

  it('renews expired metadata of an active session (a restarted job has only its original)', async () => {
    const s = await startSession(h, rig);
    const now = Math.floor(Date.now() / 1000);
    const old = await rig.forge({ ...s.claims, iat: now - 9000, exp: now - 1800 });
    const res = await renew(h, rig, { sid: s.session.sid, metadata: old });
    expect(res.status).toBe(200);
    expect((await rig.open(res.json.metadata as string)).exp).toBeGreaterThan(now);
  });

  it('leaves a rejected static token out, as unavailable mcp_auth_rejected', async () => {
    const s = await startSession(h, rig);
    const res = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'mcp', status: 401 }],
    });
    expect(res.status).toBe(200);
    const claims = await rig.open(res.json.metadata as string);
    expect(claims.mcp_servers).toEqual([]);
    expect(claims.unavailable).toEqual([{ name: 'mcp', status: 'unavailable', code: 'mcp_auth_rejected' }]);
  });
});

describe('POST /v1/worker/credentials refuses a bad worker assertion with 401, writing nothing', () => {
  const cases: [string, (sid: string, metadata: string) => Promise<Parameters<typeof renew>[2]>, string][] = [
    [
      'a bad signature (another key under the same kid)',
      async (sid, metadata) => ({ sid, metadata, keyring: testKeyring(h.dispatchKeys.current) }),
      'bad_signature',
    ],
    [
      'an unknown kid',
      async (sid, metadata) => ({ sid, metadata, keyring: testKeyring('other-kid') }),
      'unknown_kid',
    ],
    [
      'the wrong aud',
      async (sid, metadata) => ({ sid, metadata, audience: `${TEST_BASE_URL}/v1/other` }),
      'wrong_audience',
    ],
    [
      'an expired assertion',
      async (sid, metadata) => ({ sid, metadata, now: Math.floor(Date.now() / 1000) - 120 }),
      'expired',
    ],
    [
      'a lifetime over 60 s',
      async (sid, metadata) => ({
        sid,
        metadata,
        authorization: `Bearer ${await longAssertion(h.dispatchKeys, sid, 61)}`,
      }),
      'lifetime_too_long',
    ],
    ['no bearer', async (sid, metadata) => ({ sid, metadata, authorization: 'Basic abc' }), 'malformed'],
    [
      'another agent as iss',
      async (sid, metadata) => ({ sid, metadata, agent: 'other-agent' }),
      'wrong_issuer',
    ],
    [
      'a sub that is not the metadata sid',
      async (_sid, metadata) => ({ sid: randomBytes(16).toString('base64url'), metadata }),
      'wrong_subject',
    ],
  ];
  for (const [what, options, reason] of cases) {
    it(`${what}: 401 invalid_worker_assertion (${reason})`, async () => {
      const s = await startSession(h, rig);
      const before = await snapshot(h);
      const res = await renew(h, rig, await options(s.session.sid, s.metadata));
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ code: 'invalid_worker_assertion', reason });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const changed = written(before, await snapshot(h));
      // The issuer and subject are checked against the metadata and record: the jti is used by then.
      expect(kinds(changed)).toEqual(reason === 'wrong_issuer' || reason === 'wrong_subject' ? ['JTI'] : []);
    });
  }

  it('a reused jti: the second call is 401 replayed and writes nothing', async () => {
    const s = await startSession(h, rig);
    const jti = randomBytes(16).toString('base64url');
    expect((await renew(h, rig, { sid: s.session.sid, metadata: s.metadata, jti })).status).toBe(200);
    const before = await snapshot(h);
    const res = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata, jti });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: 'invalid_worker_assertion', reason: 'replayed' });
    expect(written(before, await snapshot(h))).toEqual([]);
  });

  it('a body that is not {metadata, rejected?}: 422 invalid_request, nothing written', async () => {
    const s = await startSession(h, rig);
    const before = await snapshot(h);
    const res = await renew(h, rig, {
      sid: s.session.sid,
      metadata: '',
      body: { rejected: [{ status: 500 }] },
    });
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('invalid_request');
    expect(written(before, await snapshot(h))).toEqual([]);
  });
});

describe('POST /v1/worker/credentials: the session record decides, not the metadata', () => {
  it('metadata of another room or agent, or not ours: 401 invalid_metadata, only the jti written', async () => {
    const s = await startSession(h, rig);
    const other = await startSession(h, rig);
    const unknownSid = randomBytes(16).toString('base64url');
    const variants: [string, string][] = [
      [await rig.forge({ ...s.claims, room: other.session.room_name }), 'wrong_room'],
      [await rig.forge({ ...s.claims, aud: 'other-agent' }), 'wrong_audience'],
      [`${s.metadata.slice(0, -4)}AAAA`, 'decrypt_failed'],
      [
        await createDispatchSealer(testKeyring('k-unknown'))
          .seal({
            agentName: TEST_AGENT,
            userId: s.userId,
            tenantId: s.tenantId,
            roomName: s.session.room_name,
            participantIdentity: s.userId,
            mcpServers: [],
            ttlSeconds: 60,
            sid: s.session.sid,
          })
          .then((x) => x.metadata),
        'unknown_kid',
      ],
      [await rig.forge({ ...s.claims, sid: unknownSid }), 'mismatch'],
    ];
    for (const [metadata, reason] of variants) {
      const before = await snapshot(h);
      const sid = reason === 'mismatch' ? unknownSid : s.session.sid;
      const res = await renew(h, rig, { sid, metadata });
      expect(res.status, reason).toBe(401);
      expect(res.json, reason).toMatchObject({ code: 'invalid_metadata', reason });
      expect(kinds(written(before, await snapshot(h))), reason).toEqual(['JTI']);
    }
  });

  it('metadata forged with the dispatch key naming another user or tenant under a real sid: 401, no token of theirs', async () => {
    const s = await startSession(h, rig);
    const victim = await startSession(h, rig);
    const sameTenantVictim = uid('u');
    await seedUser(h.store, h.secretBox, {
      tenant_id: s.tenantId,
      user_id: sameTenantVictim,
      mcp: { url: TEST_MCP.url, token: `${TEST_MCP.token}${sameTenantVictim}` },
    });
    for (const forged of [
      { ...s.claims, sub: sameTenantVictim, pid: sameTenantVictim },
      { ...s.claims, sub: victim.userId, tid: victim.tenantId, pid: victim.userId },
      { ...s.claims, sub: victim.userId, tid: victim.tenantId },
    ]) {
      const before = await snapshot(h);
      const res = await renew(h, rig, { sid: s.session.sid, metadata: await rig.forge(forged) });
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ code: 'invalid_metadata', reason: 'mismatch' });
      expect(JSON.stringify(res.json)).not.toContain(TEST_MCP.token);
      expect(kinds(written(before, await snapshot(h)))).toEqual(['JTI']);
    }
  });
});

describe('POST /v1/worker/credentials: 403 session_ended, the worker ends the job', () => {
  const enders: [string, (s: Awaited<ReturnType<typeof startSession>>) => Promise<unknown>][] = [
    ['the session ended (room_finished)', (s) => rig.dispatcher.finishRoom(s.session.room_name)],
    [
      'the user is suspended',
      async (s) => {
        const u = (await h.store.getUser(s.tenantId, s.userId))!;
        await h.store.updateUser({ ...u, status: 'suspended' }, u.version);
      },
    ],
    [
      'the tenant is suspended',
      async (s) => {
        const t = (await h.store.getTenant(s.tenantId))!;
        await h.store.updateTenant({ ...t, status: 'suspended' }, t.version);
      },
    ],
    ['the tenant is deleted', (s) => h.store.deleteTenant(s.tenantId)],
    ['the user is deleted', (s) => h.store.deleteUser(s.tenantId, s.userId)],
  ];
  for (const [what, end] of enders) {
    it(`${what}: 403, only the jti written`, async () => {
      const s = await startSession(h, rig, { maxConcurrentSessions: 2 });
      await end(s);
      const before = await snapshot(h);
      const res = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
      expect(res.status).toBe(403);
      expect(res.json.code).toBe('session_ended');
      expect(JSON.stringify(res.json)).not.toContain(TEST_MCP.token);
      expect(kinds(written(before, await snapshot(h)))).toEqual(['JTI']);
    });
  }
});

describe('POST /v1/worker/credentials: 429 rate_limited past 20 renewals per session per minute', () => {
  it('admits 20 in a minute, refuses the 21st writing only its jti', async () => {
    const s = await startSession(h, rig);
    for (let i = 0; i < 20; i++) {
      expect((await renew(h, rig, { sid: s.session.sid, metadata: s.metadata })).status).toBe(200);
    }
    const before = await snapshot(h);
    const res = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
    expect(res.status).toBe(429);
    expect(res.json.code).toBe('rate_limited');
    expect(res.headers.get('retry-after')).toBe('60');
    expect(kinds(written(before, await snapshot(h)))).toEqual(['JTI']);
  }, 30_000);
});

describe('POST /v1/worker/credentials: 503 store_unavailable', () => {
  it('answers 503 with Retry-After when DynamoDB does not answer', async () => {
    const s = await startSession(h, rig);
    const down = new DynamoStore({
      client: createDynamoClient({ endpoint: 'http://127.0.0.1:9', requestTimeoutMs: 500, maxAttempts: 1 }),
      tableName: h.db.tableName,
    });
    const app = createCredentialsApp({
      store: down,
      sealer: h.sealer,
      secretBox: h.secretBox,
      config: {
        dispatchKeys: h.dispatchKeys,
        metadataTtlSeconds: 7200,
        credentialsRefreshSeconds: 900,
        publicBaseUrl: TEST_BASE_URL,
      },
      log: silentLog,
    });
    const res = await renew(h, { ...rig, app }, { sid: s.session.sid, metadata: s.metadata });
    expect(res.status).toBe(503);
    expect(res.json.code).toBe('store_unavailable');
    expect(res.headers.get('retry-after')).toBe('1');
  });
});
