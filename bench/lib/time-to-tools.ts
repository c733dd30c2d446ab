import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Issue 20's time to tools, as `npm run e2e` (scenario 7, the real LiveKit server and both
 * workers) measures it and `npm run bench` prints it: `bench/results/time-to-tools.json`
 * (git-ignored), written by the e2e, read by the bench.
 */
export interface TimeToToolsRow {
  worker: 'Python' | 'TypeScript';
  /** `POST /v1/sessions` sent → answered (our session function, CreateDispatch included). */
  sessionMs: number;
  /** `POST /v1/sessions` sent → LiveKit assigned the job (the worker's entry began). */
  assignedMs: number;
  /** Job assigned → toolsets ready (metadata opened, servers connected, start renewal). */
  readyMs: number;
  /** POST sent → toolsets ready. */
  totalMs: number;
  /** The worker library's split of the start (JobCredentials start timings), ms. */
  start: { renewal?: number; sealedConnected?: number; ready?: number; renewalAdded?: number };
  /** What is ours: the session request plus what the start renewal added to the connect. */
  oursMs: number;
  oursPercent: number;
  /** What the start renewal added, as a share of job assigned → ready without it (goal ≤ 10 %). */
  renewalSharePercent: number;
}

export interface TimeToTools {
  at: string;
  commit: string;
  rows: TimeToToolsRow[];
}

const FILE = fileURLToPath(new URL('../results/time-to-tools.json', import.meta.url));

/** One job's row from the e2e's clock readings (epoch ms) and the worker's report. */
export function timeToToolsRow(input: {
  worker: TimeToToolsRow['worker'];
  postedAt: number;
  answeredAt: number;
  assignedAt: number;
  readyMs: number;
  start: { renewal?: number; sealed_connected?: number; ready?: number; renewal_added?: number } | undefined;
}): TimeToToolsRow {
  const s = input.start ?? {};
  const added = s.renewal_added ?? 0;
  const sessionMs = input.answeredAt - input.postedAt;
  const totalMs = input.assignedAt + input.readyMs - input.postedAt;
  const withoutRenewal = input.readyMs - added;
  const round1 = (n: number) => Math.round(n * 10) / 10;
  return {
    worker: input.worker,
    sessionMs,
    assignedMs: input.assignedAt - input.postedAt,
    readyMs: input.readyMs,
    totalMs,
    start: {
      ...(s.renewal === undefined ? {} : { renewal: s.renewal }),
      ...(s.sealed_connected === undefined ? {} : { sealedConnected: s.sealed_connected }),
      ...(s.ready === undefined ? {} : { ready: s.ready }),
      renewalAdded: added,
    },
    oursMs: sessionMs + added,
    oursPercent: totalMs > 0 ? round1((100 * (sessionMs + added)) / totalMs) : 0,
    renewalSharePercent: withoutRenewal > 0 ? round1((100 * added) / withoutRenewal) : 0,
  };
}

export function writeTimeToTools(rows: TimeToToolsRow[]): void {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  mkdirSync(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true });
  const doc: TimeToTools = { at: new Date().toISOString(), commit, rows };
  writeFileSync(FILE, `${JSON.stringify(doc, null, 2)}\n`);
}

/** The last e2e's figures, or undefined when `npm run e2e` has not run in this checkout. */
export function readTimeToTools(): TimeToTools | undefined {
  try {
    return JSON.parse(readFileSync(FILE, 'utf8')) as TimeToTools;
  } catch {
    return undefined;
  }
}
