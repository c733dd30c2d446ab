/**
 * Probe: a livekit-agents (Python) worker registers with the local LiveKit server under an
 * agent name (explicit dispatch), receives a job from AgentDispatchClient.createDispatch,
 * reads ctx.job.metadata, and joins the room over loopback WebRTC.
 *
 *   npx tsx scripts/e2e/probe-worker.ts        (LKMCP_E2E_VERBOSE=1 to see all logs)
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AccessToken,
  AgentDispatchClient,
  RoomAgentDispatch,
  RoomConfiguration,
  RoomServiceClient,
} from 'livekit-server-sdk';
import { type RunningLiveKitServer, startLiveKitServer } from './livekit.js';
import { joinRoom } from './participant.js';
import { type RunningWorker, spawnPythonWorker } from './python.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';

const here = dirname(fileURLToPath(import.meta.url));
const AGENT_NAME = 'probe-agent';

interface ProbeRecord {
  job_id: string;
  room: string;
  agent_name: string;
  metadata_len: number;
  metadata_sha256: string;
  agent_identity: string;
}

async function waitForRecords(file: string, count: number, timeoutMs: number): Promise<ProbeRecord[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      if (lines.length >= count) return lines.map((l) => JSON.parse(l) as ProbeRecord);
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`worker wrote fewer than ${count} job records in ${timeoutMs} ms`);
}

async function main() {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'lk-probe-'));
  const out = join(dir, 'jobs.jsonl');
  let livekit: RunningLiveKitServer | undefined;
  let worker: RunningWorker | undefined;
  let sink: WebhookSink | undefined;
  try {
    sink = await startWebhookSink('devkey', 'secret');
    livekit = await startLiveKitServer({ webhookUrl: sink.url });
    const tLiveKit = performance.now();
    worker = spawnPythonWorker(
      join(here, 'probe_worker.py'),
      [process.env.PROBE_MODE ?? 'start', '--log-level', 'INFO'],
      {
        LIVEKIT_URL: livekit.url,
        LIVEKIT_API_KEY: livekit.apiKey,
        LIVEKIT_API_SECRET: livekit.apiSecret,
        PROBE_AGENT_NAME: AGENT_NAME,
        PROBE_OUT: out,
      },
      { label: 'probe' },
    );
    await worker.waitForLine(/registered worker/, 60_000);
    const tRegistered = performance.now();
    console.log(`worker registered in ${Math.round(tRegistered - tLiveKit)} ms`);

    const rooms = new RoomServiceClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
    const dispatch = new AgentDispatchClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
    const room = `lk-mcp-probe-${randomBytes(4).toString('hex')}`;
    const metadata = `sealed.${randomBytes(600).toString('base64url')}`;
    await rooms.createRoom({ name: room, emptyTimeout: 10 });
    const created = await dispatch.createDispatch(room, AGENT_NAME, { metadata });

    const [record] = await waitForRecords(out, 1, 30_000);
    const tJob = performance.now();
    if (!record) throw new Error('no job record');
    const expectedSha = createHash('sha256').update(metadata).digest('hex');
    if (record.room !== room) throw new Error(`job for room ${record.room}, expected ${room}`);
    if (record.agent_name !== AGENT_NAME) throw new Error(`job agent_name ${record.agent_name}`);
    if (record.metadata_sha256 !== expectedSha || record.metadata_len !== metadata.length) {
      throw new Error('ctx.job.metadata differs from the dispatch metadata');
    }
    console.log(
      `job ${record.job_id} (dispatch ${created.id}) got the metadata intact and joined as ${record.agent_identity} in ${Math.round(tJob - tRegistered)} ms`,
    );

    // A second dispatch for another agent name must not reach this worker.
    await dispatch.createDispatch(room, 'someone-else', { metadata: 'x' });
    await new Promise((r) => setTimeout(r, 1500));
    const all = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    if (all.length !== 1) throw new Error(`worker took ${all.length} jobs, expected 1`);
    console.log('a dispatch for another agent name did not reach the worker');

    // Token mode: the dispatch rides in the participant token; an app joins over loopback WebRTC.
    const tokenRoom = `lk-mcp-probe-${randomBytes(4).toString('hex')}`;
    const at = new AccessToken(livekit.apiKey, livekit.apiSecret, { identity: 'user-d', ttl: 600 });
    at.addGrant({
      roomJoin: true,
      room: tokenRoom,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    at.roomConfig = new RoomConfiguration({
      agents: [new RoomAgentDispatch({ agentName: AGENT_NAME, metadata: 'token-metadata' })],
    });
    const tJoin = performance.now();
    const app = await joinRoom({ url: livekit.url, token: await at.toJwt(), label: 'user-d' });
    console.log(
      `app joined ${app.connected.room} (${app.connected.room_sid}) in ${Math.round(performance.now() - tJoin)} ms`,
    );
    await sink.waitFor((e) => e.event === 'participant_joined' && e.participant?.identity === 'user-d');
    console.log('signed participant_joined webhook verified');
    const records = await waitForRecords(out, 2, 30_000);
    const tokenJob = records.find((r) => r.room === tokenRoom);
    if (
      !tokenJob ||
      tokenJob.metadata_sha256 !== createHash('sha256').update('token-metadata').digest('hex')
    ) {
      throw new Error('token-mode dispatch did not reach the worker with its metadata');
    }
    console.log(
      `token-mode job ${tokenJob.job_id} got its metadata in ${Math.round(performance.now() - tJoin)} ms`,
    );
    await app.leave();
    await sink.waitFor((e) => e.event === 'room_finished' && e.room?.name === tokenRoom, 30_000);
    console.log(
      `room_finished after the last participant left: ${Math.round(performance.now() - tJoin)} ms after join`,
    );
    if (sink.rejected !== 0) throw new Error('a webhook failed verification');
    console.log(`ok: total ${Math.round(performance.now() - t0)} ms`);
  } catch (error) {
    if (worker) console.error(`--- worker log ---\n${worker.log().split('\n').slice(-60).join('\n')}`);
    if (livekit) console.error(`--- livekit log ---\n${livekit.logTail()}`);
    throw error;
  } finally {
    await worker?.stop();
    await livekit?.stop();
    await sink?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
