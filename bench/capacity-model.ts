import { type RenewalModel, renewalModel } from './lib/renewals.js';
import { round } from './lib/stats.js';
import type { LoadResult, PerRequestCost } from './load.js';

/**
 * Public on-demand prices used by the model (us-east-1, checked 2026-11; see bench/RESULTS.md).
 * They are assumptions: change them here, the model follows.
 */
export const PRICES = {
  /** DynamoDB on-demand, Standard table class, per million request units. */
  dynamoWriteUsdPerMillion: 0.625,
  dynamoReadUsdPerMillion: 0.125,
  /** Lambda arm64 (infra/house-function.ts), per GB-second and per million requests. */
  lambdaUsdPerGbSecond: 0.0000133334,
  lambdaUsdPerMillionRequests: 0.2,
  /** API Gateway HTTP API, per million requests (first 300 million a month). */
  httpApiUsdPerMillion: 1.0,
};

/** Other modelling assumptions. */
export const ASSUMPTIONS = {
  /** Lambda memory of every function (infra/context.ts). */
  memoryGb: 0.5,
  /** Added per DynamoDB request in AWS over the loopback dynalite figure, ms (in-region round trip). */
  dynamoRoundTripMs: 5,
  /** Added per LiveKit call in AWS over the loopback stand-in figure, ms (LiveKit Cloud API from a Lambda). */
  livekitRoundTripMs: 40,
  /** Webhooks LiveKit sends per app session besides participant_joined and room_finished (room_started, the agent's participant_joined, track_published ×2, participant_left ×2), all acknowledged without I/O. */
  otherWebhooksPerSession: 6,
  secondsPerMonth: 30 * 24 * 3600,
};

/** One billable unit of work. */
export interface UnitCost {
  name: string;
  rru: number;
  wru: number;
  dynamoRequests: number;
  livekitCalls: number;
  /** Local serial duration, ms (loopback store and LiveKit). */
  localMs: number;
  /** Local duration plus the AWS round trips assumed above, ms: what Lambda would bill. */
  modeledMs: number;
  gbSeconds: number;
  usdPerMillion: number;
}

/** The capacity model over the measured per-request costs. */
export interface CapacityModel {
  prices: typeof PRICES;
  assumptions: typeof ASSUMPTIONS;
  units: UnitCost[];
  thousandPerSecond: {
    rruPerSecond: number;
    wruPerSecond: number;
    lambdaInvocationsPerSecond: number;
    /** Concurrent Lambda instances ≈ invocations/s × modeled duration. */
    lambdaConcurrency: number;
    livekitCallsPerSecond: number;
    usdPerHour: number;
    usdPerMonth: number;
    summary: string;
  };
  /** Renewals, OAuth refreshes and per-tenant partition caps at the same rate (modeled: bench/lib/renewals.ts). */
  renewals: RenewalModel & { usdPerHour: number; summary: string };
}

function unit(name: string, c: PerRequestCost | undefined, localMs: number): UnitCost {
  const rru = c?.rru ?? 0;
  const wru = c?.wru ?? 0;
  const dynamoRequests = c?.dynamoRequests ?? 0;
  const livekitCalls = c?.livekitCalls ?? 0;
  const modeledMs =
    localMs + dynamoRequests * ASSUMPTIONS.dynamoRoundTripMs + livekitCalls * ASSUMPTIONS.livekitRoundTripMs;
  // Lambda bills whole milliseconds.
  const gbSeconds = (Math.ceil(modeledMs) / 1000) * ASSUMPTIONS.memoryGb;
  const usd =
    rru * PRICES.dynamoReadUsdPerMillion +
    wru * PRICES.dynamoWriteUsdPerMillion +
    gbSeconds * 1e6 * PRICES.lambdaUsdPerGbSecond +
    PRICES.lambdaUsdPerMillionRequests +
    PRICES.httpApiUsdPerMillion;
  return {
    name,
    rru,
    wru,
    dynamoRequests,
    livekitCalls,
    localMs: round(localMs, 1),
    modeledMs: round(modeledMs, 1),
    gbSeconds: round(gbSeconds, 4),
    usdPerMillion: round(usd, 2),
  };
}

