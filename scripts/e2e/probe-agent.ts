/**
 * Probe of the worker half of the e2e, without our server: metadata sealed with our sealer
 * for two users reaches the Python e2e agent through AgentDispatchClient; each job calls
 * `whoami` through its MCPToolset with its own user's token; metadata sealed for another room
 * is refused with `wrong_room` and no MCP call is made.
 *
 *   npx tsx scripts/e2e/probe-agent.ts        (LKMCP_E2E_VERBOSE=1 to see all logs)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { generateKeyringJson, parseKeyring } from '../../functions/core/keyring.js';
import { createDispatchSealer } from '../../functions/core/sealing.js';
import { type RunningMcpServer, startMcpServer, tokenFingerprint } from '../../test/support/mcp-server.js';
import { type RunningAgent, startPythonAgent } from './agents.js';
import { type RunningLiveKitServer, startLiveKitServer } from './livekit.js';

const AGENT = 'mcp-agent';

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function main() {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'lk-probe-agent-'));
  const tokens = {
    a: `tok-a-${randomBytes(12).toString('hex')}`,
    b: `tok-b-${randomBytes(12).toString('hex')}`,
  };
  const keyringJson = JSON.stringify(generateKeyringJson('k-e2e'));
  const { keyring } = parseKeyring('DISPATCH_KEYS', keyringJson);
  if (!keyring) throw new Error('keyring');
  const sealer = createDispatchSealer(keyring);

  let livekit: RunningLiveKitServer | undefined;
  let mcp: RunningMcpServer | undefined;
  let agent: RunningAgent | undefined;
  try {
    [livekit, mcp] = await Promise.all([
      startLiveKitServer({}),
      startMcpServer({
        users: {
          [tokens.a]: { userId: 'user-a', data: { tenant: 'acme' } },
          [tokens.b]: { userId: 'user-b', data: { tenant: 'globex' } },
        },
      }),
    ]);
    agent = await startPythonAgent({
      livekit,
      agentName: AGENT,
      dispatchKeys: keyringJson,
      reportFile: join(dir, 'r.jsonl'),
    });
    const tReady = performance.now();
    console.log(`LiveKit + MCP + agent ready in ${Math.round(tReady - t0)} ms`);

    const dispatch = new AgentDispatchClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
    const seal = (
      user: string,
      tenant: string,
      room: string,
      token: string,
      transport: 'streamable_http' | 'sse',
    ) =>
      sealer.seal({
        agentName: AGENT,
        userId: user,
        tenantId: tenant,
        roomName: room,
        participantIdentity: user,
        mcpServers: [
          {
            name: 'personal',
            url: transport === 'sse' ? mcp!.sseUrl : mcp!.url,
            transport,
            headers: { Authorization: `Bearer ${token}` },
            allowed_tools: ['whoami', 'echo'],
          },
        ],
        ttlSeconds: 600,
      });
    const roomA = `lk-mcp-acme-${randomBytes(6).toString('hex')}`;
    const roomB = `lk-mcp-globex-${randomBytes(6).toString('hex')}`;
    const roomX = `lk-mcp-acme-${randomBytes(6).toString('hex')}`;
    // No CreateRoom first: CreateDispatch alone must bring the room up, as our session function relies on.
    await dispatch.createDispatch(roomA, AGENT, {
      metadata: (await seal('user-a', 'acme', roomA, tokens.a, 'streamable_http')).metadata,
    });
    await dispatch.createDispatch(roomB, AGENT, {
      metadata: (await seal('user-b', 'globex', roomB, tokens.b, 'sse')).metadata,
    });
    // Sealed for roomA, dispatched into roomX: the worker must refuse it.
    await dispatch.createDispatch(roomX, AGENT, {
      metadata: (await seal('user-a', 'acme', roomA, tokens.a, 'streamable_http')).metadata,
    });

    const served = await agent.waitForReports((r) => r.event === 'served', 2);
    const refused = await agent.waitForReports((r) => r.event === 'refused', 1);
    const tJobs = performance.now();
    const byRoom = new Map(served.map((r) => [r.room, r]));
    const a = byRoom.get(roomA);
    const b = byRoom.get(roomB);
    check(
      a?.event === 'served' && a.user_id === 'user-a' && a.whoami[0]?.user_id === 'user-a',
      `A's job saw A's data: ${JSON.stringify(a)}`,
    );
    check(
      b?.event === 'served' && b.user_id === 'user-b' && b.whoami[0]?.user_id === 'user-b',
      `B's job saw B's data: ${JSON.stringify(b)}`,
    );
    check(a.tools.join() === 'echo,whoami', `allowed_tools hides secret_tool: ${a.tools}`);
    check(
      refused[0]?.event === 'refused' && refused[0].room === roomX && refused[0].code === 'wrong_room',
      `refused: ${JSON.stringify(refused)}`,
    );

    const fpA = tokenFingerprint(tokens.a);
    const fpB = tokenFingerprint(tokens.b);
    check(mcp.calls.filter((c) => c.tool === 'whoami').length === 2, `two whoami calls: ${mcp.calls.length}`);
    check(
      mcp.calls.some((c) => c.tokenFingerprint === fpA && c.transport === 'streamable_http'),
      "A's token over streamable HTTP",
    );
    check(
      mcp.calls.some((c) => c.tokenFingerprint === fpB && c.transport === 'sse'),
      "B's token over SSE",
    );
    check(
      mcp.requests.every((r) => r.tokenFingerprint === fpA || r.tokenFingerprint === fpB),
      'no other token reached the MCP server',
    );
    console.log(
      `2 jobs served with their own tokens (A over streamable HTTP, B over SSE), 1 refused (wrong_room), in ${Math.round(tJobs - tReady)} ms`,
    );
    console.log(`ok: total ${Math.round(performance.now() - t0)} ms`);
  } catch (error) {
    if (agent) console.error(`--- agent log ---\n${agent.worker.log().split('\n').slice(-60).join('\n')}`);
    if (livekit) console.error(`--- livekit log ---\n${livekit.logTail()}`);
    throw error;
  } finally {
    const tStop = performance.now();
    await agent?.stop();
    const tAgentStopped = performance.now();
    await Promise.all([livekit?.stop(), mcp?.stop()]);
    console.log(
      `teardown: agent ${Math.round(tAgentStopped - tStop)} ms, rest ${Math.round(performance.now() - tAgentStopped)} ms`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
