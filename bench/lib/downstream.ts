import { startEmbeddedDynalite } from '../../functions/adapters/embedded-dynamo.js';
import { startLiveKitStandIn } from '../../test/support/livekit-standin.js';
import { startCountingProxy } from './counting-proxy.js';
import { startDelayProxy } from './delay-proxy.js';

/**
 * Child process holding everything downstream of the functions: dynalite behind the counting
 * proxy, and the LiveKit stand-in. Kept out of the measured process so that on a 2-core machine
 * the store's CPU does not queue behind the server's. Talks to its parent over IPC.
 */
const apiKey = process.env.BENCH_LIVEKIT_KEY ?? 'APIbench';
const apiSecret = process.env.BENCH_LIVEKIT_SECRET ?? 'bench-secret';
const dynalite = await startEmbeddedDynalite();
const proxy = await startCountingProxy(dynalite.endpoint);
const livekit = await startLiveKitStandIn({ apiKey, apiSecret });
const livekitFront = await startDelayProxy(livekit.url);

function livekitCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of livekit.calls) out[c.rpc] = (out[c.rpc] ?? 0) + 1;
  return out;
}

process.on(
  'message',
  async (msg: { id: number; cmd: string; on?: boolean; dynamoMs?: number; livekitMs?: number }) => {
    let result: unknown;
    switch (msg.cmd) {
      case 'snapshot':
        result = { dynamo: proxy.snapshot(), livekit: livekitCounts() };
        break;
      case 'accounting':
        proxy.setAccounting(msg.on === true);
        break;
      case 'latency':
        proxy.setDelay(msg.dynamoMs ?? 0);
        livekitFront.setDelay(msg.livekitMs ?? 0);
        break;
      case 'stop':
        await livekitFront.stop();
        await proxy.stop();
        await livekit.stop();
        await dynalite.stop();
        process.send?.({ id: msg.id, result: null }, () => process.exit(0));
        return;
    }
    process.send?.({ id: msg.id, result });
  },
);
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true, dynamoEndpoint: proxy.endpoint, livekitUrl: livekitFront.url });
