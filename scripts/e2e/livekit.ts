import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeTcpPort, freeUdpPort } from './ports.js';

/** The pinned LiveKit server version (see install-livekit.sh). */
export const LIVEKIT_SERVER_VERSION = 'v1.13.5';

/** Where pinned tools live, outside the repo, shared by clones on one machine. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LKMCP_CACHE ?? join(homedir(), '.cache', 'livekit-mcp-dispatch');
}

export interface LiveKitServerOptions {
  /** Where LiveKit POSTs its signed webhooks (omit for none). */
  webhookUrl?: string;
  apiKey?: string;
  apiSecret?: string;
  /** Path of the livekit-server binary; default: installed into the cache on demand. */
  binary?: string;
  /** Pipe the server's log to this process's stderr (default: only when LKMCP_E2E_VERBOSE=1). */
  verbose?: boolean;
  /** How long to wait for the server to answer (default 30 s). */
  readyTimeoutMs?: number;
  /** Seconds a room lives with nobody in it (default 10: the e2e's rooms finish quickly). */
  emptyTimeoutSeconds?: number;
  /** HTTP/WebSocket port (default: a free one; `npm start` asks for 7880, LiveKit's default). */
  httpPort?: number;
  /** The one RTC UDP port (default: a free one). */
  udpPort?: number;
}

/** A running LiveKit server on loopback. */
export interface RunningLiveKitServer {
  /** `ws://127.0.0.1:PORT`, what clients and workers connect to. */
  url: string;
  /** `http://127.0.0.1:PORT`, for the server SDK's service clients. */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  ports: { http: number; udp: number };
  /** The last lines of the server's log, for failure reports. */
  logTail(): string;
  stop(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Thrown when the binary is not cached and cannot be built here (no Go toolchain). */
export class LiveKitInstallError extends Error {}

/**
 * Runs install-livekit.sh (a no-op when the pinned binary is cached) and returns the binary path.
 * The script's progress lines (the first build takes minutes) go to `onProgress` as they come.
 */
export async function ensureLiveKitBinary(
  options: { onProgress?: (line: string) => void } = {},
): Promise<string> {
  const cached = join(cacheDir(), 'bin', 'livekit-server');
  const stamp = join(cacheDir(), 'livekit-server.version');
  if (existsSync(cached) && existsSync(stamp)) {
    if (readFileSync(stamp, 'utf8').trim() === LIVEKIT_SERVER_VERSION) return cached;
  }
  const child = spawn('bash', [join(here, 'install-livekit.sh')], {
    env: { ...process.env, LIVEKIT_VERSION: LIVEKIT_SERVER_VERSION },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const errors: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  let rest = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      errors.push(line);
      options.onProgress?.(line);
    }
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0)
    throw new LiveKitInstallError(errors.slice(-5).join('\n') || `install-livekit.sh exited ${code}`);
  return stdout.trim().split('\n').at(-1) ?? cached;
}

/**
 * The server's YAML config: loopback only, one UDP port, no ICE/TCP listener (it would bind
 * every interface), no TURN, no STUN/external IP discovery, no Redis (single node).
 */
export function liveKitConfig(opts: {
  httpPort: number;
  udpPort: number;
  apiKey: string;
  apiSecret: string;
  webhookUrl?: string;
  emptyTimeoutSeconds?: number;
}): string {
  const lines = [
    `port: ${opts.httpPort}`,
    'bind_addresses: ["127.0.0.1"]',
    'rtc:',
    `  udp_port: ${opts.udpPort}`,
    '  tcp_port: 0',
    '  use_external_ip: false',
    '  enable_loopback_candidate: true',
    '  node_ip: { ipv4: "127.0.0.1" }',
    '  ips: { includes: ["127.0.0.1/32"] }',
    'turn: { enabled: false }',
    'keys:',
    `  ${JSON.stringify(opts.apiKey)}: ${JSON.stringify(opts.apiSecret)}`,
    `room: { empty_timeout: ${opts.emptyTimeoutSeconds ?? 10}, departure_timeout: 2 }`,
    'logging: { level: info, pion_level: error }',
  ];
  if (opts.webhookUrl) {
    lines.push(
      'webhook:',
      `  api_key: ${JSON.stringify(opts.apiKey)}`,
      `  urls: [${JSON.stringify(opts.webhookUrl)}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function waitUntilReady(httpUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`livekit-server exited early (${child.exitCode ?? child.signalCode})`);
    }
    try {
      const response = await fetch(httpUrl, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`livekit-server did not answer on ${httpUrl} within ${timeoutMs} ms`);
}

/** The parent's environment minus variables livekit-server would read as config. */
function liveKitEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of [
    'LIVEKIT_CONFIG',
    'LIVEKIT_KEYS',
    'NODE_IP',
    'UDP_PORT',
    'REDIS_HOST',
    'REDIS_PASSWORD',
  ]) {
    delete copy[name];
  }
  return copy;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or interrupted driver must not leave a server holding ports.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/**
 * Starts the pinned `livekit-server --dev` on 127.0.0.1 with free ports and the given
 * webhook target, waits until it answers, and returns how to reach and stop it.
 */
export async function startLiveKitServer(options: LiveKitServerOptions = {}): Promise<RunningLiveKitServer> {
  const apiKey = options.apiKey ?? 'devkey';
  const apiSecret = options.apiSecret ?? 'secret';
  const binary = options.binary ?? (await ensureLiveKitBinary());
  const verbose = options.verbose ?? process.env.LKMCP_E2E_VERBOSE === '1';
  const httpPort = options.httpPort ?? (await freeTcpPort());
  const udpPort = options.udpPort ?? (await freeUdpPort());
  const config = liveKitConfig({
    httpPort,
    udpPort,
    apiKey,
    apiSecret,
    webhookUrl: options.webhookUrl,
    emptyTimeoutSeconds: options.emptyTimeoutSeconds,
  });

  const child = spawn(
    binary,
    ['--dev', '--bind', '127.0.0.1', '--node-ip', '127.0.0.1', '--config-body', config],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: liveKitEnv(process.env),
    },
  );
  running.add(child);
  installExitHook();

  const tail: string[] = [];
  // Whole lines only (per stream): a chunk may end mid-line, and a verbose run interleaves
  // these lines with the workers' on one stderr.
  const collector = () => {
    let rest = '';
    return (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        if (verbose) process.stderr.write(`[livekit] ${line}\n`);
        tail.push(line);
      }
      if (tail.length > 200) tail.splice(0, tail.length - 200);
    };
  };
  child.stdout?.setEncoding('utf8').on('data', collector());
  child.stderr?.setEncoding('utf8').on('data', collector());
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => running.delete(child));

  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // The first signal drains: it polls every 5 s until no participant is left. A second
    // one forces the stop, which is what a test teardown wants.
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGTERM'), 300);
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
    clearTimeout(kill);
  };

  try {
    await waitUntilReady(httpUrl, child, options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${tail.slice(-30).join('\n')}`);
  }

  return {
    url: `ws://127.0.0.1:${httpPort}`,
    httpUrl,
    apiKey,
    apiSecret,
    ports: { http: httpPort, udp: udpPort },
    // SDP-laden lines run to tens of KiB; a failure report needs their start only.
    logTail: () =>
      tail
        .slice(-50)
        .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
        .join('\n'),
    stop,
  };
}
