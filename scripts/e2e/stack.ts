/**
 * `npm run stack`: the e2e's pieces without the driver, to try the whole path by hand (issue 12).
 * On loopback it starts a real LiveKit server (dev keys, webhooks to our server), our local server
 * (`npm start`'s code path, api dispatch mode), the demo MCP server, seeds tenant `demo` and user
 * `demo-user` through the admin API (scripts/seed-demo.ts), and runs the Python example worker
 * (worker/python/agent.py, unchanged, with the dev-only ALLOW_INSECURE_MCP_URLS for the loopback
 * MCP URL). Then it prints what to do next and shows the agent's own log lines and every request
 * the demo MCP server gets, until Ctrl-C, which tears everything down.
 *
 *   npm run stack                 (PORT: our server's port, default 8787 or a free one)
 *   LKMCP_STACK_VERBOSE=1         also show every worker and LiveKit line
 *
 * Needs what `npm run e2e` needs: go for the first LiveKit build, python3 for the venv
 * (`npm run e2e:install` does both once).
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyringJson } from '../../functions/core/keyring.js';
import { type LocalServer, startLocalServer } from '../../functions/local.js';
import { mcpRequestLog, SeedError, type SeededDemo, seedDemo } from '../seed-demo.js';
import { localWorkerEnv } from './agents.js';
import { ensureLiveKitBinary, type RunningLiveKitServer, startLiveKitServer } from './livekit.js';
import { freeTcpPort } from './ports.js';
import { ensureVenv, type RunningWorker, spawnPythonWorker } from './python.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = 'mcp-agent';
const verbose = process.env.LKMCP_STACK_VERBOSE === '1';

const time = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`${line}\n`);

/** `port` if it is free on 127.0.0.1, else a free one (a running `npm start` may hold 8787). */
async function preferredPort(port: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  return free ? port : freeTcpPort();
}

/** Other libraries' warnings already shown (first line, level included). */
const shownOnce = new Set<string>();

/**
 * One worker output line for the console: the example agent's own records (logger `lkmcp.*`),
 * warnings and errors; the rest only with LKMCP_STACK_VERBOSE=1. The worker logs JSON in `start` mode.
 */
function showWorkerLine(line: string): void {
  let record: { message?: string; level?: string; name?: string } | undefined;
  try {
    record = JSON.parse(line) as typeof record;
  } catch {
    record = undefined;
  }
  if (!record || typeof record.message !== 'string') {
    if (verbose) say(`${time()} [agent] ${line}`);
    return;
  }
  // The first line only (a traceback stays in the log file), and another library's warning once:
  // without LiveKit Cloud the Inference STT retries and warns every few seconds.
  const text = `${record.level ?? ''} ${record.message.split('\n')[0]}`;
  const ours = record.name?.startsWith('lkmcp') === true;
  const problem = record.level === 'WARNING' || record.level === 'ERROR';
  if (verbose || ours || (problem && !shownOnce.has(text))) say(`${time()} [agent] ${text}`);
  if (problem && !ours) shownOnce.add(text);
}

interface Running {
  livekit?: RunningLiveKitServer;
  server?: LocalServer;
  demo?: SeededDemo;
  worker?: RunningWorker;
  timer?: NodeJS.Timeout;
  dir: string;
}

async function stop(running: Running): Promise<void> {
  clearInterval(running.timer);
  const steps: [string, (() => Promise<void>) | undefined][] = [
    ['worker', running.worker?.stop],
    ['server', running.server?.stop],
    ['livekit', running.livekit?.stop],
    ['demo servers', running.demo?.stop],
  ];
  for (const [name, step] of steps) {
    try {
      await step?.();
    } catch (error) {
      console.error(`stopping the ${name} failed: ${(error as Error).message}`);
    }
  }
  rmSync(running.dir, { recursive: true, force: true });
}

