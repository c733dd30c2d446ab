import { randomBytes } from 'node:crypto';
import { DomainError } from './errors.js';
import type { Log } from './log.js';
import type { DispatchMode, McpServerGrant, SessionOrigin, SessionRecord, TenantRecord } from './model.js';
import type { DispatchApi, DispatchStore } from './ports.js';
import type { DispatchSealer, SecretBox } from './sealing.js';
import type { ServerResolver } from './servers.js';

/**
 * What a dispatch is asked to do and what it answers (docs/api.md §4, §5): the saga's inputs,
 * results and errors, shared by the dispatcher, the join policy and the session service.
 */

/** The tenant's leases are all taken (429 `quota_exceeded`; the webhook answers 200). */
export class QuotaExceededError extends DomainError {
  constructor() {
    super('quota_exceeded', "All of the tenant's concurrent sessions are in use; retry later.");
  }
}

/**
 * Another attempt is making this dispatch right now (503, retryable): if it fails, the retry
 * must find no claim and dispatch, so this is never reported as already dispatched.
 */
export class DispatchInProgressError extends DomainError {
  constructor() {
    super('dispatch_in_progress', 'This dispatch is being made by another request; retry shortly.');
  }
}

/** Everything a {@link Dispatcher} is built from. */
export interface DispatcherDeps {
  store: DispatchStore;
  livekit: DispatchApi;
  sealer: DispatchSealer;
  secretBox: Pick<SecretBox, 'open'>;
  /**
   * The user's servers for a webhook dispatch (servers.ts); when unset, `mcp` and the catalog
   * with no connections (the stored-token source over `secretBox`).
   */
  servers?: ServerResolver;
  clock: () => Date;
  log: Log;
  config: {
    /** Lifetime of sealed metadata and of a quota lease (`METADATA_TTL_SECONDS`). */
    metadataTtlSeconds: number;
    defaultAgentName: string;
    webhookRoomPrefix: string;
    /** `PUBLIC_BASE_URL`: the sealed `refresh_url` is `<it>/v1/worker/credentials` (docs/api.md §9). */
    publicBaseUrl?: string | undefined;
    /** `CREDENTIALS_REFRESH_SECONDS` (default 900): when the worker renews (docs/api.md §9). */
    credentialsRefreshSeconds?: number;
  };
  /** How long an unfinished dispatch claim blocks others before it counts as abandoned (s). */
  claimHoldSeconds?: number;
}

/** One dispatch to make. */
export interface DispatchRequest {
  tenant: TenantRecord;
  userId: string;
  /** The participant the job serves (`pid`). */
  participantIdentity: string;
  agentName: string;
  roomName: string;
  /** LiveKit's room sid, when the room exists (webhook): claims are then per room incarnation. */
  roomSid?: string;
  /** Claim one dispatch per participant rather than per room. */
  perParticipant: boolean;
  /**
   * The caller has just named this room itself, at random (the session API): no one else can
   * dispatch in it, so no dispatch claim is taken.
   */
  freshRoom?: boolean;
  mcpServers: McpServerGrant[];
  /** The app's own agent metadata, sealed as `client`. */
  client?: string;
  /** `api`: CreateDispatch now; `token`: the caller embeds the metadata in a participant token. */
  mode: DispatchMode;
  origin: SessionOrigin;
  /**
   * Last check before anything is created, run once the claim and lease are held (the session
   * function's rate limit). When it throws, the claim and lease are released and the error
   * propagates, so a refused request leaves nothing behind.
   */
  admit?: () => Promise<void>;
}

/** What {@link DispatchSaga} did. */
export type DispatchResult =
  | { status: 'dispatched'; session: SessionRecord; metadata: string; metadataExpiresAt: Date }
  | { status: 'already_dispatched' };

/** Default `CREDENTIALS_REFRESH_SECONDS` (docs/api.md §2). */
export const DEFAULT_CREDENTIALS_REFRESH_SECONDS = 900;

/**
 * A new session id (docs/api.md §9): 128 random bits, base64url. Random and independent of the
 * room name and dispatch id, so neither reveals it; it is never shown to apps.
 */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** Seconds an in-progress dispatch claim holds: longer than one attempt can take. */
export const DEFAULT_CLAIM_HOLD_SECONDS = 30;

/** SHA-256 of a string, hex. */
export async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  return Buffer.from(digest).toString('hex');
}

/** A failure's code or name for logs (never its message). */
export function errorName(err: unknown): string {
  return err instanceof DomainError ? err.code : err instanceof Error ? err.name : typeof err;
}
