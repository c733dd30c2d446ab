import type {
  AuditRecord,
  CatalogServer,
  SessionRecord,
  StoredMcp,
  TenantRecord,
  UserRecord,
} from '../core/model.js';
import type { AuditView, SessionView, TenantView, UserView } from '../http/responses.js';

// Each view is typed by its response schema (functions/http/responses.ts): a field the schema
// lacks, or one it has that a view leaves out, fails tsc.

/** The response view of MCP settings: secrets only as `token_set`, fingerprint and header names. */
function mcpView(m: StoredMcp | undefined): TenantView['mcp'] {
  if (m === undefined) return null;
  return {
    url: m.url ?? null,
    transport: m.transport ?? null,
    allowed_tools: m.allowed_tools ?? null,
    name: m.name ?? null,
    token_set: m.token_sealed !== undefined,
    token_fingerprint: m.token_fingerprint ?? null,
    header_names: m.header_names ?? [],
  };
}

/** A catalog entry as the admin API shows it: secrets only as `*_set`, a fingerprint and header names. */
function catalogServerView(s: CatalogServer): TenantView['mcp_servers'][number] {
  const a = s.auth;
  return {
    name: s.name,
    display_name: s.display_name ?? null,
    description: s.description ?? null,
    icon_url: s.icon_url ?? null,
    url: s.url,
    transport: s.transport ?? null,
    allowed_tools: s.allowed_tools ?? null,
    header_names: s.header_names ?? [],
    webhook: s.webhook,
    auth:
      a.type === 'static'
        ? {
            type: a.type,
            token_set: a.token_sealed !== undefined,
            token_fingerprint: a.token_fingerprint ?? null,
          }
        : a.type === 'oauth'
          ? {
              type: a.type,
              client_id: a.client_id ?? null,
              issuer: a.issuer ?? null,
              client_secret_set: a.client_secret_sealed !== undefined,
              scopes: a.scopes ?? null,
            }
          : { type: a.type },
  };
}

/** A tenant as the admin API shows it. */
export function tenantView(t: TenantRecord): TenantView {
  return {
    tenant_id: t.tenant_id,
    name: t.name,
    mcp: mcpView(t.mcp),
    mcp_servers: (t.mcp_servers ?? []).map(catalogServerView),
    oauth_return_urls: t.oauth_return_urls ?? [],
    dispatch_policy: t.dispatch_policy,
    agent_names: t.agent_names,
    max_concurrent_sessions: t.max_concurrent_sessions ?? null,
    // A deleting tenant is answered as missing (core/admin.ts), so this never shows it.
    status: t.status === 'deleting' ? 'suspended' : t.status,
    webhook_dispatch: t.webhook_dispatch,
    sip_trunk_ids: t.sip_trunk_ids,
    version: t.version,
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

/** A user as the admin API shows it. */
export function userView(u: UserRecord): UserView {
  return {
    tenant_id: u.tenant_id,
    user_id: u.user_id,
    display_name: u.display_name ?? null,
    phone_numbers: u.phone_numbers,
    mcp: mcpView(u.mcp),
    status: u.status,
    version: u.version,
    created_at: u.created_at,
    updated_at: u.updated_at,
  };
}

/** A session as the admin API lists it. */
export function sessionView(s: SessionRecord): SessionView {
  return {
    room_name: s.room_name,
    user_id: s.user_id,
    participant_identity: s.participant_identity,
    agent_name: s.agent_name,
    dispatch_id: s.dispatch_id,
    mode: s.mode,
    origin: s.origin,
    status: s.status,
    created_at: s.created_at,
    ended_at: s.ended_at ?? null,
    duration_seconds: s.duration_seconds ?? null,
  };
}

/** An audit entry as the admin API lists it (the target without its incarnation suffix). */
export function auditView(a: AuditRecord): AuditView {
  return {
    target: a.target.split('#', 1)[0] ?? a.target,
    version: a.version,
    action: a.action,
    actor: a.actor,
    changed_fields: a.changed_fields,
    old_token_fingerprint: a.old_token_fingerprint ?? null,
    new_token_fingerprint: a.new_token_fingerprint ?? null,
    at: a.at,
  };
}
