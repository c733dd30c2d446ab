import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { functionNames } from '../scripts/esbuild-options.js';
import { type CapacityModel, capacityModel } from './capacity-model.js';
import { type ColdStartResult, measureColdStart } from './cold-start.js';
import { ratio, round } from './lib/stats.js';
import { type LoadResult, runLoad, type SessionComparison } from './load.js';

/**
 * `npm run bench` (after `npm run build`): cold start of the three bundles against a floor
 * bundle, session and webhook load against the bare downstream work, per-request DynamoDB and
 * LiveKit costs, and the capacity model. Prints a table, writes bench/results/latest.json.
 * Every figure that depends on the machine is a ratio against a baseline of the same run.
 */
const QUICK = process.argv.includes('--quick');
const RUNS = QUICK ? 11 : 31;
const LOAD = QUICK
  ? { sessions: 200, webhookEvents: 200, concurrency: 50, accountingSamples: 5, serialSamples: 30 }
  : { sessions: 800, webhookEvents: 800, concurrency: 50, accountingSamples: 20, serialSamples: 100 };
/** Modeled AWS round trips for the second session phase (see bench/RESULTS.md). */
const MODELED = { dynamoMs: 5, livekitMs: 40, sessions: QUICK ? 200 : 500 };

/** The budgets of issue 9. */
const BUDGET = { coldStartRatio: 1.15, bundleBytes: 800_000, sessionP50Ratio: 1.5 };

const started = Date.now();
const load0 = loadavg()[0]!;
console.log(`cold start: ${RUNS} rounds of fresh processes…`);
const cold = await measureColdStart({ runs: RUNS });
console.log('load: sessions and webhooks…');
const load = await runLoad({ ...LOAD, modeled: MODELED });
const model = capacityModel(load);

const floor = cold.results.find((r) => r.name === 'floor')!;
const fns = cold.results.filter((r) => (functionNames as readonly string[]).includes(r.name));
const coldRows = cold.results.map((r) => ({
  name: r.name,
  bytes: r.bytes,
  importP50Ms: round(r.importMs.p50, 1),
  importP10Ms: round(r.importMs.p10, 1),
  cpuP50Ms: round(r.cpuMs.p50, 1),
  ratioP50: ratio(r.importMs.p50, floor.importMs.p50),
  ratioP10: ratio(r.importMs.p10, floor.importMs.p10),
  cpuRatioP50: ratio(r.cpuMs.p50, floor.cpuMs.p50),
  pairedRatioP50: round(r.pairedRatio.wall.p50, 3),
  pairedCpuRatioP50: round(r.pairedRatio.cpu.p50, 3),
}));
const s = load.session;
const sm = load.sessionModeled;
const w = load.webhook;
const dup = load.costs.find((c) => c.scenario === 'webhook duplicate delivery')!;
const budgets = {
  // Paired per-round ratios, median: the figure least moved by neighbours on a shared machine.
  coldStart: fns.map((r) => ({
    name: r.name,
    ratioP50: round(r.pairedRatio.wall.p50, 3),
    holds: r.pairedRatio.wall.p50 <= BUDGET.coldStartRatio,
  })),
  bundle: fns.map((r) => ({ name: r.name, bytes: r.bytes, holds: r.bytes <= BUDGET.bundleBytes })),
  sessionP50: {
    ratio: ratio(s.requestMs.p50, s.baselineMs.p50),
    holds: s.requestMs.p50 / s.baselineMs.p50 <= BUDGET.sessionP50Ratio,
  },
  duplicateWebhook: {
    dynamoRequests: dup.dynamoRequests,
    conditionalWrites: dup.conditionalWrites,
    livekitCalls: dup.livekitCalls,
    holds: dup.dynamoRequests === 1 && dup.conditionalWrites === 1 && dup.livekitCalls === 0,
  },
};

const result = {
  at: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  loadAverageAtStart: round(load0, 2),
  seconds: round((Date.now() - started) / 1000, 1),
  options: { coldStartRuns: RUNS, ...LOAD },
  budgets,
  coldStart: {
    rows: coldRows,
    secretsCalls: cold.secretsCalls,
    secretsOverTls: cold.secretsOverTls,
    detail: cold.results,
  },
  session: withRatios(s),
  sessionWhatIf: withRatios(load.sessionWhatIf),
  sessionModeled: withRatios(sm),
  webhook: { ...w, throughputRatio: ratio(w.eventsPerSecond, w.baselinePerSecond) },
  costs: load.costs,
  model,
};
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/latest.json', `${JSON.stringify(result, null, 2)}\n`);
print(coldRows, cold.results, load, result, model);

function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r
        .map((c, i) =>
          typeof c === 'number' ? String(c).padStart(widths[i]!) : String(c).padEnd(widths[i]!),
        )
        .join('  '),
    )
    .join('\n');
}

