/**
 * Issue 16: revoking a user who has many live sessions, through the admin API of the local
 * server (the real adapters) against dynalite and the LiveKit stand-in in the downstream child,
 * with modeled AWS round trips on every DynamoDB request and LiveKit call.
 *
 *   npx tsx bench/revoke.ts [sessions=1000] [--dynamo-ms 5] [--livekit-ms 30]
 *
 * Seeds one user with `sessions` live sessions (each in its own room, dispatched by the session
 * app's dispatcher), then calls `POST /v1/admin/tenants/{t}/users/{u}/revoke` until it answers 200
 * (a 202 says the request's budget ran out, docs/api.md §6; the repeat resumes). Prints one JSON
 * document: wall time, the answers, sessions ended, DeleteRoom calls and DynamoDB requests, and
 * what is left active (must be 0).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDispatcher } from '../functions/core/dispatcher.js';
import { silentLog } from '../functions/core/log.js';
import { newRoomName } from '../functions/core/rooms.js';
import { startLocalServer } from '../functions/local.js';
import { seedTenant, seedUser, TEST_LIVEKIT } from '../test/support/fixtures.js';
import { diffSnapshots, livekitCalls, startDownstream } from './lib/downstream-client.js';
import { pool, round } from './lib/stats.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const SESSIONS = Number(args.find((a) => /^\d+$/.test(a)) ?? 1000);
const DYNAMO_MS = flag('--dynamo-ms', 5);
const LIVEKIT_MS = flag('--livekit-ms', 30);
const AGENT = 'mcp-agent';
const MCP = { url: 'https://mcp.example.com/mcp', token: 'bench-revoke-token-0123456789' };

const downstream = await startDownstream(TEST_LIVEKIT);
const dataDir = await mkdtemp(join(tmpdir(), 'lkmcp-bench-revoke-'));
const local = await startLocalServer({
  PORT: '0',
  DATA_DIR: dataDir,
  DYNAMODB_ENDPOINT: downstream.dynamoEndpoint,
  TABLE_NAME: 'bench',
  LIVEKIT_URL: downstream.livekitUrl,
  LIVEKIT_API_KEY: TEST_LIVEKIT.apiKey,
  LIVEKIT_API_SECRET: TEST_LIVEKIT.apiSecret,
  LOG_LEVEL: 'ERROR',
});
try {
  const { store, secretBox, sealer, livekit, config } = local.services;
  const tenant = await seedTenant(store, secretBox, { tenant_id: 'bench-revoke' });
  const userId = 'bench-revoke-u';
  await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: userId, mcp: MCP });
  const dispatcher = createDispatcher({
    store,
    livekit,
    sealer,
    secretBox,
    clock: () => new Date(),
    log: silentLog,
    config: {
      dispatchKeys: config.dispatchKeys,
      metadataTtlSeconds: config.metadataTtlSeconds,
      credentialsRefreshSeconds: config.credentialsRefreshSeconds,
      publicBaseUrl: config.publicBaseUrl,
      defaultAgentName: AGENT,
      webhookRoomPrefix: config.webhookRoomPrefix,
    },
  } as Parameters<typeof createDispatcher>[0]);

  // Seed on loopback (no modeled latency): one session per room, 8 at a time.
  const seedStart = performance.now();
  await pool(SESSIONS, 8, async () => {
    const r = await dispatcher.dispatch({
      tenant,
      userId,
      participantIdentity: userId,
      agentName: AGENT,
      roomName: newRoomName('lk-mcp-', tenant.tenant_id, (n) => randomBytes(n)),
      perParticipant: false,
      freshRoom: true,
      mcpServers: [{ name: 'mcp', url: MCP.url, transport: 'streamable_http', headers: {} }],
      mode: 'api',
      origin: 'session',
    } as Parameters<typeof dispatcher.dispatch>[0]);
    if (r.status !== 'dispatched') throw new Error(`seed: ${r.status}`);
  });
  const seededMs = performance.now() - seedStart;
  const active = async () => (await store.activeSessionsOfUser(tenant.tenant_id, userId)).length;
  const before = await active();

  const token = await local.mintToken!({ user: 'bench-operator', superadmin: true });
  await downstream.setLatency({ dynamoMs: DYNAMO_MS, livekitMs: LIVEKIT_MS });
  const snap0 = await downstream.snapshot();
  const answers: { status: number; ms: number; ended?: number }[] = [];
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    const res = await fetch(`${local.url}/v1/admin/tenants/${tenant.tenant_id}/users/${userId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { ended_sessions?: number };
    answers.push({
      status: res.status,
      ms: round(performance.now() - s, 1),
      ...(body.ended_sessions === undefined ? {} : { ended: body.ended_sessions }),
    });
    if (res.status === 200) break;
    if (res.status !== 202) throw new Error(`revoke answered ${res.status} ${JSON.stringify(body)}`);
  }
  const wallMs = performance.now() - t0;
  const d = diffSnapshots(await downstream.snapshot(), snap0);
  await downstream.setLatency({ dynamoMs: 0, livekitMs: 0 });
  const left = await active();

  console.log(
    JSON.stringify(
      {
        sessions: SESSIONS,
        modeled: { dynamoMs: DYNAMO_MS, livekitMs: LIVEKIT_MS },
        seededMs: round(seededMs),
        activeBefore: before,
        revoke: {
          wallMs: round(wallMs),
          answers,
          perSessionMs: round(wallMs / Math.max(1, before), 2),
          livekit: d.livekit,
          livekitCalls: livekitCalls(d),
          dynamoRequests: d.dynamo.requests,
          dynamoOps: Object.fromEntries(
            Object.entries(d.dynamo.ops).map(([k, c]) => [k, c.ok + c.conditionFailed + c.error]),
          ),
        },
        activeAfter: left,
      },
      null,
      1,
    ),
  );
  if (left !== 0) process.exitCode = 1;
} finally {
  await local.stop();
  await downstream.stop();
  await rm(dataDir, { recursive: true, force: true });
}
