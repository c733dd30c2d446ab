/**
 * The renewal client: `POST /v1/worker/credentials` (docs/api.md §9).
 *
 * One call renews one job's sealed metadata: a fresh worker assertion per attempt (the contract's
 * `makeWorkerAssertion`; a `jti` is single use), a timeout per attempt, redirects never followed,
 * retries with full jitter on 429, 5xx and network failures (at least `Retry-After` when the answer
 * names one), never on another 4xx. Errors carry the answer's status and problem `code` only,
 * never a token or the metadata.
 */
import { type Keyring, type KeyringJson, makeWorkerAssertion } from '@livekit-mcp-dispatch/contract';
import { parseDispatchKeyring } from './open.js';

/** A renewal did not give new metadata: `code` is the answer's problem code (or ours), `status` its HTTP status. */
export class RenewalError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  constructor(code: string, status: number | undefined, message: string) {
    super(message);
    this.name = 'RenewalError';
    this.code = code;
    this.status = status;
  }
}

/** 403 `session_ended`: the session is over; the worker ends the job. */
export class SessionEndedError extends RenewalError {
  override readonly name = 'SessionEndedError';
}

/** 401 (`invalid_worker_assertion` / `invalid_metadata`) or another 4xx: not retried. */
export class RenewalRefusedError extends RenewalError {
  override readonly name = 'RenewalRefusedError';
}

/** 429 / 5xx / network failures, still so after the last retry. */
export class RenewalUnavailableError extends RenewalError {
  override readonly name = 'RenewalUnavailableError';
}

/** The renewal knobs (worker/README.md). */
export interface RenewalPolicy {
  /** Timeout of one attempt, ms. Default 10000. */
  timeoutMs: number;
  /** Attempts per renewal, the first included. Default 4. */
  attempts: number;
  /** Full jitter: attempt n waits random() × min(maxDelayMs, baseDelayMs × 2ⁿ). Defaults 500 / 8000. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A longer `Retry-After` is waited only this long. Default 30000. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RENEWAL_POLICY: RenewalPolicy = {
  timeoutMs: 10_000,
  attempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
};

/** A server the renewal left out (`unavailable` of the 200). */
export interface UnavailableServer {
  name: string;
  status?: number;
  code?: string;
}

/** A 200: the new sealed metadata (secret; open it like the first) and the servers left out. */
export interface RenewalAnswer {
  metadata: string;
  unavailable: UnavailableServer[];
}

/** One entry of the request's `rejected`: a server that refused its token. */
export interface RejectedCredential {
  name: string;
  status: 401 | 403;
  scope?: string;
}

/** Options of {@link RenewalClient}. */
export interface RenewalClientOptions {
  /** The dispatch keyring (`DISPATCH_KEYS` JSON, parsed JSON or parsed). */
  keyring: string | KeyringJson | Keyring;
  agentName: string;
  policy?: Partial<RenewalPolicy>;
  /** Tests and local development only: also allow an `http:` refresh URL. */
  allowInsecureForTests?: boolean;
  /** Waits between attempts (tests record it). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** `Retry-After` in ms from now: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const when = Date.parse(text);
  return Number.isNaN(when) ? undefined : Math.max(0, when - now);
}

/** Renews sealed metadata for the jobs of one worker (one keyring, one agent name). */
export class RenewalClient {
  readonly policy: RenewalPolicy;
  readonly #keyring: Keyring;
  readonly #agentName: string;
  readonly #insecure: boolean;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;

  constructor(options: RenewalClientOptions) {
    const ring = options.keyring;
    this.#keyring =
      typeof ring === 'object' && ring !== null && (ring as Keyring).keys instanceof Map
        ? (ring as Keyring)
        : parseDispatchKeyring(ring as string | KeyringJson);
    this.#agentName = options.agentName;
    this.policy = { ...DEFAULT_RENEWAL_POLICY, ...options.policy };
    this.#insecure = options.allowInsecureForTests === true;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#random = options.random ?? Math.random;
  }

