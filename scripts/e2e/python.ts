import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir } from './livekit.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Creates or reuses the worker virtualenv (worker/python/setup-venv.sh: a no-op when its pinned
 * requirements are unchanged; the first run installs from PyPI) and returns its Python.
 */
export async function ensureVenv(): Promise<string> {
  await promisify(execFile)('bash', [join(repoRoot, 'worker', 'python', 'setup-venv.sh')], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return venvPython();
}

/**
 * Fails early, with the fix, when the worker package's own dependencies are not installed (npm
 * workspaces hoist them to the root node_modules; a nested copy counts too).
 */
export function assertWorkerPackageInstalled(): void {
  const hoisted = join(repoRoot, 'node_modules', '@livekit', 'agents', 'package.json');
  const nested = join(repoRoot, 'worker', 'node_modules', '@livekit', 'agents', 'package.json');
  if (!existsSync(hoisted) && !existsSync(nested)) {
    throw new Error('@livekit/agents is not installed: run `npm ci` at the repository root');
  }
}

/** The Python of the worker virtualenv (worker/python/setup-venv.sh creates it). */
export function venvPython(env: NodeJS.ProcessEnv = process.env): string {
  const python = join(cacheDir(env), 'venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`no worker virtualenv at ${python}: run worker/python/setup-venv.sh first`);
  }
  return python;
}

/**
 * Environment for a livekit-agents worker on loopback with no network: no telemetry export,
 * no Hugging Face / plugin downloads, unbuffered output so readiness lines arrive at once.
 */
export function offlineWorkerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    // Never let a developer's cloud project or proxy settings leak into the e2e worker.
    if (name.startsWith('LIVEKIT_') || /^(https?|all|no)_proxy$/i.test(name)) delete env[name];
  }
  return {
    ...env,
    PYTHONUNBUFFERED: '1',
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    OTEL_SDK_DISABLED: 'true',
    NO_PROXY: '127.0.0.1,localhost',
    ...extra,
  };
}

/** A spawned worker process with its collected log. */
export interface RunningWorker {
  child: ChildProcess;
  log(): string;
  /** Resolves when a log line matches (e.g. /registered worker/), rejects on exit or timeout. */
  waitForLine(pattern: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let hooked = false;

/** Spawns `python <script> <args>` with {@link offlineWorkerEnv}, killed on stop and on exit. */
export function spawnPythonWorker(
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: WorkerSpawnOptions = {},
): RunningWorker {
  return spawnWorker(venvPython(), [script, ...args], offlineWorkerEnv(env), opts);
}

/** How a worker process is spawned and where its output goes. */
export interface WorkerSpawnOptions {
  /** Echo every line to stderr, prefixed with the label (default: LKMCP_E2E_VERBOSE=1). */
  verbose?: boolean;
  cwd?: string;
  label?: string;
  stdin?: boolean;
  /** Called with every output line (stdout and stderr), e.g. to show some of them. */
  onLine?: (line: string) => void;
}

/** Spawns any worker-like process with log collection, killed (with its group) on stop and on exit. */
export function spawnWorker(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: WorkerSpawnOptions = {},
): RunningWorker {
  const verbose = opts.verbose ?? process.env.LKMCP_E2E_VERBOSE === '1';
  const label = opts.label ?? 'worker';
  // detached: its own process group, so stop() also reaches the job subprocesses it forks.
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of children) killGroup(c, 'SIGKILL');
    });
  }
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  // One collector per stream: a chunk may end mid-line, so the rest waits for the next chunk.
  const collector = () => {
    let rest = '';
    return (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        if (!line) continue;
        if (verbose) process.stderr.write(`[${label}] ${line}\n`);
        lines.push(line);
        opts.onLine?.(line);
        for (const listener of listeners) listener(line);
      }
      if (lines.length > 2000) lines.splice(0, lines.length - 2000);
    };
  };
  child.stdout?.setEncoding('utf8').on('data', collector());
  child.stderr?.setEncoding('utf8').on('data', collector());
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => children.delete(child));

  return {
    child,
    log: () => lines.join('\n'),
    waitForLine(pattern, timeoutMs = 30_000) {
      const matches = typeof pattern === 'function' ? pattern : (line: string) => pattern.test(line);
      return new Promise((resolve, reject) => {
        const found = lines.find(matches);
        if (found) return resolve(found);
        const timer = setTimeout(
          () => done(new Error(`${label}: no line matching ${pattern} in ${timeoutMs} ms`)),
          timeoutMs,
        );
        const listener = (line: string) => {
          if (matches(line)) done(undefined, line);
        };
        const onExit = () =>
          done(new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before ${pattern}`));
        const done = (error?: Error, line?: string) => {
          clearTimeout(timer);
          listeners.delete(listener);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve(line ?? '');
        };
        listeners.add(listener);
        child.once('exit', onExit);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      // Job processes may outlive the main one for a moment.
      killGroup(child, 'SIGKILL');
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
