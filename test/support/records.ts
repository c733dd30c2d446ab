import type { SessionRecord, TenantRecord, UserRecord } from '../../functions/core/model.js';

/** When the test records were written: 2026-11-29T12:00:00Z. */
export const RECORDS_T0 = Date.parse('2026-11-29T12:00:00Z');
const at = new Date(RECORDS_T0).toISOString();

/** A tenant record (id `acme`, active, no MCP) with `overrides`. */
export function tenantRecord(overrides: Partial<TenantRecord> = {}): TenantRecord {
  return {
    tenant_id: 'acme',
    name: 'Acme',
    dispatch_policy: 'per_room',
    agent_names: [],
    status: 'active',
    webhook_dispatch: false,
    sip_trunk_ids: [],
    version: 1,
    created_at: at,
    updated_at: at,
    ...overrides,
  };
}

/** A user record of `tenantId` (id `alice`, active, no phone numbers) with `overrides`. */
export function userRecord(tenantId: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    tenant_id: tenantId,
    user_id: 'alice',
    phone_numbers: [],
    status: 'active',
    version: 1,
    created_at: at,
    updated_at: at,
    ...overrides,
  };
}

/** An active api-mode session of alice in tenant acme, with `overrides`. */
export function sessionRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    room_name: 'lk-mcp-acme-room',
    tenant_id: 'acme',
    user_id: 'alice',
    participant_identity: 'alice',
    agent_name: 'mcp-agent',
    dispatch_id: 'AD_1',
    mode: 'api',
    origin: 'session',
    status: 'active',
    created_at: at,
    ...overrides,
  };
}
