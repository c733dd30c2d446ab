import type {
  CatalogAuthType,
  CatalogServer,
  ConnectionRecord,
  ConnectionStatus,
  ReauthReason,
} from '../model.js';
import type { PendingPointer } from './ports.js';

/** One item of `GET /v1/connections` (docs/api.md §8); never a token. */
export interface ConnectionView {
  server: string;
  display_name: string;
  description?: string;
  icon_url?: string;
  auth: CatalogAuthType;
  status: ConnectionStatus;
  reason?: ReauthReason;
  scopes?: string[];
  required_scopes?: string[];
  authorization_host?: string;
  connected_at?: string;
  updated_at?: string;
  /** `user_token` servers: whether a token is set, and its fingerprint. */
  token_set?: boolean;
  token_fingerprint?: string;
}

function host(issuer: string | undefined): string | undefined {
  if (issuer === undefined) return undefined;
  try {
    return new URL(issuer).host;
  } catch {
    return undefined;
  }
}

/** A connection's credential is usable only for the resource it was obtained for (§8). */
export function sameResource(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    x.hash = '';
    y.hash = '';
    return x.href === y.href;
  } catch {
    return false;
  }
}

/**
 * How a stored connection fits the catalog entry of its name: `other_entry` when it was made for
 * an earlier incarnation of the entry (removed and added again; a connection stored before
 * incarnations carries none and still fits), `resource_changed` when its credential was obtained
 * for another URL than the entry's current one, else `fits`.
 */
export function fitOf(
  server: CatalogServer,
  connection: ConnectionRecord,
): 'fits' | 'other_entry' | 'resource_changed' {
  if (connection.entry_id !== undefined && connection.entry_id !== server.entry_id) return 'other_entry';
  return sameResource(connection.resource, server.url) ? 'fits' : 'resource_changed';
}

/** The status a connection shows (docs/api.md §8), decided from the stored record and the catalog. */
export function statusOf(
  server: CatalogServer,
  connection: ConnectionRecord | undefined,
  now: number,
): { status: ConnectionStatus; reason?: ReauthReason } {
  if (server.auth.type === 'none' || server.auth.type === 'static') return { status: 'connected' };
  if (connection === undefined || connection.auth !== server.auth.type) return { status: 'not_connected' };
  const fit = fitOf(server, connection);
  if (fit === 'other_entry') return { status: 'not_connected' };
  if (fit === 'resource_changed') return { status: 'needs_reauth', reason: 'resource_changed' };
  if (connection.status === 'needs_reauth') {
    return { status: 'needs_reauth', ...(connection.reason ? { reason: connection.reason } : {}) };
  }
  if (
    connection.auth === 'oauth' &&
    connection.refresh_token_sealed === undefined &&
    connection.access_expires_at !== undefined &&
    connection.access_expires_at * 1000 <= now
  ) {
    return { status: 'needs_reauth', reason: 'expired' };
  }
  return { status: 'connected' };
}

/** The view of one catalog server for its user. */
export function viewOf(
  server: CatalogServer,
  connection: ConnectionRecord | undefined,
  pending: PendingPointer | undefined,
  now: number,
): ConnectionView {
  let { status, reason } = statusOf(server, connection, now);
  if (status === 'not_connected' && pending !== undefined && pending.expires_at > now) status = 'pending';
  const auth = server.auth;
  // What the tenant configured, plus what an MCP server's 403 insufficient_scope named (§9).
  const named =
    connection?.reason === 'insufficient_scope' && reason === 'insufficient_scope'
      ? connection.required_scopes
      : undefined;
  const configured = auth.type === 'oauth' ? auth.scopes : undefined;
  const required =
    named === undefined && configured === undefined
      ? undefined
      : [...new Set([...(configured ?? []), ...(named ?? [])])];
  const view: ConnectionView = {
    server: server.name,
    display_name: server.display_name ?? server.name,
    ...(server.description === undefined ? {} : { description: server.description }),
    ...(server.icon_url === undefined ? {} : { icon_url: server.icon_url }),
    auth: auth.type,
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(required === undefined ? {} : { required_scopes: required }),
  };
  if (connection !== undefined && connection.auth === auth.type) {
    if (connection.scopes !== undefined) view.scopes = connection.scopes;
    const h = host(connection.issuer);
    if (h !== undefined) view.authorization_host = h;
    if (connection.connected_at !== undefined) view.connected_at = connection.connected_at;
    view.updated_at = connection.updated_at;
    if (connection.auth === 'user_token') {
      view.token_set = connection.token_sealed !== undefined;
      if (connection.token_fingerprint !== undefined) view.token_fingerprint = connection.token_fingerprint;
    }
  }
  return view;
}
