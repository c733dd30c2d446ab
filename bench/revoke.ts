import { rm } from 'node:fs/promises';
import { seedTenant, seedUser, TEST_LIVEKIT } from '../test/support/fixtures.js';
import { diffSnapshots, livekitCalls, startDownstream } from './lib/downstream-client.js';
import { dispatchLive, localDispatcher, startLocalOver } from './lib/local-over.js';
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
const { local, dataDir } = await startLocalOver(downstream, 'lkmcp-bench-revoke-');
try {
  const { store, secretBox } = local.services;
  const tenant = await seedTenant(store, secretBox, { tenant_id: 'bench-revoke' });
  const userId = 'bench-revoke-u';
  await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: userId, mcp: MCP });
  const dispatcher = localDispatcher(local, AGENT);

  // Seed on loopback (no modeled latency): one session per room, 8 at a time.
  const seedStart = performance.now();
  await pool(SESSIONS, 8, async () => {
    await dispatchLive(dispatcher, tenant, userId, { agentName: AGENT, mcpUrl: MCP.url });
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
