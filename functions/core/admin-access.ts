import { isUserId, MAX_USER_ID, TENANT_ID } from '@livekit-mcp-dispatch/contract';
import { DomainError, ValidationError } from './errors.js';
import { addLogContext } from './log.js';
import type { UserRecord } from './model.js';
import type { AdminStore } from './ports.js';

/** Scope of a tenant admin (with the tenant claim naming the tenant). */
export const ADMIN_SCOPE = 'dispatch:admin';
/** Scope of an operator who administers every tenant. */
export const SUPERADMIN_SCOPE = 'dispatch:superadmin';

/** Tenant fields only a superadmin may set (docs/api.md §6). */
export const SUPERADMIN_FIELDS = [
  'agent_names',
  'max_concurrent_sessions',
  'status',
  'webhook_dispatch',
  'sip_trunk_ids',
] as const;

/** Who calls the admin API. */
export interface AdminActor {
  sub: string;
  superadmin: boolean;
  /** The tenant a tenant admin administers; unset for a superadmin without the claim. */
  tenantId: string | undefined;
}

/** 404 `tenant_not_found` / `user_not_found`. */
export function notFound(code: 'tenant_not_found' | 'user_not_found'): DomainError {
  return new DomainError(code, code === 'tenant_not_found' ? 'No such tenant.' : 'No such user.');
}

/** 422 `invalid_request` listing the failing fields. */
export function fieldErrors(message: string, errors: { path: string; message: string }[]): ValidationError {
  return new ValidationError(message, { details: { errors } });
}

/** The actor of a verified token, or 403 `forbidden` when it has no admin scope (or no tenant). */
export function actorOf(principal: { sub: string; scopes: Set<string>; tenantId?: string }): AdminActor {
  const superadmin = principal.scopes.has(SUPERADMIN_SCOPE);
  if (!superadmin && !(principal.scopes.has(ADMIN_SCOPE) && principal.tenantId !== undefined)) {
    throw new DomainError('forbidden', 'The token lacks the dispatch:admin scope or a tenant.');
  }
  return { sub: principal.sub, superadmin, tenantId: principal.tenantId };
}

/**
 * Checks that the actor may reach this tenant: 404 for a tenant the caller may not see, exactly
 * as for one that does not exist. Only a superadmin creating a tenant learns why an id is refused.
 */
export function checkTenantAccess(
  actor: AdminActor,
  tenantId: string,
  options: { creating?: boolean } = {},
): void {
  if (!actor.superadmin && actor.tenantId !== tenantId) throw notFound('tenant_not_found');
  addLogContext({ tenant_id: tenantId });
  if (!TENANT_ID.test(tenantId)) {
    if (options.creating && actor.superadmin) {
      throw fieldErrors('The tenant id is invalid.', [
        { path: 'tenantId', message: 'must match [a-z0-9][a-z0-9-]{1,62}' },
      ]);
    }
    throw notFound('tenant_not_found');
  }
}

/** Checks a user id from a path: 422 when it is being written, else 404 (no such user). */
export function checkUserId(userId: string, options: { writing?: boolean } = {}): void {
  if (isUserId(userId)) return;
  if (options.writing) {
    throw fieldErrors('The user id is invalid.', [
      { path: 'userId', message: `must be 1-${MAX_USER_ID} printable characters, no spaces or controls` },
    ]);
  }
  throw notFound('user_not_found');
}

/** 403 `field_requires_superadmin` when a tenant admin's raw tenant body names a superadmin-only field. */
export function checkSuperadminFields(actor: AdminActor, raw: Record<string, unknown>): void {
  const restricted = SUPERADMIN_FIELDS.filter((f) => Object.hasOwn(raw, f));
  if (!actor.superadmin && restricted.length > 0) {
    throw new DomainError(
      'field_requires_superadmin',
      `Only a superadmin may set ${restricted.join(', ')}.`,
      {
        details: { fields: restricted },
      },
    );
  }
}

/** The resource path of a tenant below `/v1/admin/` (also its audit target). */
export function tenantPath(tenantId: string): string {
  return `tenants/${tenantId}`;
}

/** The resource path of a user below `/v1/admin/` (also its audit target). */
export function userPath(tenantId: string, userId: string): string {
  return `tenants/${tenantId}/users/${encodeURIComponent(userId)}`;
}

/** The user of this tenant, or undefined: a user of another tenant is treated as absent. */
export async function sameTenantUser(
  store: Pick<AdminStore, 'getUser'>,
  tenantId: string,
  userId: string,
): Promise<UserRecord | undefined> {
  const user = await store.getUser(tenantId, userId);
  return user?.tenant_id === tenantId ? user : undefined;
}
