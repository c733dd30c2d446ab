import type { CatalogServer, ConnectionRecord, ReauthReason, TenantRecord } from '../model.js';
import type { Page, PageRequest } from '../ports.js';

/**
 * The connection ports (docs/api.md §8): the {@link ConnectionReader} and OAuth token source that
 * dispatch and renewal share, and what the connection service stores beyond them. Every decision
 * reads strongly consistently from the base table; every write is one conditional single-item
 * write.
 */

/**
 * A user's connections (docs/api.md §8), read strongly consistently from the base table: every
 * dispatch, renewal and connection call decides from them.
 */
export interface ConnectionReader {
  listConnections(tenantId: string, userId: string): Promise<ConnectionRecord[]>;
}

/** What one server's credential resolves to at dispatch or renewal. */
export type CredentialResult =
  | { status: 'ready'; token: string; expires_at?: number }
  | { status: 'not_connected' | 'needs_reauth' | 'unavailable'; reason?: ReauthReason; code?: string };

/**
 * A worker's report that a server refused the access token it holds (docs/api.md §9 `rejected`).
 * `held` is that token, taken from the metadata the worker sent (undefined when it held none).
 */
export interface RejectionReport {
  status: 401 | 403;
  scope?: string;
  held?: string;
}

/**
 * A usable OAuth access token for one connection: the stored one while it has at least
 * `MCP_TOKEN_MIN_TTL_SECONDS` left, else refreshed per §8 (one writer at a time). On a worker's
 * `rejected` report for the stored token: refreshed once; rejected again after that refresh, or
 * a 403 naming a `scope`, `needs_reauth` (§9). Never throws for the authorization server's
 * failures: those are `unavailable` (an unexpired token is still `ready` with its `expires_at`,
 * unless it was the rejected one) or `needs_reauth`.
 */
export interface OAuthTokenSource {
  accessToken(input: {
    tenant: TenantRecord;
    server: CatalogServer;
    connection: ConnectionRecord;
    rejected?: RejectionReport;
  }): Promise<CredentialResult>;
}

/** A pending authorization or a callback result as stored: who it belongs to, plus a sealed body. */
export interface OneTimeItem {
  tenant_id: string;
  user_id: string;
  server: string;
  /** Epoch ms; past it the item is expired (the item lives on a while, so it is still known). */
  expires_at: number;
  used: boolean;
  /** Compact JWE bound to (tenant, user, `oauth:state`). */
  sealed: string;
}

/** The user's current pending authorization for a server. */
export interface PendingPointer {
  server: string;
  state_hash: string;
  expires_at: number;
}

/** A tenant's client at one issuer: the DCR registration (if any) and the issuer's metadata as recorded. */
export interface StoredClient {
  tenant_id: string;
  issuer: string;
  /** RFC 8414 metadata recorded when the issuer was discovered; refresh and revocation use it. */
  as_metadata: Record<string, unknown>;
  dcr?: {
    client_id: string;
    client_secret_sealed?: string;
    client_secret_expires_at?: number;
    token_endpoint_auth_method: string;
  };
  updated_at: string;
}

/** The connection store: connections, the §8 refresh lock, pending states, results, clients. */
export interface ConnectionStore extends ConnectionReader {
  /**
   * The tenant's connections across its users, by `status` when given, ordered by status, user
   * and server. From an index: eventually consistent, for lists and sweeps, never for a decision.
   */
  listTenantConnections(
    tenantId: string,
    filter: { status?: ConnectionRecord['status'] },
    page?: PageRequest,
  ): Promise<Page<ConnectionRecord>>;
  getConnection(tenantId: string, userId: string, server: string): Promise<ConnectionRecord | undefined>;
  /**
   * Writes the whole record: create-only when `expectedVersion` is null, else only over that
   * version. @throws ConditionFailedError `version_conflict` / `already_exists`.
   */
  putConnection(record: ConnectionRecord, expectedVersion: number | null): Promise<void>;
  /** Deletes the record (at `expectedVersion` when given); the deleted record, if any. */
  deleteConnection(
    tenantId: string,
    userId: string,
    server: string,
    expectedVersion?: number,
  ): Promise<ConnectionRecord | undefined>;
  /** Takes `refresh_lock` when `rt_version` is `rtVersion` and no unexpired lock is held; the record or undefined. */
  takeRefreshLock(
    record: ConnectionRecord,
    lock: { owner: string; until: number; now: number },
  ): Promise<ConnectionRecord | undefined>;
  /** Stores a refresh on `rt_version = n AND refresh_lock.owner = owner`, bumping both versions; false if lost. */
  storeRefresh(
    record: ConnectionRecord,
    owner: string,
    changes: Pick<
      ConnectionRecord,
      | 'token_sealed'
      | 'token_fingerprint'
      | 'access_expires_at'
      | 'refresh_token_sealed'
      | 'scopes'
      | 'forced_refresh'
    > & { refreshed_at: string },
  ): Promise<boolean>;
  /** Marks `needs_reauth` only while `rt_version` is still the one that was sent (and `owner` holds the lock). */
  markNeedsReauth(
    record: ConnectionRecord,
    reason: ReauthReason,
    options: { owner?: string; lastError?: string; requiredScopes?: string[]; now: string },
  ): Promise<boolean>;
  /** Drops the lock if `owner` still holds it. */
  releaseRefreshLock(record: ConnectionRecord, owner: string): Promise<void>;

  listPending(tenantId: string, userId: string): Promise<PendingPointer[]>;
  getPendingPointer(tenantId: string, userId: string, server: string): Promise<PendingPointer | undefined>;
  /** Points the user's pending authorization for `server` at `stateHash`; returns the one it replaced. */
  setPendingPointer(
    tenantId: string,
    userId: string,
    pointer: PendingPointer,
  ): Promise<PendingPointer | undefined>;
  /** Removes the pointer if it still names `stateHash`. */
  clearPendingPointer(tenantId: string, userId: string, server: string, stateHash: string): Promise<void>;

  /** Create-only; `ttlSeconds` is how long the item is kept (beyond `expires_at`, so it stays known). */
  putOneTime(kind: 'state' | 'result', hash: string, item: OneTimeItem, ttlSeconds: number): Promise<void>;
  getOneTime(kind: 'state' | 'result', hash: string): Promise<OneTimeItem | undefined>;
  /** Uses the item once: true for the one caller that marks it used while unexpired (and the user's). */
  takeOneTime(
    kind: 'state' | 'result',
    hash: string,
    condition: { now: number; userId?: string },
  ): Promise<boolean>;

  getClient(tenantId: string, issuer: string): Promise<StoredClient | undefined>;
  putClient(client: StoredClient): Promise<void>;
  /**
   * Drops the tenant's DCR registration at `issuer` if it is still `clientId` (conditional: a
   * newer registration stays), so the next authorization registers afresh; whether it did.
   */
  forgetDcrClient(tenantId: string, issuer: string, clientId: string): Promise<boolean>;

  /** Admits one authorization unless `limitPerMinute` were admitted in the last 60 s. */
  hitAuthorizeRate(tenantId: string, userId: string, limitPerMinute: number): Promise<boolean>;
}
