/**
 * Typed domain errors. Each carries the contract's stable `code`; only the HTTP layer maps
 * codes to statuses. Messages never contain secrets or opened claims.
 */
export class DomainError extends Error {
  readonly code: string;
  /** Extra, non-secret details for the problem document (e.g. failing fields). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }
}

/** Configuration is missing or invalid; the message lists every problem. */
export class ConfigError extends DomainError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('invalid_config', `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** A request failed validation (422 `invalid_request`, or another code given). */
export class ValidationError extends DomainError {
  constructor(message: string, options?: { code?: string; details?: Record<string, unknown> }) {
    super(options?.code ?? 'invalid_request', message, { details: options?.details });
  }
}

/** A conditional write lost: the item exists, or the version is stale. */
export class ConditionFailedError extends DomainError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'condition_failed', message, options);
  }
}

/** The store failed after its retries (503 `store_unavailable`). */
export class StoreUnavailableError extends DomainError {
  constructor(options?: { cause?: unknown }) {
    super('store_unavailable', 'The data store is unavailable; retry later.', options);
  }
}

/**
 * LiveKit failed or timed out (502 `livekit_unavailable`). `server` is the LiveKit URL the
 * detail names (the `server_url` apps get anyway: scheme, host and path, never credentials).
 */
export class LiveKitUnavailableError extends DomainError {
  constructor(options?: { cause?: unknown; server?: string }) {
    super(
      'livekit_unavailable',
      options?.server === undefined
        ? 'LiveKit did not answer in time or failed; retry later.'
        : `LiveKit at ${options.server} did not answer in time or failed; retry later.`,
      options,
    );
  }
}

/** Authentication failed (401 `unauthenticated`). The reason is for logs, not the client. */
export class AuthError extends DomainError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('unauthenticated', 'Missing, invalid or expired bearer token.', options);
    this.reason = reason;
  }
}

/**
 * The issuer's JWKS could not be fetched (network error, timeout, non-200, not a JWK set): our
 * outage, not the caller's fault, so 503 `auth_unavailable` (retryable), never a 401. The reason
 * is for logs, not the client.
 */
export class AuthUnavailableError extends DomainError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('auth_unavailable', 'The token cannot be verified right now; retry later.', options);
    this.reason = reason;
  }
}

/**
 * A key the store would build from an id exceeds DynamoDB's key limits (partition 2048, sort 1024
 * bytes): no record of ours can have that id. The webhook answers such an event `ignored`.
 */
export class KeyTooLongError extends DomainError {
  constructor(message = "An id is too long for the table's keys.") {
    super('key_too_long', message);
  }
}

/** An item read from the store is not the record it should be (a bug or a hand-edited table). */
export class MalformedItemError extends DomainError {
  constructor(kind: string, field: string, expected: string) {
    super('malformed_item', `Stored ${kind} item has a malformed ${field} (expected ${expected}).`);
  }
}
