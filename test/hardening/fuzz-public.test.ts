import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionApp } from '../../functions/session/app.js';
import { createWebhookApp } from '../../functions/webhook/app.js';
import {
  errorLinesLog,
  type Harness,
  roomSidOf,
  seedTenant,
  seedUser,
  signWebhookBody,
  startHarness,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';
import { verifierOf } from '../support/jwks-server.js';
import { bodyText, hostileKey, hostileString, prototypeSnapshot, shaped } from './hostile.js';
import { recordingStore } from './recording-store.js';

const RUNS = 1000;

let h: Harness;
let rec: ReturnType<typeof recordingStore>;
let protoBefore: string[];

beforeAll(async () => {
  protoBefore = prototypeSnapshot();
  h = await startHarness();
  rec = recordingStore(h.store);
});
afterAll(async () => {
  await h?.stop();
});

/** Counts outcomes by status and code/action, to show what the generator reached. */
function tally(seen: Map<string, number>, status: number, text: string): void {
  let label = String(status);
  try {
    const body = JSON.parse(text) as { code?: string; action?: string };
    label += ` ${body.code ?? body.action ?? ''}`;
  } catch {
    // not JSON
  }
  seen.set(label, (seen.get(label) ?? 0) + 1);
}

/** Error lines the apps log, shown when a request fails with a 5xx. */
const errorLines: string[] = [];
const errorLog = errorLinesLog(errorLines);

function problemOk(status: number, text: string): void {
  expect(status, `${text} ${errorLines.slice(-3).join(' ')}`).toBeLessThan(500);
  if (status >= 400) {
    const body = JSON.parse(text) as { code?: unknown; status?: unknown };
    expect(typeof body.code).toBe('string');
    expect(body.status).toBe(status);
  }
}

/** The session app over the harness, its writes recorded, with this per-user rate limit. */
function sessionApp(sessionRateLimitPerMinute: number) {
  return createSessionApp({
    store: rec.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    verifier: verifierOf(h.jwks),
    log: errorLog,
    config: {
      defaultAgentName: 'mcp-agent',
      sessionDispatchMode: 'api',
      sessionTokenTtlSeconds: 900,
      sessionRateLimitPerMinute,
      metadataTtlSeconds: 7200,
      webhookRoomPrefix: 'lk-mcp-',
      corsOrigins: [],
      livekit: { wsUrl: 'wss://livekit.example.test' },
    },
  });
}

/** The webhook app over the harness, its writes recorded. */
function webhookApp() {
  return createWebhookApp({
    store: rec.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    log: errorLog,
    config: {
      defaultAgentName: 'mcp-agent',
      metadataTtlSeconds: 7200,
      webhookRoomPrefix: 'lk-mcp-',
      livekit: TEST_LIVEKIT,
    },
  });
}

describe('fuzz: POST /v1/sessions with a valid JWT', () => {
  it(`${RUNS} hostile bodies: never 5xx; a refusal writes nothing; a 201 makes exactly one session`, async () => {
    // Prepare
    const app = sessionApp(10_000);
    const tenant = await seedTenant(h.store, h.secretBox, { agent_names: ['mcp-agent', 'other-agent'] });
    // Without MCP settings every request that passes validation ends at 409: nothing may be written.
    const bare = await seedUser(h.store, h.secretBox, { tenant_id: tenant.tenant_id });
    const ready = await seedUser(h.store, h.secretBox, {
      tenant_id: tenant.tenant_id,
      mcp: { url: 'https://mcp.example.com/u', token: `tok-${uid('x')}` },
    });
    const jwts = {
      bare: await h.jwks.mint({ sub: bare.user_id, tenant_id: tenant.tenant_id }, { expiresIn: '1h' }),
      ready: await h.jwks.mint({ sub: ready.user_id, tenant_id: tenant.tenant_id }, { expiresIn: '1h' }),
    };
    const agentArb = shaped({
      agent_name: fc.constantFrom('mcp-agent', 'other-agent', 'nope', ''),
      metadata: hostileString,
      deployment: hostileString,
    });
    const shape = shaped({
      room_name: fc.constantFrom('', 'lk-mcp-x-y'),
      participant_name: fc.oneof(fc.string({ maxLength: 20 }), hostileString),
      participant_identity: fc.constantFrom(bare.user_id, ready.user_id, ''),
      participant_metadata: hostileString,
      participant_attributes: fc.oneof(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
        fc.dictionary(hostileKey, hostileString, { maxKeys: 40 }),
      ),
      room_config: shaped({ agents: fc.array(agentArb, { maxLength: 2 }) }),
    });
    const request = fc.record({
      body: bodyText(shape),
      who: fc.constantFrom('bare', 'bare', 'bare', 'ready'),
      idempotencyKey: fc.option(fc.stringMatching(/^[\x20-\x7e]{0,40}$/), { nil: undefined }),
    });
    let created = 0;
    const seen = new Map<string, number>();

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(request, async ({ body, who, idempotencyKey }) => {
        rec.writes.length = 0;
        const before = who === 'ready' ? await h.db.scan() : undefined;
        const dispatchesBefore = h.livekitServer.dispatches.length;
        const headers: Record<string, string> = {
          authorization: `Bearer ${jwts[who as 'bare' | 'ready']}`,
          'content-type': 'application/json',
        };
        if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
        const res = await app.request('/v1/sessions', { method: 'POST', headers, body });
        const text = await res.text();
        tally(seen, res.status, text);
        problemOk(res.status, text);
        expect(text).not.toContain(jwts.bare);
        expect(text).not.toContain(jwts.ready);
        if (res.status === 201) {
          expect(who).toBe('ready');
          created += 1;
          const room = (JSON.parse(text) as { room_name: string }).room_name;
          const sessions = await h.store.roomSessions(room);
          expect(sessions).toHaveLength(1);
          expect(h.livekitServer.dispatches.filter((d) => d.room === room)).toHaveLength(1);
        } else if (who === 'bare') {
          expect(rec.writes).toEqual([]);
        } else {
          expect(await h.db.scan()).toEqual(before);
          expect(h.livekitServer.dispatches.length).toBe(dispatchesBefore);
        }
      }),
      { numRuns: RUNS },
    );
    expect(prototypeSnapshot()).toEqual(protoBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The generator reaches the dispatch path too, not only refusals.
    expect(created).toBeGreaterThan(0);
    for (const outcome of [
      '201 ',
      '422 invalid_request',
      '409 mcp_not_configured',
      '400 field_not_allowed',
    ]) {
      expect(seen.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe('fuzz: POST /v1/livekit/webhook correctly signed', () => {
  it(`${RUNS} hostile events: never 5xx; only a dispatch for the real user writes more than the event claim`, async () => {
    // Prepare
    const app = webhookApp();
    const tenant = await seedTenant(h.store, h.secretBox, { webhook_dispatch: true });
    const user = await seedUser(h.store, h.secretBox, {
      tenant_id: tenant.tenant_id,
      mcp: { url: 'https://mcp.example.com/w', token: `tok-${uid('x')}` },
    });
    const rooms = [`lk-mcp-${tenant.tenant_id}-a`, `lk-mcp-${tenant.tenant_id}-b`, 'elsewhere', 'lk-mcp-'];
    for (const r of rooms) h.livekitServer.addRoom(r);
    const participant = shaped({
      sid: hostileString,
      identity: fc.oneof({ weight: 3, arbitrary: fc.constant(user.user_id) }, hostileString),
      kind: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('STANDARD', 'SIP', 'AGENT', 'EGRESS') },
        fc.constantFrom('BOGUS', 0, 3, 4, 99, -1),
      ),
      state: fc.constantFrom('ACTIVE', 'JOINED', 'bogus'),
      attributes: fc.dictionary(
        fc.oneof(hostileKey, fc.constantFrom('sip.trunkID', 'sip.phoneNumber')),
        fc.oneof(fc.string({ maxLength: 10 }), hostileString),
        { maxKeys: 5 },
      ),
      metadata: fc.oneof(fc.string({ maxLength: 10 }), hostileString),
      name: fc.oneof(fc.string({ maxLength: 10 }), hostileString),
    });
    const event = shaped({
      event: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom('participant_joined', 'room_finished') },
        fc.constantFrom('room_started', 'track_published', 'bogus', ''),
      ),
      id: fc.oneof(
        { weight: 4, arbitrary: fc.uuid().map((u) => `EV_${u}`) },
        fc.constantFrom('EV_fixed_1', 'EV_fixed_2'),
        hostileString,
      ),
      createdAt: fc.constant(String(Math.floor(Date.now() / 1000))),
      // LiveKit's room sid names one room incarnation: mostly consistent pairs, sometimes not.
      room: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...rooms).map((name) => ({ name, sid: roomSidOf(name) })) },
        shaped({ name: fc.oneof(fc.constantFrom(...rooms), hostileString), sid: hostileString }),
      ),
      participant,
    });
    const protoBeforeRun = prototypeSnapshot();
    const seen = new Map<string, number>();
    // Run first, whatever the generators draw: the real user joining each prefixed room, then
    // again (a dispatch, then already_dispatched). Left to chance, a dispatch is drawn about twice
    // in 1,000 runs, so the outcome check below failed in about one run of twelve.
    const joined = (room: string, id: string) =>
      JSON.stringify({
        event: 'participant_joined',
        id,
        createdAt: String(Math.floor(Date.now() / 1000)),
        room: { name: room, sid: roomSidOf(room) },
        participant: { sid: `PA_${id}`, identity: user.user_id, kind: 'STANDARD', state: 'ACTIVE' },
      });
    const examples: [string][] = [
      [joined(rooms[0]!, `EV_${uid('example')}`)],
      [joined(rooms[0]!, `EV_${uid('example')}`)],
      [joined(rooms[1]!, `EV_${uid('example')}`)],
    ];

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(bodyText(event), async (body) => {
        rec.writes.length = 0;
        const dispatchesBefore = h.livekitServer.dispatches.length;
        const signed = await signWebhookBody(body, TEST_LIVEKIT);
        const res = await app.request('/v1/livekit/webhook', {
          method: 'POST',
          headers: { authorization: signed.authorization, 'content-type': 'application/webhook+json' },
          body,
        });
        const text = await res.text();
        tally(seen, res.status, text);
        problemOk(res.status, text);
        expect(text).not.toContain(signed.authorization);
        const action = res.status === 200 ? (JSON.parse(text) as { action: string }).action : undefined;
        if (action === 'dispatched') {
          const parsed = JSON.parse(body) as { participant: { identity: string } };
          expect(parsed.participant.identity).toBe(user.user_id);
          expect(h.livekitServer.dispatches.length).toBe(dispatchesBefore + 1);
        } else {
          expect(h.livekitServer.dispatches.length).toBe(dispatchesBefore);
          if (action !== 'ended') {
            for (const w of rec.writes) {
              const pk = String(w.pk);
              // The event's own claim; or, for an already dispatched room, a claim attempt that lost.
              if (action === 'already_dispatched' && w.method === 'tryClaim' && pk.startsWith('DISPATCH#'))
                continue;
              expect(['tryClaim', 'completeClaim', 'releaseClaim']).toContain(w.method);
              expect(pk).toMatch(/^EVENT#/);
            }
          }
        }
      }),
      { numRuns: RUNS, examples },
    );
    expect(prototypeSnapshot()).toEqual(protoBeforeRun);
    for (const outcome of ['200 dispatched', '200 ignored', '401 invalid_signature']) {
      expect(seen.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe('webhook: ids too long for a table key', () => {
  it('each oversized id (event, room, sid, identity, SIP trunk, phone) → 200 ignored, nothing written', async () => {
    // Prepare
    const app = webhookApp();
    const huge = 'x'.repeat(3000);
    const base = {
      event: 'participant_joined',
      id: 'EV_ok',
      room: { name: 'lk-mcp-acme-room', sid: 'RM_ok' },
      participant: { identity: 'alice', kind: 'STANDARD', attributes: {} as Record<string, string> },
    };
    const variants = [
      { ...base, id: `EV_${huge}` },
      { ...base, room: { ...base.room, name: `lk-mcp-${huge}` } },
      { ...base, room: { ...base.room, sid: `RM_${huge}` } },
      { ...base, participant: { ...base.participant, identity: huge } },
      { ...base, participant: { ...base.participant, kind: 'SIP', attributes: { 'sip.trunkID': huge } } },
      {
        ...base,
        participant: {
          ...base.participant,
          kind: 'SIP',
          attributes: { 'sip.trunkID': 'ST_x', 'sip.phoneNumber': huge },
        },
      },
      { event: 'room_finished', id: `EV_${huge}`, room: { name: 'lk-mcp-acme-room', sid: 'RM_ok' } },
      { event: 'room_finished', id: 'EV_ok2', room: { name: `lk-mcp-${huge}`, sid: 'RM_ok' } },
    ];

    for (const variant of variants) {
      // Act
      rec.writes.length = 0;
      const body = JSON.stringify({ ...variant, id: `${variant.id}-${uid('v')}` });
      const signed = await signWebhookBody(body, TEST_LIVEKIT);
      const res = await app.request('/v1/livekit/webhook', {
        method: 'POST',
        headers: { authorization: signed.authorization, 'content-type': 'application/webhook+json' },
        body,
      });

      // Assess
      const text = await res.text();
      problemOk(res.status, text);
      expect(res.status, text).toBe(200);
    }
  });
});

describe('sessions: a JWT subject no user id can be', () => {
  it('a 4 KB or control-character `sub` → 4xx, nothing written', async () => {
    // Prepare
    const app = sessionApp(10);

    for (const sub of ['x'.repeat(4000), '🙂'.repeat(600), 'a\u0000b', '\uD800']) {
      // Act
      rec.writes.length = 0;
      const jwt = await h.jwks.mint({ sub, tenant_id: 'acme' });
      const res = await app.request('/v1/sessions', {
        method: 'POST',
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body: '{}',
      });

      // Assess
      const text = await res.text();
      problemOk(res.status, text);
      expect(res.status, text).toBeGreaterThanOrEqual(400);
      expect(rec.writes.filter((w) => w.ok === true)).toEqual([]);
    }
  });
});
