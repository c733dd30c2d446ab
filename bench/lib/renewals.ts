import { leaseToItem } from '../../functions/adapters/dynamo/leases.js';
import { itemSize } from './capacity.js';
import { round } from './stats.js';

/**
 * Issue 20, item 4: renewals, OAuth refreshes and per-tenant partition limits at a given session
 * rate. The per-renewal and per-refresh units are the ones COUNTED in the same run (bench/load.ts
 * warm paths: the renewal, and an OAuth session needing a refresh minus one with a fresh token);
 * the constants below are only the fallback when a run did not count them (they are then printed
 * as modeled).
 */
export const RENEWAL_ASSUMPTIONS = {
  /** Mean call (job) length, s: stated, not measured. Contact-centre calls are typically 4–8 min. */
  meanCallSeconds: 600,
  /** CREDENTIALS_REFRESH_SECONDS (docs/api.md §2): a live job renews this often. */
  credentialsRefreshSeconds: 900,
  /** A worker renews once at job start as well (CONTRACT §9). */
  startRenewalsPerSession: 1,
  /** MCP_TOKEN_MIN_TTL_SECONDS: an access token with less left is refreshed before sealing. */
  mcpTokenMinTtlSeconds: 300,
  /** Typical OAuth access-token lifetime, s. */
  accessTokenSeconds: 3600,
  /** OAuth MCP connections sealed per session. */
  oauthConnectionsPerSession: 1,
  /** Sessions one user starts per hour in the "reuse" scenario (tokens stay fresh across calls). */
  sessionsPerUserPerHour: 4,
  /**
   * Fallback per renewal (core/renewal.ts, no lease): strongly consistent GetItems of the sid
   * pointer, session ‖ user ‖ tenant, the rate window, and the re-read session ‖ user ‖ tenant
   * (1 RRU each); conditional puts of the jti and the rate window (1 WRU each).
   */
  renewalRru: 8,
  renewalWru: 2,
  /** jti → sid pointer → session ‖ user ‖ tenant → rate get → rate put → the re-read trio. */
  renewalSequentialRoundTrips: 5,
  /** Fallback per OAuth refresh: the client record read, lock take, result store (sealed tokens ~1.5 KB: 2 WRU). */
  refreshWru: 3,
  refreshRru: 1,
  /** Strongly consistent reads of the tenant item per session start (the read, the §10 fence re-read) and per renewal (read, re-read). */
  tenantReadsPerStart: 2,
  tenantReadsPerRenewal: 2,
  /** DynamoDB's per-partition-key limits (before adaptive splitting by sort key). */
  partitionWcu: 1000,
  partitionRcu: 3000,
};

/** What renewals and refreshes add at `sessionsPerSecond`, and where one tenant hits a partition limit. */
export interface RenewalModel {
  assumptions: typeof RENEWAL_ASSUMPTIONS;
  liveSessions: number;
  renewalsPerSession: number;
  renewalsPerSecond: number;
  renewal: { rru: number; wru: number; modeledMs: number; gbSeconds: number; counted: boolean };
  refresh: { rru: number; wru: number; counted: boolean };
  rruPerSecond: number;
  wruPerSecond: number;
  gbSecondsPerSecond: number;
  lambdaConcurrency: number;
  /** Authorization-server calls per hour: every session's token stale at start (worst) and with reuse. */
  asCallsPerHour: { worst: number; reuse: number };
  /** Per tenant: each key that is one partition per tenant, what it carries per session, the cap. */
  tenantKeys: { key: string; perSession: string; capSessionsPerSecond: number; note: string }[];
}

/** Units counted in the run for one request (bench/load.ts `PerRequestCost`). */
export interface CountedUnits {
  rru: number;
  wru: number;
  sequentialRoundTrips: number;
}

/**
 * The model at `sessionsPerSecond`. `localMs` is the measured local serial duration of a session
 * request (the renewal does comparable CPU work: verify, open, seal); `counted` the renewal's and
 * one refresh's units counted in the same run; `dynamoRoundTripMs` and `memoryGb` are the
 * capacity model's assumptions.
 */
