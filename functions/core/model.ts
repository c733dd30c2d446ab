import type { McpTransport } from '@livekit-mcp-dispatch/contract';

/**
 * Records kept in the table. Field names follow the API's snake_case so that records,
 * responses and the contract read the same.
 */

export type Status = 'active' | 'suspended';
/**
 * A tenant's status; `deleting` is set first by a tenant delete (docs/api.md §10), so a user
 * create racing it sees the tenant going and undoes itself. Such a tenant is answered as missing.
 */
export type TenantStatus = Status | 'deleting';
export type Transport = McpTransport;
export type DispatchPolicy = 'per_room' | 'per_participant';
export type DispatchMode = 'api' | 'token';

/** MCP settings as stored: token and headers sealed with the storage keyring. */
export interface StoredMcp {
  url?: string;
  transport?: Transport;
  allowed_tools?: string[];
  name?: string;
  /** Compact JWE sealed with the storage keyring, bound to (tenant, user, "token"). */
  token_sealed?: string;
  token_fingerprint?: string;
  /** Compact JWE of the headers JSON object, bound to (tenant, user, "headers"). */
  headers_sealed?: string;
  header_names?: string[];
  /**
   * Origin (`https://host[:port]`) of the URL the token and headers were set for. They are
   * sent only to that origin, so a secret never follows a URL it was not set with.
   */
  credentials_origin?: string;
}

export interface TenantRecord {
  tenant_id: string;
  name: string;
  mcp?: StoredMcp;
  /** The tenant's catalog of further MCP servers (docs/api.md §6); absent or empty: none. */
  mcp_servers?: CatalogServer[];
  /** The exact URLs an app may name as an OAuth `return_to` (docs/api.md §6, §8). */
  oauth_return_urls?: string[];
  dispatch_policy: DispatchPolicy;
  agent_names: string[];
  max_concurrent_sessions?: number;
  status: TenantStatus;
  webhook_dispatch: boolean;
  sip_trunk_ids: string[];
  version: number;
  created_at: string;
  updated_at: string;
}

export interface UserRecord {
  tenant_id: string;
  user_id: string;
  display_name?: string;
  phone_numbers: string[];
  mcp?: StoredMcp;
  status: Status;
  version: number;
  created_at: string;
  updated_at: string;
}

/** One MCP server as it travels sealed to the worker (docs/api.md §3); defined once, in the wire format. */
export type { McpServerGrant } from '@livekit-mcp-dispatch/contract';

export type SessionOrigin = 'session' | 'webhook';

export interface SessionRecord {
  room_name: string;
  room_sid?: string;
  tenant_id: string;
  user_id: string;
  participant_identity: string;
  agent_name: string;
  dispatch_id: string | null;
  mode: DispatchMode;
  origin: SessionOrigin;
  status: 'active' | 'ended';
  created_at: string;
  ended_at?: string;
  duration_seconds?: number;
  /** Quota slot held while active, if the tenant has a limit. */
  lease_slot?: number;
  /**
   * The session id sealed as `sid` (docs/api.md §9): ≥ 128 random bits, base64url, never shown to
   * apps. Absent on sessions recorded before renewals existed.
   */
  sid?: string;
}

/** Where a session id points: the session's key and whose it is (docs/api.md §9). */
export interface SessionPointer {
  sid: string;
  room_name: string;
  room_sid?: string;
  agent_name: string;
  participant_identity: string;
  tenant_id: string;
  user_id: string;
  created_at: string;
}

export interface AuditRecord {
  tenant_id: string;
  target: string;
  version: number;
  actor: string;
  action: 'create' | 'update' | 'delete' | 'revoke';
  changed_fields: string[];
  old_token_fingerprint?: string;
  new_token_fingerprint?: string;
  at: string;
}

/** How a catalog server's credential is obtained (docs/api.md §6). */
export type CatalogAuthType = 'none' | 'static' | 'user_token' | 'oauth';

/** A catalog entry's `auth` as stored: secrets sealed with the storage keyring. */
export type StoredCatalogAuth =
  | { type: 'none' }
  | {
      type: 'static';
      /** Sealed, bound to (tenant, "", `catalog:<name>:token`). Cleared when `url` changes. */
      token_sealed?: string;
      token_fingerprint?: string;
    }
  | { type: 'user_token' }
  | {
      type: 'oauth';
      /** A pre-registered client, bound to its authorization server `issuer`. */
      client_id?: string;
      issuer?: string;
      client_secret_sealed?: string;
      client_secret_fingerprint?: string;
      scopes?: string[];
    };

/** One server of a tenant's catalog (`mcp_servers`, at most 7), as stored. */
export interface CatalogServer {
  name: string;
  /**
   * This entry's incarnation: new when the entry is added, or its auth type changes; kept by every
   * other write. A connection counts only for the incarnation it was made for, so an entry removed
   * and added again (same name, same URL) never revives a grant its removal's sweep missed.
   * Entries stored before incarnations have none; a connection stored before them has none
   * either, and counts for whichever entry has its name (as it did then).
   */
  entry_id?: string;
  display_name?: string;
  description?: string;
  icon_url?: string;
  url: string;
  transport?: Transport;
  allowed_tools?: string[];
  headers_sealed?: string;
  header_names?: string[];
  /** Webhook and SIP dispatches may carry this server's user credentials (default false, §1). */
  webhook: boolean;
  auth: StoredCatalogAuth;
}

/** A connection's status (docs/api.md §8). */
export type ConnectionStatus = 'connected' | 'not_connected' | 'pending' | 'needs_reauth';
/** Why a connection needs the user again. */
export type ReauthReason = 'invalid_grant' | 'expired' | 'resource_changed' | 'insufficient_scope';
/** A server's status in a session or renewal (docs/api.md §8). */
export type ServerStatus = 'ready' | 'not_connected' | 'needs_reauth' | 'unavailable';

/**
 * One user's credential for one catalog server (docs/api.md §8), keyed by (tenant, user, server).
 * Every secret is sealed with the storage keyring, bound to (tenant, user, `conn:<server>:<field>`).
 */
export interface ConnectionRecord {
  tenant_id: string;
  user_id: string;
  server: string;
  auth: 'oauth' | 'user_token';
  status: Exclude<ConnectionStatus, 'not_connected'>;
  reason?: ReauthReason;
  /** The canonical resource (MCP server URL) the credential was obtained for. */
  resource: string;
  /** The catalog entry's incarnation the credential was obtained for ({@link CatalogServer.entry_id}). */
  entry_id?: string;
  /** OAuth: the issuer and client the grant belongs to; refresh and revocation use them. */
  issuer?: string;
  client_id?: string;
  scopes?: string[];
  required_scopes?: string[];
  /** user_token: the user's token; oauth: the current access token. Sealed. */
  token_sealed?: string;
  token_fingerprint?: string;
  /** OAuth access token expiry, epoch seconds. */
  access_expires_at?: number;
  refresh_token_sealed?: string;
  /**
   * The access token came from a refresh a worker's `rejected` report forced (§9): rejected
   * again, the connection needs the user. Any other stored token clears it.
   */
  forced_refresh?: boolean;
  /** Incremented by each stored refresh: the `rt_version = n` condition of §8. */
  rt_version: number;
  /** The single refresher: a conditional update takes it (§8). */
  refresh_lock?: { owner: string; until: number };
  connected_at?: string;
  refreshed_at?: string;
  last_error?: string;
  version: number;
  updated_at: string;
}
