/**
 * Example `@livekit/agents` (1.9) worker for livekit-mcp-dispatch.
 *
 * Each job opens its sealed dispatch metadata before anything else, connects one MCP toolset per
 * MCP server of its user (that user's URL and token; addresses checked to be public), and serves
 * only the participant the metadata names. A job whose metadata does not open is ended with one
 * log line naming the reason code and nothing else.
 *
 * Environment: `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET` (as for any worker);
 * `DISPATCH_KEYS` (the dispatch keyring JSON); `LKMCP_AGENT_NAME` (default `mcp-agent`);
 * `LKMCP_LLM`, `LKMCP_STT`, `LKMCP_TTS` (LiveKit Inference model strings, defaults
 * `openai/gpt-4.1-mini`, `deepgram/nova-3`, `cartesia/sonic-2`); `LKMCP_INSTRUCTIONS`;
 * `ALLOW_INSECURE_MCP_URLS=true` (dev only, the server's variable: also allow http and loopback
 * MCP URLs, e.g. a local MCP server; never in production); `LKMCP_WORKER_LOAD`,
 * `LKMCP_HEALTH_HOST`, `LKMCP_HEALTH_PORT`, `LKMCP_IDLE_PROCESSES` (see {@link serverOptions}).
 *
 * Run (from the repository root): `npx tsx worker/src/agent.ts start`, or `lk agent dev` with the
 * LiveKit CLI for development (@livekit/agents 1.9 deprecates its own `dev` command in favour of
 * it). Importing this module starts nothing and makes no network call; only running it as the
 * main module checks the configuration ({@link startupProblems}) and starts the worker CLI.
 */
