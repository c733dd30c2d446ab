import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningLiveKitServer } from './livekit.js';
import { offlineWorkerEnv, type RunningWorker, spawnPythonWorker, spawnWorker } from './python.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerDir = join(here, '..', '..', 'worker');

/** One job as the e2e agents report it (scripts/e2e/e2e_agent.py, worker/scripts/e2e-agent.ts). No secrets in it. */
export type AgentReport =
  | {
      event: 'served';
      job_id: string;
      room: string;
      agent_name: string;
      user_id: string;
      tenant_id: string;
      participant_identity: string;
      tools: string[];
      whoami: { user_id: string; data: unknown }[];
      errors: string[];
      /** Job assigned -> toolsets ready (the start renewal included). */
      ready_ms?: number;
      /** When the job's entry began (epoch ms): LiveKit assigned it. */
      assigned_at?: number;
      /**
       * The library's own split of the start, ms (JobCredentials.start_timings): the renewal
       * answered, the sealed servers connected (in parallel), ready, and what the renewal added.
       */
      start_timings?: { renewal?: number; sealed_connected?: number; ready?: number; renewal_added?: number };
      at: number;
    }
  | { event: 'refused'; job_id: string; room: string; agent_name: string; code: string; at: number }
  /** A periodic `whoami` call (LKMCP_E2E_TICK). */
  | { event: 'tick'; job_id: string; room: string; n: number; ok: boolean; user_id?: string; at: number }
  /** The job's shutdown and its reason (`session_ended` when a renewal said so). */
  | { event: 'ended'; job_id: string; room: string; reason: string; at: number };

/** A running e2e agent worker and the jobs it reported. */
export interface RunningAgent {
  worker: RunningWorker;
  agentName: string;
  reports(): AgentReport[];
  /** Waits until `count` reports satisfy `predicate`. */
  waitForReports(
    predicate: (r: AgentReport) => boolean,
    count?: number,
    timeoutMs?: number,
  ): Promise<AgentReport[]>;
  stop(): Promise<void>;
}

/** Where and how an e2e agent worker runs. */
export interface AgentOptions {
  livekit: RunningLiveKitServer;
  /** Registered agent name (explicit dispatch). */
  agentName: string;
  /** The dispatch keyring JSON, the same as the server's. */
  dispatchKeys: string;
  /** JSON-lines file the agent appends one report per job to. */
  reportFile: string;
  label?: string;
  /** More environment for the agent (e.g. LKMCP_E2E_TICK). */
  env?: Record<string, string>;
}

/**
 * The example agents' own environment switches (worker/README.md), as the e2e and
 * `npm run stack` need them: the MCP server is on loopback (dev only), the machine may be a busy
 * CI box (the CPU-based load would mark the worker full and LiveKit would drop the job), and the
 * health server stays on loopback at a free port.
 */
export function localWorkerEnv(opts: {
  livekit: RunningLiveKitServer;
  agentName: string;
  dispatchKeys: string;
  idleProcesses?: number;
}): Record<string, string> {
  return {
    LIVEKIT_URL: opts.livekit.url,
    LIVEKIT_API_KEY: opts.livekit.apiKey,
    LIVEKIT_API_SECRET: opts.livekit.apiSecret,
    LKMCP_AGENT_NAME: opts.agentName,
    DISPATCH_KEYS: opts.dispatchKeys,
    ALLOW_INSECURE_MCP_URLS: 'true',
    LKMCP_WORKER_LOAD: 'ignore',
    LKMCP_HEALTH_HOST: '127.0.0.1',
    LKMCP_HEALTH_PORT: '0',
    LKMCP_IDLE_PROCESSES: String(opts.idleProcesses ?? 2),
  };
}

function agentEnv(opts: AgentOptions, idleProcesses: number): Record<string, string> {
  return { ...localWorkerEnv({ ...opts, idleProcesses }), LKMCP_E2E_REPORT: opts.reportFile, ...opts.env };
}

/**
 * Starts the LLM-free Python e2e agent (worker/python's opener and toolsets) against `livekit`
 * and waits until LiveKit has registered it.
 */
export async function startPythonAgent(opts: AgentOptions): Promise<RunningAgent> {
  const worker = spawnPythonWorker(
    join(here, 'e2e_agent.py'),
    ['start', '--log-level', 'INFO'],
    agentEnv(opts, 2),
    { label: opts.label ?? 'py-agent' },
  );
  return watchAgent(worker, opts);
}

/**
 * Starts the LLM-free TypeScript e2e agent (`@livekit/agents` + worker/src's opener and MCP
 * bridge) like {@link startPythonAgent}; same report format.
 */
export async function startTypeScriptAgent(opts: AgentOptions): Promise<RunningAgent> {
  const worker = spawnWorker(
    process.execPath,
    ['--import', 'tsx', join(workerDir, 'scripts', 'e2e-agent.ts'), 'start', '--log-level', 'info'],
    offlineWorkerEnv(agentEnv(opts, 1)),
    { label: opts.label ?? 'ts-agent' },
  );
  return watchAgent(worker, opts);
}

async function watchAgent(worker: RunningWorker, opts: AgentOptions): Promise<RunningAgent> {
  try {
    await worker.waitForLine(/registered worker/, 60_000);
  } catch (error) {
    await worker.stop();
    throw new Error(`${(error as Error).message}\n${worker.log().split('\n').slice(-30).join('\n')}`);
  }
  const reports = (): AgentReport[] => {
    try {
      return readFileSync(opts.reportFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AgentReport);
    } catch {
      return [];
    }
  };
  return {
    worker,
    agentName: opts.agentName,
    reports,
    async waitForReports(predicate, count = 1, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const matching = reports().filter(predicate);
        if (matching.length >= count) return matching;
        if (Date.now() > deadline) {
          throw new Error(
            `expected ${count} matching agent reports within ${timeoutMs} ms, got ${matching.length}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: () => worker.stop(),
  };
}
