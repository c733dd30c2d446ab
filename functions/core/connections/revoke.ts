import type { ConnectionRecord, TenantRecord } from '../model.js';
import { revoke } from '../oauth/flow.js';
import { flowDeps, recordedClient } from './clients.js';
import { type ConnectionDeps, connBinding } from './context.js';

/**
 * Revokes an OAuth grant at its recorded issuer when it offers revocation (RFC 7009), with the
 * refresh token when there is one, else the access token; never a fresh discovery (docs/api.md §8).
 * Best effort: a failure is logged (no value) and the grant may live on at the server until it expires.
 */
export async function revokeGrant(deps: ConnectionDeps, tenant: TenantRecord, record: ConnectionRecord) {
  const server = (tenant.mcp_servers ?? []).find((s) => s.name === record.server);
  if (record.auth !== 'oauth' || server === undefined || !record.issuer || !record.client_id) return;
  const client = await recordedClient(deps, tenant, server, {
    issuer: record.issuer,
    client_id: record.client_id,
  });
  if (client === undefined) return;
  const sealed = record.refresh_token_sealed ?? record.token_sealed;
  if (sealed === undefined) return;
  const hint = record.refresh_token_sealed === undefined ? 'access_token' : 'refresh_token';
  try {
    const value = await deps.secretBox.open(
      sealed,
      connBinding(
        record.tenant_id,
        record.user_id,
        record.server,
        hint === 'refresh_token' ? 'refresh_token' : 'token',
      ),
    );
    await revoke(client.as, client.registration, { value, hint }, await flowDeps(deps));
  } catch {
    // The grant is gone from our side either way; the authorization server may keep it until it expires.
    deps.log.warn('oauth revocation failed', { tenant_id: record.tenant_id, server: record.server });
  }
}

/**
 * Deletes one user's connection to `server` (and clears a pending authorization), then revokes
 * the grant it held. Deleted first, revoked after: a failed revocation never leaves a grant we
 * would still use. The deleted record, if there was one.
 */
export async function removeConnection(
  deps: ConnectionDeps,
  tenant: TenantRecord,
  userId: string,
  server: string,
): Promise<ConnectionRecord | undefined> {
  const t = tenant.tenant_id;
  const deleted = await deps.store.deleteConnection(t, userId, server);
  const pointer = await deps.store.getPendingPointer(t, userId, server);
  if (pointer !== undefined) await deps.store.clearPendingPointer(t, userId, server, pointer.state_hash);
  if (deleted !== undefined) await revokeGrant(deps, tenant, deleted);
  return deleted;
}
