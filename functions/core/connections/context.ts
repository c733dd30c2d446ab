import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadAppCaller } from '../caller.js';
import { ConditionFailedError, DomainError } from '../errors.js';
import type { Log } from '../log.js';
import type { CatalogServer, ConnectionRecord, TenantRecord, UserRecord } from '../model.js';
import type { ClientKeyring } from '../oauth/client-keys.js';
import type { DiscoveredServer } from '../oauth/discovery.js';
import type { MetadataCache, OAuthFetch } from '../oauth/ports.js';
import type { AuditStore, TenantStore, UserStore } from '../ports.js';
import type { SecretBox } from '../sealing.js';
import type { ConnectionStore } from './ports.js';

/** The configuration the connection service reads (docs/api.md §2). */
export interface ConnectionConfig {
  publicBaseUrl: string;
  oauthStateTtlSeconds: number;
  mcpTokenMinTtlSeconds: number;
  allowInsecureMcpUrls: boolean;
}

/** The store the connection service writes to: its own items, and the caller's tenant, user and audit. */
export type ConnectionServiceStore = ConnectionStore &
  Pick<TenantStore, 'getTenant'> &
  Pick<UserStore, 'getUser'> &
  Pick<AuditStore, 'putAudit'>;

/** Everything the connection service is built from. */
export interface ConnectionDeps {
  store: ConnectionServiceStore;
  secretBox: SecretBox;
  /** The safe fetch (§6 address rule, pinned address, no redirects, 5 s, 256 KiB). */
  fetch: OAuthFetch;
  /** Epoch ms. */
  clock: () => number;
  log: Log;
  config: ConnectionConfig;
  /** `OAUTH_CLIENT_KEYS`; without it `private_key_jwt` is not offered. */
  clientKeys?: ClientKeyring | undefined;
  discoveryCache?: MetadataCache<DiscoveredServer>;
  /** How long a waiting refresher polls between reads, ms (tests shorten it). */
  refreshPollMs?: number;
}

/** The authenticated app user and their tenant, both active. */
export interface Caller {
  user: UserRecord;
  tenant: TenantRecord;
}

/** Authorizations a user may start per minute (docs/api.md §8). */
export const AUTHORIZE_PER_MINUTE = 10;

/**
 * The caller as /v1/sessions decides it (docs/api.md §4): the user's record, in the token's
 * tenant, both active. Strongly consistent reads.
 */
export function loadCaller(
  deps: ConnectionDeps,
  principal: { sub: string; tenantId: string | undefined },
): Promise<Caller> {
  return loadAppCaller(deps.store, principal.sub, principal.tenantId);
}

/** The tenant's catalog entry `name` (404 `server_not_found`). */
export function catalogServer(tenant: TenantRecord, name: string): CatalogServer {
  const server = (tenant.mcp_servers ?? []).find((s) => s.name === name);
  if (server === undefined) throw new DomainError('server_not_found', 'The tenant has no such MCP server.');
  return server;
}

/** Refuses a call made for another `auth` type (409 `wrong_auth_type`). */
export function requireAuth(server: CatalogServer, type: 'oauth' | 'user_token'): void {
  if (server.auth.type !== type) {
    throw new DomainError('wrong_auth_type', `This call is for servers whose auth is ${type}.`);
  }
}

/** SHA-256 of a secret handle (state, result), base64url: what keys the table, never the handle itself. */
export function handleHash(handle: string): string {
  return createHash('sha256').update(handle, 'utf8').digest('base64url');
}

/** A new 256-bit one-time handle. */
export function newHandle(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time equality of two strings. */
export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** An ISO timestamp without milliseconds. */
export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The secret binding of a connection's field. */
export function connBinding(
  tenantId: string,
  userId: string,
  server: string,
  field: 'token' | 'refresh_token',
) {
  return { tenantId, userId, field: `conn:${server}:${field}` as const };
}

/** The secret binding of pending authorizations and results. */
export function stateBinding(tenantId: string, userId: string) {
  return { tenantId, userId, field: 'oauth:state' as const };
}

/** A new grant's fields beyond those {@link storeNewGrant} writes itself. */
export type GrantFields = Omit<
  ConnectionRecord,
  'tenant_id' | 'user_id' | 'server' | 'status' | 'rt_version' | 'connected_at' | 'version' | 'updated_at'
>;

/**
 * Stores a new grant of the user for `server` (`connected`, at `at`) over whatever connection is
 * there, retrying twice on a concurrent write, then 409 `version_conflict`. Its new `rt_version`
 * means a refresher still holding the old grant can no longer store over it (§8).
 */
export async function storeNewGrant(
  store: Pick<ConnectionStore, 'getConnection' | 'putConnection'>,
  owner: { tenantId: string; userId: string; server: string },
  at: string,
  fields: () => Promise<GrantFields>,
): Promise<ConnectionRecord> {
  const { tenantId, userId, server } = owner;
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await store.getConnection(tenantId, userId, server);
    const record: ConnectionRecord = {
      tenant_id: tenantId,
      user_id: userId,
      server,
      status: 'connected',
      ...(await fields()),
      rt_version: (existing?.rt_version ?? 0) + 1,
      connected_at: at,
      version: (existing?.version ?? 0) + 1,
      updated_at: at,
    };
    try {
      await store.putConnection(record, existing?.version ?? null);
      return record;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
  }
  throw new DomainError('version_conflict', 'The connection changed; retry.');
}