export function renewalModel(
  sessionsPerSecond: number,
  localMs: number,
  counted: { renewal?: CountedUnits; refresh?: Omit<CountedUnits, 'sequentialRoundTrips'> },
  dynamoRoundTripMs: number,
  memoryGb: number,
): RenewalModel {
  const a = RENEWAL_ASSUMPTIONS;
  const renewalUnits = counted.renewal ?? {
    rru: a.renewalRru,
    wru: a.renewalWru,
    sequentialRoundTrips: a.renewalSequentialRoundTrips,
  };
  const refreshUnits = counted.refresh ?? { rru: a.refreshRru, wru: a.refreshWru };
  const live = sessionsPerSecond * a.meanCallSeconds;
  const renewalsPerSession = a.startRenewalsPerSession + a.meanCallSeconds / a.credentialsRefreshSeconds;
  const renewalsPerSecond = sessionsPerSecond * renewalsPerSession;
  const modeledMs = localMs + renewalUnits.sequentialRoundTrips * dynamoRoundTripMs;
  const gbSeconds = (Math.ceil(modeledMs) / 1000) * memoryGb;

  // A sealed token is refreshed when it has < min TTL left: at most once per (lifetime − min TTL)
  // per connection while it is in use. Worst: no session finds a token refreshed within that time.
  const usable = a.accessTokenSeconds - a.mcpTokenMinTtlSeconds;
  const perSessionWorst = 1 + Math.floor(a.meanCallSeconds / usable);
  const worst = sessionsPerSecond * 3600 * a.oauthConnectionsPerSession * perSessionWorst;
  const activeConnections =
    (sessionsPerSecond * 3600 * a.oauthConnectionsPerSession) / a.sessionsPerUserPerHour;
  const reuse = Math.min(worst, activeConnections * (3600 / usable));
  const refreshesPerSecond = worst / 3600;

  const rruPerSecond = renewalsPerSecond * renewalUnits.rru + refreshesPerSecond * refreshUnits.rru;
  const wruPerSecond = renewalsPerSecond * renewalUnits.wru + refreshesPerSecond * refreshUnits.wru;

  // Per-tenant keys. Lease item size from the real item builder with typical ids.
  const leaseBytes = itemSize(
    Object.fromEntries(
      Object.entries(
        leaseToItem({
          tenant_id: 'tenant-0123456789',
          slot: 12345,
          holder: 'x'.repeat(64),
          acquired_at: 1_767_225_600_000,
          expires_at: 1_767_227_400,
        }),
      ).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : { S: String(v) }]),
    ),
  );
  const perSessionLeaseWrites = 2 + renewalsPerSession; // put at start, delete at end, one update per renewal
  const leaseWriteCap = a.partitionWcu / perSessionLeaseWrites;
  // The acquire Query reads every slot of the tenant, strongly consistent: its RRU grow with
  // the tenant's live sessions (r × L), so r × ceil(r × L × bytes / 4 KB) ≤ 3000.
  let leaseReadCap = 0;
  for (let r = 0.5; r < 10_000; r += 0.5) {
    if (r * Math.max(1, Math.ceil((r * a.meanCallSeconds * leaseBytes) / 4096)) > a.partitionRcu) break;
    leaseReadCap = r;
  }
  // The tenant item is read strongly consistent by every session start (and its fence re-read),
  // its participant_joined webhook (app-session room) and every renewal (read and re-read).
  const tenantReadsPerSession = a.tenantReadsPerStart + 1 + a.tenantReadsPerRenewal * renewalsPerSession;
  const tenantKeys = [
    {
      key: 'ACTIVE#<tenant> (base-table active markers)',
      perSession: '2 WRU (put at start, delete at end)',
      capSessionsPerSecond: round(a.partitionWcu / 2, 1),
      note: 'every tenant',
    },
    {
      key: 'gsi1pk TENANT#<id>#SESSIONS, gsi2pk TENANT#<id>#ACTIVE',
      perSession: '≈ 2 WRU on each (session written at start, updated at end; measured in the cost table)',
      capSessionsPerSecond: round(a.partitionWcu / 2, 1),
      note: 'every tenant; GSI throttling throttles the table write',
    },
    {
      key: 'TENANT#<id> item (strongly consistent reads)',
      perSession: `${round(tenantReadsPerSession, 2)} RRU (start ×${a.tenantReadsPerStart}, joined webhook, ${round(renewalsPerSession, 2)} renewals ×${a.tenantReadsPerRenewal})`,
      capSessionsPerSecond: round(a.partitionRcu / tenantReadsPerSession, 1),
      note: 'every tenant',
    },
    {
      key: 'LEASE#<tenant> writes',
      perSession: `${round(perSessionLeaseWrites, 2)} WRU (acquire, release, ${round(renewalsPerSession, 2)} renewal updates)`,
      capSessionsPerSecond: round(leaseWriteCap, 1),
      note: 'tenants with max_concurrent_sessions',
    },
    {
      key: 'LEASE#<tenant> acquire Query (reads all slots)',
      perSession: `ceil(live × ${leaseBytes} B / 4 KB) RRU; live = rate × ${a.meanCallSeconds} s`,
      capSessionsPerSecond: leaseReadCap,
      note: 'tenants with max_concurrent_sessions: the tightest cap',
    },
    {
      key: 'RATE#<tenant>#<user> windows',
      perSession: '2 requests (GetItem + conditional put) per start and per renewal',
      capSessionsPerSecond: Number.POSITIVE_INFINITY,
      note: 'per user (and per session for renewals): not a tenant partition',
    },
  ];
  return {
    assumptions: a,
    liveSessions: live,
    renewalsPerSession: round(renewalsPerSession, 3),
    renewalsPerSecond: round(renewalsPerSecond, 1),
    renewal: {
      rru: renewalUnits.rru,
      wru: renewalUnits.wru,
      modeledMs: round(modeledMs, 1),
      gbSeconds: round(gbSeconds, 4),
      counted: counted.renewal !== undefined,
    },
    refresh: { ...refreshUnits, counted: counted.refresh !== undefined },
    rruPerSecond: round(rruPerSecond),
    wruPerSecond: round(wruPerSecond),
    gbSecondsPerSecond: round(renewalsPerSecond * gbSeconds, 1),
    lambdaConcurrency: Math.ceil((renewalsPerSecond * modeledMs) / 1000),
    asCallsPerHour: { worst: Math.round(worst), reuse: Math.round(reuse) },
    tenantKeys,
  };
}