import { type AddressInfo, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { cli, defineAgent, type JobContext, log, ServerOptions, voice } from '@livekit/agents';
import type { McpServerGrant } from '@livekit-mcp-dispatch/contract';
import { UnsafeWorkerUrlError } from './address-guard.js';
import { JobCredentials } from './live.js';
import {
  createMcpToolset,
  McpConnectionError,
  type McpToolset,
  type McpToolsetOptions,
} from './mcp-toolset.js';
import {
  type DispatchGrant,
  DispatchMetadataError,
  KeyringError,
  openDispatchMetadata,
  parseDispatchKeyring,
} from './open.js';
import { RenewalClient } from './renewal.js';

/** Where the example writes its log lines (pino's `(object, message)` shape). */
export interface JobLogger {
  error(fields: Record<string, unknown>, message: string): void;
  warn?(message: string): void;
  info?(message: string): void;
}

/** The part of `JobContext` the job handling reads. */
export type JobLike = Pick<JobContext, 'job' | 'shutdown'>;

/** The agent name this worker registers under (explicit dispatch). */
export function agentName(env: NodeJS.ProcessEnv = process.env): string {
  return env.LKMCP_AGENT_NAME ?? 'mcp-agent';
}

/**
 * Opens the job's metadata, or logs why not (the reason code and job id only, never claims)
 * and returns undefined.
 */
export async function openJob(
  ctx: JobLike,
  keyring: string,
  name: string,
  logger: JobLogger,
): Promise<DispatchGrant | undefined> {
  try {
    return await openDispatchMetadata(ctx.job.metadata ?? '', {
      keyring,
      agentName: name,
      roomName: ctx.job.room?.name ?? '',
    });
  } catch (error) {
    if (error instanceof DispatchMetadataError) {
      logger.error(
        { code: error.code, jobId: ctx.job.id },
        `dispatch metadata refused: ${error.code}; ending job ${ctx.job.id} without serving anyone`,
      );
      return undefined;
    }
    if (error instanceof KeyringError) {
      // The worker's own configuration is wrong; the problems name no key material.
      logger.error(
        { jobId: ctx.job.id },
        `DISPATCH_KEYS is not a valid keyring: ${error.problems.join('; ')}`,
      );
      return undefined;
    }
    throw error;
  }
}

/** Connects one toolset per server; a server that fails is left out with a log line (no secrets). */
export async function connectToolsets(
  servers: readonly McpServerGrant[],
  logger: JobLogger,
  options: McpToolsetOptions = {},
): Promise<McpToolset[]> {
  // With more than one server, prefix tool names so two servers' `search` tools cannot collide.
  const toolsets = servers.map((server) =>
    createMcpToolset(server, {
      ...options,
      ...(servers.length > 1 ? { toolNamePrefix: `${server.name}_` } : {}),
    }),
  );
  const outcomes = await Promise.allSettled(toolsets.map((toolset) => toolset.setup()));
  const ready: McpToolset[] = [];
  outcomes.forEach((outcome, i) => {
    const toolset = toolsets[i] as McpToolset;
    if (outcome.status === 'fulfilled') {
      ready.push(toolset);
      return;
    }
    const reason = outcome.reason;
    const message =
      reason instanceof McpConnectionError || reason instanceof UnsafeWorkerUrlError
        ? reason.message
        : 'setup failed';
    logger.error({ toolset: toolset.id }, `MCP toolset ${toolset.id} unavailable: ${message}`);
  });
  return ready;
}

/** The worker options {@link serverOptions} reads from the environment. */
export interface WorkerEnvOptions {
  loadFunc?: () => Promise<number>;
  host?: string;
  port?: number;
  numIdleProcesses?: number;
}

/**
 * `ServerOptions` fields from the environment, the same variables as python/agent.py; the
 * library's defaults where unset. `LKMCP_WORKER_LOAD=ignore` reports a load of 0 (the default
 * is the machine's CPU use, which on a busy CI box marks the worker full so LiveKit drops the
 * job); `LKMCP_HEALTH_HOST` / `LKMCP_HEALTH_PORT` place the health server (port 0: a free one);
 * `LKMCP_IDLE_PROCESSES` sets the warm job processes. Throws one error naming every bad value.
 */
export function serverOptions(env: NodeJS.ProcessEnv = process.env): WorkerEnvOptions {
  const options: WorkerEnvOptions = {};
  const problems: string[] = [];
  const load = (env.LKMCP_WORKER_LOAD ?? '').trim().toLowerCase();
  if (load === 'ignore') options.loadFunc = async () => 0;
  else if (load !== '' && load !== 'cpu') problems.push('LKMCP_WORKER_LOAD must be "cpu" or "ignore"');
  const host = (env.LKMCP_HEALTH_HOST ?? '').trim();
  if (host !== '') options.host = host;
  const numbers = [
    ['LKMCP_HEALTH_PORT', 'port', 65535],
    ['LKMCP_IDLE_PROCESSES', 'numIdleProcesses', 64],
  ] as const;
  for (const [name, key, most] of numbers) {
    const text = (env[name] ?? '').trim();
    if (text === '') continue;
    if (!/^\d+$/.test(text) || Number(text) > most) {
      problems.push(`${name} must be a whole number from 0 to ${most}`);
      continue;
    }
    options[key] = Number(text);
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return options;
}

/**
 * {@link serverOptions} with `LKMCP_HEALTH_PORT=0` turned into a free port of the health host:
 * `@livekit/agents` reads a port of 0 as "its default" (8081 in `start` mode, `port ||
 * default`), so two workers on one machine would both take 8081. The port is found by listening
 * on 0 and closing again, so another process could take it in between (a dev-machine setting).
 */
export async function listeningServerOptions(
  env: NodeJS.ProcessEnv = process.env,
): Promise<WorkerEnvOptions> {
  const options = serverOptions(env);
  if (options.port !== 0) return options;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, options.host ?? '0.0.0.0', () => resolve());
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return { ...options, port };
}

/** Dev only (`ALLOW_INSECURE_MCP_URLS=true`, the server's variable): allow loopback MCP URLs. */
export function insecureMcpUrlsAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.ALLOW_INSECURE_MCP_URLS?.toLowerCase() === 'true';
}

function sessionModels(env: NodeJS.ProcessEnv = process.env) {
  return {
    llm: env.LKMCP_LLM ?? 'openai/gpt-4.1-mini',
    stt: env.LKMCP_STT ?? 'deepgram/nova-3',
    tts: env.LKMCP_TTS ?? 'cartesia/sonic-2',
  };
}

const INSTRUCTIONS =
  "You are a helpful voice assistant. Use the tools you have to answer the user's questions.";

/**
 * Everything a job does before its session: open the metadata (or end the job and return
 * undefined), renew the credentials while the user's MCP toolsets connect (docs/api.md §9: no
 * tool before that renewal answered 200), keep them renewed for the job's life, and close them
 * when the job shuts down. `session_ended` (now or later) ends the job through `ctx.shutdown`.
 */