  /** How long to wait before attempt `attempt + 1`: full jitter, at least `Retry-After` (capped). */
  backoffMs(attempt: number, retryAfter: number | undefined): number {
    const jitter = this.#random() * Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** attempt);
    return retryAfter === undefined
      ? jitter
      : Math.max(Math.min(retryAfter, this.policy.maxRetryAfterMs), jitter);
  }

  /**
   * One renewal.
   *
   * @throws SessionEndedError, RenewalRefusedError or RenewalUnavailableError.
   */
  async renew(
    metadata: string,
    refreshUrl: string,
    sid: string,
    rejected: readonly RejectedCredential[] = [],
  ): Promise<RenewalAnswer> {
    this.#checkUrl(refreshUrl);
    const body = JSON.stringify({ metadata, ...(rejected.length > 0 ? { rejected } : {}) });
    let last: RenewalError | undefined;
    let retryAfter: number | undefined;
    for (let attempt = 0; attempt < this.policy.attempts; attempt++) {
      if (attempt > 0) await this.#sleep(this.backoffMs(attempt - 1, retryAfter));
      retryAfter = undefined;
      const assertion = await makeWorkerAssertion({
        keyring: this.#keyring,
        agentName: this.#agentName,
        refreshUrl,
        sid,
      });
      let response: Response;
      try {
        response = await fetch(refreshUrl, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${assertion}`,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.policy.timeoutMs),
        });
      } catch {
        // Timeout, refused, reset: retried. The error (it may quote the URL) is not kept.
        last = new RenewalUnavailableError(
          'unavailable',
          undefined,
          'The credentials endpoint could not be reached.',
        );
        continue;
      }
      const status = response.status;
      const text = await response.text().catch(() => '');
      const code = problemCode(text);
      if (status === 200) {
        const answer = readAnswer(text);
        if (answer) return answer;
        last = new RenewalUnavailableError(
          'bad_answer',
          status,
          'The credentials endpoint answered 200 without metadata.',
        );
        continue;
      }
      if (status === 403 && code === 'session_ended')
        throw new SessionEndedError('session_ended', status, 'The session has ended.');
      if (status === 429 || status >= 500) {
        retryAfter = retryAfterMs(response.headers.get('retry-after'));
        last = new RenewalUnavailableError(
          code ?? 'unavailable',
          status,
          `The credentials endpoint answered HTTP ${status}.`,
        );
        continue;
      }
      throw new RenewalRefusedError(
        code ?? 'refused',
        status,
        `The credentials endpoint refused the renewal (HTTP ${status}).`,
      );
    }
    throw last ?? new RenewalUnavailableError('unavailable', undefined, 'No renewal attempt was made.');
  }

  #checkUrl(refreshUrl: string): void {
    const url = URL.canParse(refreshUrl) ? new URL(refreshUrl) : undefined;
    const schemes = this.#insecure ? ['https:', 'http:'] : ['https:'];
    if (!url || !schemes.includes(url.protocol) || url.username !== '' || url.password !== '')
      throw new RenewalRefusedError(
        'unsafe_refresh_url',
        undefined,
        "The metadata's refresh_url is not an https URL.",
      );
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function problemCode(text: string): string | undefined {
  const body = parse(text) as { code?: unknown } | undefined;
  return body && typeof body === 'object' && typeof body.code === 'string' ? body.code : undefined;
}

function readAnswer(text: string): RenewalAnswer | undefined {
  const body = parse(text) as { metadata?: unknown; unavailable?: unknown } | undefined;
  if (!body || typeof body !== 'object' || typeof body.metadata !== 'string' || body.metadata === '')
    return undefined;
  const unavailable = Array.isArray(body.unavailable)
    ? (body.unavailable.filter(
        (u) => u && typeof u === 'object' && typeof u.name === 'string',
      ) as UnavailableServer[])
    : [];
  return { metadata: body.metadata, unavailable };
}
