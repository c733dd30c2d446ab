import { leaseToItem } from '../../functions/adapters/dynamo/leases.js';
import { itemSize } from './capacity.js';
import { round } from './stats.js';

/**
 * Issue 20, item 4: renewals, OAuth refreshes and per-tenant partition limits at a given session
 * rate. The renewal path is not on this branch yet, so its units are MODELED from the operation
 * list of CONTRACT §9 (named below), not counted; `bench/load.ts` WARM_PATHS is where the
 * measurement goes once it merges, and these constants are then replaced by its figures.
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
   * Per renewal: strongly consistent GetItems of the sid pointer, the session, the user and the
   * tenant (each ≤ 4 KB: 1 RRU); a conditional put of the assertion's jti, the rate-window
   * update and the lease update (each ≤ 1 KB, no GSI keys: 1 WRU).
   */
  renewalRru: 4,
  renewalWru: 3,
  /** sid pointer → session ‖ user ‖ tenant → jti ‖ rate ‖ lease. */
  renewalSequentialRoundTrips: 3,
  /** Per OAuth refresh: lock take (conditional update), result store (sealed tokens ~1.5 KB: 2 WRU), the re-read. */
  refreshWru: 3,
  refreshRru: 1,
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
  renewal: { rru: number; wru: number; modeledMs: number; gbSeconds: number };
  rruPerSecond: number;
  wruPerSecond: number;
  gbSecondsPerSecond: number;
  lambdaConcurrency: number;
  /** Authorization-server calls per hour: every session's token stale at start (worst) and with reuse. */
  asCallsPerHour: { worst: number; reuse: number };
  /** Per tenant: each key that is one partition per tenant, what it carries per session, the cap. */
  tenantKeys: { key: string; perSession: string; capSessionsPerSecond: number; note: string }[];
}

/**
 * The model at `sessionsPerSecond`. `localMs` is the measured local serial duration of a session
 * request (the renewal does comparable CPU work: verify, open, seal); `dynamoRoundTripMs` and
 * `memoryGb` are the capacity model's assumptions.
 */
export function renewalModel(
  sessionsPerSecond: number,
  localMs: number,
  dynamoRoundTripMs: number,
  memoryGb: number,
): RenewalModel {
  const a = RENEWAL_ASSUMPTIONS;
  const live = sessionsPerSecond * a.meanCallSeconds;
  const renewalsPerSession = a.startRenewalsPerSession + a.meanCallSeconds / a.credentialsRefreshSeconds;
  const renewalsPerSecond = sessionsPerSecond * renewalsPerSession;
  const modeledMs = localMs + a.renewalSequentialRoundTrips * dynamoRoundTripMs;
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

  const rruPerSecond = renewalsPerSecond * a.renewalRru + refreshesPerSecond * a.refreshRru;
  const wruPerSecond = renewalsPerSecond * a.renewalWru + refreshesPerSecond * a.refreshWru;

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
  // The tenant item is read strongly consistent by every session start, its participant_joined
  // webhook (app-session room) and every renewal.
  const tenantReadsPerSession = 1 + 1 + renewalsPerSession;
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
      perSession: `${round(tenantReadsPerSession, 2)} RRU (start, joined webhook, ${round(renewalsPerSession, 2)} renewals)`,
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
      perSession: '2 requests (GetItem + conditional put) per start, 1 per renewal',
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
      rru: a.renewalRru,
      wru: a.renewalWru,
      modeledMs: round(modeledMs, 1),
      gbSeconds: round(gbSeconds, 4),
    },
    rruPerSecond: round(rruPerSecond),
    wruPerSecond: round(wruPerSecond),
    gbSecondsPerSecond: round(renewalsPerSecond * gbSeconds, 1),
    lambdaConcurrency: Math.ceil((renewalsPerSecond * modeledMs) / 1000),
    asCallsPerHour: { worst: Math.round(worst), reuse: Math.round(reuse) },
    tenantKeys,
  };
}
