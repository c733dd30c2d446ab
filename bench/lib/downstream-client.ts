import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type DynamoCounts, diffCounts } from './counting-proxy.js';

/** Counts of DynamoDB requests and LiveKit calls at one moment. */
export interface Snapshot {
  dynamo: DynamoCounts;
  /** LiveKit calls by `Service/Method`. */
  livekit: Record<string, number>;
}

/** The downstream child (dynalite + counting proxy + LiveKit stand-in), seen from the bench. */
export interface Downstream {
  dynamoEndpoint: string;
  livekitUrl: string;
  snapshot(): Promise<Snapshot>;
  setAccounting(on: boolean): Promise<void>;
  /** Modeled round trips added to every DynamoDB request and LiveKit call (0 = loopback). */
  setLatency(latency: { dynamoMs: number; livekitMs: number }): Promise<void>;
  stop(): Promise<void>;
}

/** Forks bench/lib/downstream.ts (through tsx) and waits until it listens. */
export async function startDownstream(livekit: { apiKey: string; apiSecret: string }): Promise<Downstream> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./downstream.ts', import.meta.url)), {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_LIVEKIT_KEY: livekit.apiKey, BENCH_LIVEKIT_SECRET: livekit.apiSecret },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, (v: unknown) => void>();
  const ready = new Promise<{ dynamoEndpoint: string; livekitUrl: string }>((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`downstream exited (${code})`)));
    child.on('message', (m: { ready?: boolean; id?: number; result?: unknown } & Record<string, unknown>) => {
      if (m.ready) ok(m as never);
      else if (m.id !== undefined) {
        pending.get(m.id)?.(m.result);
        pending.delete(m.id);
      }
    });
  });
  const { dynamoEndpoint, livekitUrl } = await ready;
  const call = (cmd: string, extra: Record<string, unknown> = {}) =>
    new Promise<unknown>((ok) => {
      seq += 1;
      pending.set(seq, ok);
      child.send({ id: seq, cmd, ...extra });
    });
  return {
    dynamoEndpoint,
    livekitUrl,
    snapshot: async () => (await call('snapshot')) as Snapshot,
    setAccounting: async (on) => {
      await call('accounting', { on });
    },
    setLatency: async (latency) => {
      await call('latency', latency);
    },
    stop: async () => {
      child.removeAllListeners('exit');
      await call('stop');
    },
  };
}

/** `after − before` of two snapshots. */
export function diffSnapshots(after: Snapshot, before: Snapshot): Snapshot {
  const livekit: Record<string, number> = {};
  for (const [rpc, n] of Object.entries(after.livekit)) {
    const d = n - (before.livekit[rpc] ?? 0);
    if (d > 0) livekit[rpc] = d;
  }
  return { dynamo: diffCounts(after.dynamo, before.dynamo), livekit };
}

/** Total LiveKit calls in a snapshot diff. */
export function livekitCalls(s: Snapshot): number {
  return Object.values(s.livekit).reduce((a, b) => a + b, 0);
}
