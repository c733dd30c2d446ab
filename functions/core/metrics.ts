/**
 * The metrics port the apps count through. The names are the CloudWatch metric names (unit Count,
 * namespace `LiveKitMcpDispatch`, dimension `service`); no value is ever secret.
 */
export type MetricName =
  /** A session started (`POST /v1/sessions` 201, idempotent replays not counted). */
  | 'SessionsStarted'
  /** A CreateDispatch made by this system (session API mode, or a webhook `dispatched`). */
  | 'DispatchesCreated'
  /** A webhook event id seen again after it was processed. */
  | 'DuplicateEvents'
  /** A webhook delivery refused before anything was read: missing or invalid signature. */
  | 'RejectedSignatures'
  /** A LiveKit API call that failed or timed out. */
  | 'LiveKitFailures'
  /** A session or webhook dispatch refused because the tenant's leases were all taken. */
  | 'QuotaRejections'
  /** A session refused by the per-user rate limit. */
  | 'RateRejections';

/** Counts events. Implementations must never throw into the request. */
export interface Metrics {
  count(name: MetricName, n?: number): void;
}

/** Metrics that go nowhere (tests, and apps composed without metrics). */
export const noMetrics: Metrics = {
  count() {},
};