/** Builds the model from one run's costs and serial durations. */
export function capacityModel(load: LoadResult): CapacityModel {
  const by = (s: string) => load.costs.find((c) => c.scenario === s);
  const cheapMs = load.webhook.duplicateMs.p50;
  const session = unit('POST /v1/sessions', by('POST /v1/sessions'), load.session.serialMs.p50);
  const joinedApp = unit(
    'webhook participant_joined (app session room)',
    by('webhook participant_joined, room of an app session'),
    cheapMs,
  );
  const finished = unit('webhook room_finished', by('webhook room_finished (1 session)'), cheapMs);
  const other = unit('webhook, other event', by('webhook other event (track_published)'), 1);
  const joined = unit(
    'webhook participant_joined (dispatches)',
    by('webhook participant_joined, dispatches'),
    load.webhook.serialMs.p50,
  );
  const duplicate = unit('webhook duplicate delivery', by('webhook duplicate delivery'), cheapMs);

  const k = ASSUMPTIONS.otherWebhooksPerSession;
  const parts = [session, joinedApp, finished];
  const sum = (f: (u: UnitCost) => number) => parts.reduce((a, u) => a + f(u), 0) + k * f(other);
  const all: UnitCost = {
    name: `app session, all in (session + ${2 + k} webhooks)`,
    rru: round(sum((u) => u.rru)),
    wru: round(sum((u) => u.wru)),
    dynamoRequests: round(sum((u) => u.dynamoRequests)),
    livekitCalls: round(sum((u) => u.livekitCalls)),
    localMs: round(
      sum((u) => u.localMs),
      1,
    ),
    modeledMs: round(
      sum((u) => u.modeledMs),
      1,
    ),
    gbSeconds: round(
      sum((u) => u.gbSeconds),
      4,
    ),
    usdPerMillion: round(
      sum((u) => u.usdPerMillion),
      2,
    ),
  };
  const perSecond = 1000;
  const usdPerSecond = (all.usdPerMillion / 1e6) * perSecond;
  const invocations = perSecond * (parts.length + k);
  const concurrency = perSecond * (sum((u) => u.modeledMs) / 1000);
  const t = {
    rruPerSecond: round(all.rru * perSecond),
    wruPerSecond: round(all.wru * perSecond),
    lambdaInvocationsPerSecond: invocations,
    lambdaConcurrency: Math.ceil(concurrency),
    livekitCallsPerSecond: round(all.livekitCalls * perSecond),
    usdPerHour: round(usdPerSecond * 3600, 2),
    usdPerMonth: Math.round(usdPerSecond * ASSUMPTIONS.secondsPerMonth),
  };
  // Counted in this run: the renewal, and one refresh as the OAuth session that needs one minus
  // the one whose token is fresh.
  const renewal = by('POST /v1/worker/credentials (worker renewal)');
  const stale = by('POST /v1/sessions, OAuth token needs a refresh');
  const fresh = by('POST /v1/sessions, OAuth token fresh');
  const rm = renewalModel(
    perSecond,
    load.session.serialMs.p50,
    {
      ...(renewal === undefined
        ? {}
        : {
            renewal: {
              rru: renewal.rru,
              wru: renewal.wru,
              sequentialRoundTrips: renewal.sequentialRoundTrips,
            },
          }),
      ...(stale === undefined || fresh === undefined
        ? {}
        : { refresh: { rru: stale.rru - fresh.rru, wru: stale.wru - fresh.wru } }),
    },
    ASSUMPTIONS.dynamoRoundTripMs,
    ASSUMPTIONS.memoryGb,
  );
  // Each renewal is one API Gateway request and one Lambda invocation; refreshes add table units.
  const renewalUsdPerSecond =
    (rm.rruPerSecond * PRICES.dynamoReadUsdPerMillion +
      rm.wruPerSecond * PRICES.dynamoWriteUsdPerMillion +
      rm.gbSecondsPerSecond * 1e6 * PRICES.lambdaUsdPerGbSecond +
      rm.renewalsPerSecond * (PRICES.lambdaUsdPerMillionRequests + PRICES.httpApiUsdPerMillion)) /
    1e6;
  const renewalUsdPerHour = round(renewalUsdPerSecond * 3600, 2);
  const tightest = rm.tenantKeys.reduce((m, k) => (k.capSessionsPerSecond < m.capSessionsPerSecond ? k : m));
  return {
    renewals: {
      ...rm,
      usdPerHour: renewalUsdPerHour,
      summary: `units ${rm.renewal.counted ? 'counted' : 'modeled'} (renewal ${rm.renewal.rru} RRU / ${rm.renewal.wru} WRU, refresh ${rm.refresh.rru} RRU / ${rm.refresh.wru} WRU): ${rm.liveSessions} live sessions (mean call ${rm.assumptions.meanCallSeconds} s), ${rm.renewalsPerSecond} renewals/s (${rm.renewalsPerSession} per session), +${rm.rruPerSecond} RRU/s, +${rm.wruPerSecond} WRU/s, +${rm.gbSecondsPerSecond} GB-s/s (~${rm.lambdaConcurrency} concurrent), AS calls/hour ${rm.asCallsPerHour.worst} worst, ${rm.asCallsPerHour.reuse} with ${rm.assumptions.sessionsPerUserPerHour} sessions per user-hour; ≈ +$${renewalUsdPerHour}/hour; one tenant is capped first by ${tightest.key} at ${tightest.capSessionsPerSecond} sessions/s`,
    },
    prices: PRICES,
    assumptions: ASSUMPTIONS,
    units: [session, joined, duplicate, joinedApp, finished, other, all],
    thousandPerSecond: {
      ...t,
      summary: `${t.rruPerSecond} RRU/s, ${t.wruPerSecond} WRU/s, ${t.lambdaInvocationsPerSecond} invocations/s (~${t.lambdaConcurrency} concurrent), ${t.livekitCallsPerSecond} LiveKit calls/s, ≈ $${t.usdPerHour}/hour, ≈ $${t.usdPerMonth}/month (DynamoDB storage, logs and LiveKit not included)`,
    },
  };
}
