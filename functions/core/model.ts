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