function print(
  rows: typeof coldRows,
  detail: ColdStartResult[],
  l: LoadResult,
  r: typeof result,
  m: CapacityModel,
): void {
  const ok = (b: boolean) => (b ? 'holds' : 'MISSED');
  console.log(
    `\n== cold start: import() in fresh processes, ${RUNS} interleaved rounds (ratio = bundle / floor; paired = median of per-round ratios; secrets over ${r.coldStart.secretsOverTls ? 'TLS' : 'plain HTTP'}) ==`,
  );
  console.log(
    table([
      [
        'bundle',
        'bytes',
        'p50 ms',
        'p10 ms',
        'cpu p50 ms',
        'ratio p50',
        'ratio p10',
        'paired',
        'cpu ratio',
        'paired cpu',
      ],
      ...rows.map((x) => [
        x.name,
        x.bytes,
        x.importP50Ms,
        x.importP10Ms,
        x.cpuP50Ms,
        x.ratioP50,
        x.ratioP10,
        x.pairedRatioP50,
        x.cpuRatioP50,
        x.pairedCpuRatioP50,
      ]),
    ]),
  );
  console.log('\n== bundle top contributors (KiB in output) ==');
  for (const d of detail) {
    console.log(
      `${d.name.padEnd(8)} ${d.topContributors.map((t) => `${t.source} ${(t.bytes / 1024).toFixed(0)}`).join(', ')}`,
    );
  }
  console.log(
    `\n== load: ${l.session.concurrency} concurrent clients (ratio = function / bare downstream work, same run) ==`,
  );
  console.log(
    table([
      [
        'what',
        'p50 ms',
        'p99 ms',
        'per s',
        'baseline p50',
        'baseline p99',
        'baseline per s',
        'ratio p50',
        'ratio p99',
      ],
      loadRow('POST /v1/sessions', r.session),
      loadRow(
        `POST /v1/sessions, +${l.sessionModeled.dynamoMs}/${l.sessionModeled.livekitMs} ms modeled`,
        r.sessionModeled,
      ),
      loadRow('what-if: rate counter ‖ reads, reverted lever (modeled)', r.sessionWhatIf),
      [
        'webhook participant_joined',
        round(l.webhook.eventMs.p50, 1),
        round(l.webhook.eventMs.p99, 1),
        round(l.webhook.eventsPerSecond, 1),
        round(l.webhook.baselineMs.p50, 1),
        round(l.webhook.baselineMs.p99, 1),
        round(l.webhook.baselinePerSecond, 1),
        ratio(l.webhook.eventMs.p50, l.webhook.baselineMs.p50),
        ratio(l.webhook.eventMs.p99, l.webhook.baselineMs.p99),
      ],
    ]),
  );
  console.log(
    `serial (1 client): session p50 ${round(l.session.serialMs.p50, 1)} ms vs bare ${round(l.session.serialBaselineMs.p50, 1)} ms (ratio ${r.session.serialRatioP50}); modeled ${round(l.sessionModeled.serialMs.p50, 1)} vs ${round(l.sessionModeled.serialBaselineMs.p50, 1)} ms (ratio ${r.sessionModeled.serialRatioP50}); what-if ${round(l.sessionWhatIf.serialMs.p50, 1)} vs ${round(l.sessionWhatIf.serialBaselineMs.p50, 1)} ms (ratio ${r.sessionWhatIf.serialRatioP50}); webhook p50 ${round(l.webhook.serialMs.p50, 1)} ms; duplicate p50 ${round(l.webhook.duplicateMs.p50, 1)} ms`,
  );
  console.log('\n== per request (serial, counted at the DynamoDB proxy and the LiveKit stand-in) ==');
  console.log(
    table([
      ['scenario', 'ddb req', 'cond writes', 'RRU', 'WRU', 'LiveKit', 'outcome', 'operations'],
      ...l.costs.map((c) => [
        c.scenario,
        c.dynamoRequests,
        c.conditionalWrites,
        c.rru,
        c.wru,
        c.livekitCalls,
        c.outcome,
        Object.entries(c.ops)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ]),
    ]),
  );
  console.log('\n== capacity model (assumptions in bench/RESULTS.md) ==');
  console.log(
    table([
      ['per', 'RRU', 'WRU', 'GB-s', 'LiveKit calls', 'USD per million'],
      ...m.units.map((u) => [u.name, u.rru, u.wru, u.gbSeconds, u.livekitCalls, u.usdPerMillion]),
    ]),
  );
  console.log(`1,000 sessions/s: ${m.thousandPerSecond.summary}`);
  console.log('\n== budgets ==');
  for (const b of r.budgets.coldStart)
    console.log(
      `cold start ${b.name}: paired ratio p50 ${b.ratioP50} (≤ ${BUDGET.coldStartRatio}) ${ok(b.holds)}`,
    );
  for (const b of r.budgets.bundle)
    console.log(`bundle ${b.name}: ${b.bytes} bytes (≤ ${BUDGET.bundleBytes}) ${ok(b.holds)}`);
  console.log(
    `session p50 ratio: ${r.budgets.sessionP50.ratio} (≤ ${BUDGET.sessionP50Ratio}) ${ok(r.budgets.sessionP50.holds)}`,
  );
  const d = r.budgets.duplicateWebhook;
  console.log(
    `duplicate webhook: ${d.dynamoRequests} DynamoDB requests (${d.conditionalWrites} conditional), ${d.livekitCalls} LiveKit calls (goal 1 conditional, 0) ${ok(d.holds)}`,
  );
  console.log(
    `\nwrote bench/results/latest.json in ${r.seconds} s (load average at start ${r.loadAverageAtStart} on ${r.cpus} CPUs)`,
  );
}

/** A session comparison with its ratios (function / bare work). */
function withRatios<T extends SessionComparison>(cmp: T) {
  return {
    ...cmp,
    ratioP50: ratio(cmp.requestMs.p50, cmp.baselineMs.p50),
    ratioP99: ratio(cmp.requestMs.p99, cmp.baselineMs.p99),
    serialRatioP50: ratio(cmp.serialMs.p50, cmp.serialBaselineMs.p50),
  };
}

/** One row of the load table for a session comparison. */
function loadRow(label: string, cmp: ReturnType<typeof withRatios>) {
  return [
    label,
    round(cmp.requestMs.p50, 1),
    round(cmp.requestMs.p99, 1),
    round(cmp.requestsPerSecond, 1),
    round(cmp.baselineMs.p50, 1),
    round(cmp.baselineMs.p99, 1),
    round(cmp.baselinePerSecond, 1),
    cmp.ratioP50,
    cmp.ratioP99,
  ];
}