async function start(running: Running): Promise<void> {
  const t0 = performance.now();
  say('starting: LiveKit server, local server, demo MCP server, Python worker (worker/python/agent.py) …');
  const [binary] = await Promise.all([ensureLiveKitBinary(), ensureVenv()]);
  const dispatchKeys = JSON.stringify(generateKeyringJson('k-stack-dispatch'));
  const dataDir = join(running.dir, 'data');

  // Our server's port first: LiveKit needs the webhook URL when it starts.
  const port = await preferredPort(Number(process.env.PORT ?? 8787));
  const base = `http://127.0.0.1:${port}`;
  running.livekit = await startLiveKitServer({
    binary,
    webhookUrl: `${base}/v1/livekit/webhook`,
    verbose,
    // Time to join the room by hand before LiveKit closes it.
    emptyTimeoutSeconds: 300,
  });
  const { livekit } = running;
  running.server = await startLocalServer({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LIVEKIT_URL: livekit.url,
    LIVEKIT_API_KEY: livekit.apiKey,
    LIVEKIT_API_SECRET: livekit.apiSecret,
    DISPATCH_KEYS: dispatchKeys,
    STORAGE_KEYS: JSON.stringify(generateKeyringJson('k-stack-storage')),
    // Dev only: the demo MCP server is on loopback.
    ALLOW_INSECURE_MCP_URLS: 'true',
    DEFAULT_AGENT_NAME: AGENT,
    SESSION_DISPATCH_MODE: 'api',
    LOG_LEVEL: verbose ? 'INFO' : 'WARN',
  });
  running.demo = await seedDemo({ url: base, dataDir, mcpPort: 0 });
  const { demo } = running;

  const logFile = join(running.dir, 'agent.log');
  // livekit-agents' own entry (`python -m livekit.agents start <file>`), not agent.py's deprecated CLI.
  running.worker = spawnPythonWorker(
    '-m',
    ['livekit.agents', 'start', join(repoRoot, 'worker', 'python', 'agent.py'), '--log-level', 'INFO'],
    localWorkerEnv({ livekit, agentName: AGENT, dispatchKeys, idleProcesses: 1 }),
    {
      label: 'agent',
      verbose: false,
      cwd: join(repoRoot, 'worker', 'python'),
      onLine: (line) => {
        appendFileSync(logFile, `${line}\n`);
        showWorkerLine(line);
      },
    },
  );
  await running.worker.waitForLine(/registered worker/, 90_000);

  // Every request the demo MCP server gets: the user's token shows up as the user and the
  // fingerprint the admin API shows, never as itself.
  const mcpLog = mcpRequestLog(demo);
  running.timer = setInterval(() => {
    for (const line of mcpLog()) say(line);
  }, 250);

  say(
    [
      '',
      `stack up in ${((performance.now() - t0) / 1000).toFixed(1)} s; Ctrl-C stops everything.`,
      `  LiveKit server   ${livekit.url}  (API key ${livekit.apiKey}, secret ${livekit.apiSecret}; dev only)`,
      `  local server     ${base}  (api dispatch mode; LiveKit's webhooks -> ${base}/v1/livekit/webhook)`,
      `  demo MCP server  ${demo.mcp.url}  (tenant ${demo.tenantId}, user ${demo.userId}: their own token)`,
      `  OAuth demo       "notes" ${demo.oauth.mcpUrl}, authorization server ${demo.oauth.issuer} (login ${demo.oauth.account.login}, password ${demo.oauth.account.password}), return_to ${demo.oauth.returnUrl}`,
      `  Python worker    worker/python/agent.py, agent name ${AGENT}; full log: ${logFile}`,
      '',
      `Start a session as ${demo.userId} (token valid 1 hour):`,
      demo.nextCommand,
      '',
      'The dispatch reaches the worker at once: below, the agent logs its MCP tools',
      `("MCP toolset mcp_demo ready, tools: …") and the demo MCP server shows ${demo.userId}'s requests.`,
      `Join the room with the returned server_url + participant_token (any LiveKit client).`,
      'The example talks through LiveKit Inference models (LKMCP_LLM/STT/TTS): without LiveKit Cloud',
      'access it connects its MCP tools but cannot speak.',
      `Another token: DATA_DIR=${dataDir} npm run dev:token -- --user ${demo.userId} --tenant ${demo.tenantId}`,
      `Everything the worker says: tail -f ${logFile}`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  // As in npm start (functions/local.ts): the SDK's documented switch for its Node < 22 warning.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const running: Running = { dir: mkdtempSync(join(tmpdir(), 'lk-mcp-stack-')) };
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nstopping the stack …');
    await stop(running);
    say('stopped.');
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));
  try {
    await start(running);
  } catch (error) {
    console.error(error instanceof SeedError ? error.message : error);
    if (running.worker) console.error(running.worker.log().split('\n').slice(-20).join('\n'));
    await shutdown(1);
  }
}

void main();