export async function prepareJob(
  ctx: JobLike & Pick<JobContext, 'addShutdownCallback'>,
  logger: JobLogger,
  env: NodeJS.ProcessEnv = process.env,
  options: { renewal?: RenewalClient; toolsetOptions?: McpToolsetOptions } = {},
): Promise<{ grant: DispatchGrant; toolsets: McpToolset[]; credentials: JobCredentials } | undefined> {
  const keyring = env.DISPATCH_KEYS ?? '';
  const grant = await openJob(ctx, keyring, agentName(env), logger);
  if (!grant) {
    ctx.shutdown('dispatch metadata refused');
    return undefined;
  }
  const insecure = insecureMcpUrlsAllowed(env);
  if (insecure) logger.warn?.('ALLOW_INSECURE_MCP_URLS=true: loopback MCP URLs allowed (dev only)');
  const client =
    options.renewal ??
    new RenewalClient({ keyring, agentName: grant.agentName, allowInsecureForTests: insecure });
  const credentials = new JobCredentials(ctx.job.metadata ?? '', grant, {
    keyring,
    client,
    logger: {
      error: (fields, message) => logger.error(fields, message),
      warn: (_fields, message) => logger.warn?.(message),
      info: (_fields, message) => logger.info?.(message),
    },
    onSessionEnded: (reason) => ctx.shutdown(reason),
    toolsetOptions: { allowLoopbackForTests: insecure, ...options.toolsetOptions },
  });
  ctx.addShutdownCallback(() => credentials.aclose());
  const toolsets = await credentials.start();
  if (!toolsets) return undefined;
  return { grant: credentials.grant, toolsets, credentials };
}

/** The value of a worker CLI flag (`--url X` or `--url=X`), as commander reads it. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === flag) return argv[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * Everything that would make this worker useless, checked before it registers: the LiveKit URL
 * and credentials (environment or the CLI's `--url`/`--api-key`/`--api-secret`) and a valid
 * `DISPATCH_KEYS` (without it the worker would register and then refuse every job). The
 * messages name variables, never their values.
 */
export function startupProblems(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const url = flagValue(argv, '--url') ?? env.LIVEKIT_URL ?? '';
  if (url === '') {
    problems.push("LIVEKIT_URL is not set (the LiveKit server; npm start's is ws://localhost:7880)");
  } else if (!URL.canParse(url) || !['ws:', 'wss:', 'http:', 'https:'].includes(new URL(url).protocol)) {
    problems.push('LIVEKIT_URL must be a ws(s):// or http(s):// URL');
  }
  if (!(flagValue(argv, '--api-key') ?? env.LIVEKIT_API_KEY)) {
    problems.push("LIVEKIT_API_KEY is not set (npm start's LiveKit: devkey)");
  }
  if (!(flagValue(argv, '--api-secret') ?? env.LIVEKIT_API_SECRET))
    problems.push('LIVEKIT_API_SECRET is not set');
  const keys = env.DISPATCH_KEYS ?? '';
  if (keys.trim() === '') {
    problems.push(
      'DISPATCH_KEYS is not set (the dispatch keyring JSON the server seals with; locally the `dispatch` entry of DATA_DIR/keys.json, see worker/README.md)',
    );
  } else {
    try {
      parseDispatchKeyring(keys);
    } catch (error) {
      if (!(error instanceof KeyringError)) throw error;
      problems.push(`DISPATCH_KEYS is not a valid keyring: ${error.problems.join('; ')}`);
    }
  }
  try {
    serverOptions(env);
  } catch (error) {
    problems.push((error as Error).message);
  }
  return problems;
}

export default defineAgent({
  entry: async (ctx: JobContext) => {
    const prepared = await prepareJob(ctx, log());
    if (!prepared) return;
    const { grant, toolsets } = prepared;

    await ctx.connect();
    const session = new voice.AgentSession({ ...sessionModels(), tools: toolsets });
    await session.start({
      agent: new voice.Agent({ instructions: process.env.LKMCP_INSTRUCTIONS ?? INSTRUCTIONS }),
      room: ctx.room,
      // Linked to this one participant: nobody else in the room is heard or answered.
      inputOptions: { participantIdentity: grant.participantIdentity },
    });
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  // Help and the other commands (download-files, …) need no LiveKit; `start`/`dev`/`connect` do.
  const problems = ['start', 'dev', 'connect'].includes(command ?? '')
    ? startupProblems(process.env, process.argv)
    : [];
  if (problems.length > 0) {
    process.stderr.write(
      `livekit-mcp-dispatch worker not started:\n${problems.map((p) => `  - ${p}\n`).join('')}`,
    );
    process.exit(2);
  }
  cli.runApp(
    new ServerOptions({
      agent: fileURLToPath(import.meta.url),
      agentName: agentName(),
      ...(await listeningServerOptions()),
    }),
  );
}
