/**
 * Smoke check of the pinned LiveKit server on loopback: it starts, answers RoomService and
 * AgentDispatchService, and POSTs signed webhooks that WebhookReceiver accepts.
 *
 *   npx tsx scripts/e2e/smoke-livekit.ts
 */
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { ensureLiveKitBinary, type RunningLiveKitServer, startLiveKitServer } from './livekit.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';

const API_KEY = 'devkey';
const API_SECRET = 'secret';

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function main() {
  const t0 = performance.now();
  const binary = await ensureLiveKitBinary();
  const tBinary = performance.now();
  let sink: WebhookSink | undefined;
  let livekit: RunningLiveKitServer | undefined;
  try {
    sink = await startWebhookSink(API_KEY, API_SECRET);
    livekit = await startLiveKitServer({
      webhookUrl: sink.url,
      apiKey: API_KEY,
      apiSecret: API_SECRET,
      binary,
    });
    const tReady = performance.now();
    console.log(`livekit-server ready at ${livekit.url} in ${Math.round(tReady - tBinary)} ms`);

    const rooms = new RoomServiceClient(livekit.httpUrl, API_KEY, API_SECRET);
    const dispatch = new AgentDispatchClient(livekit.httpUrl, API_KEY, API_SECRET);

    const before = await rooms.listRooms();
    check(Array.isArray(before), 'listRooms answers');

    const name = `lk-mcp-smoke-${Date.now()}`;
    const room = await rooms.createRoom({ name, emptyTimeout: 30 });
    check(room.name === name, 'createRoom returns the room');
    const started = await sink.waitFor((e) => e.event === 'room_started' && e.room?.name === name);
    console.log(`signed room_started webhook verified (room sid ${started.room?.sid})`);

    const implicit = await dispatch.listDispatch(name);
    console.log(`dispatches of a fresh room: ${JSON.stringify(implicit.map((d) => d.toJson()))}`);
    const created = await dispatch.createDispatch(name, 'smoke-agent', { metadata: 'opaque' });
    const listed = await dispatch.listDispatch(name);
    check(
      listed.some((d) => d.id === created.id && d.metadata === 'opaque'),
      'listDispatch shows the dispatch',
    );
    await dispatch.deleteDispatch(created.id, name);
    // LiveKit keeps an implicit dispatch with an empty agent name for every room (the one
    // that serves automatic-dispatch workers): only the named one must go.
    const afterDelete = await dispatch.listDispatch(name);
    check(!afterDelete.some((d) => d.id === created.id), 'deleteDispatch removes it');
    check(
      afterDelete.every((d) => d.agentName === ''),
      `only the implicit dispatch remains: ${JSON.stringify(afterDelete.map((d) => d.toJson()))}`,
    );
    console.log(`AgentDispatchClient create/list/delete ok (${created.id})`);

    await rooms.deleteRoom(name);
    await sink.waitFor((e) => e.event === 'room_finished' && e.room?.name === name);
    console.log('signed room_finished webhook verified');
    check(sink.rejected === 0, 'no webhook failed verification');
    console.log(
      `ok: binary ${Math.round(tBinary - t0)} ms, startup ${Math.round(tReady - tBinary)} ms, total ${Math.round(performance.now() - t0)} ms`,
    );
  } catch (error) {
    if (livekit) console.error(livekit.logTail());
    throw error;
  } finally {
    await livekit?.stop();
    await sink?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
