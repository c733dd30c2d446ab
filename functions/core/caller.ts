import { isTenantId } from '@livekit-mcp-dispatch/contract';
import { DomainError } from './errors.js';
import type { TenantRecord, UserRecord } from './model.js';

/** The reads {@link loadAppCaller} needs (strongly consistent in the store). */
export interface CallerReads {
  getUser(tenantId: string, userId: string): Promise<UserRecord | undefined>;
  getTenant(tenantId: string): Promise<TenantRecord | undefined>;
}

/**
 * The app user a JWT names (docs/api.md §4, §8): the `sub` within the tenant its tenant claim
 * names (the same `sub` may be a user of several tenants, each its own record), both active.
 *
 * @throws DomainError `tenant_mismatch` (claim missing or not a tenant id), `user_not_found`
 *   (no such user in that tenant, or no such tenant), `tenant_suspended`, `user_suspended`.
 */
export async function loadAppCaller(
  store: CallerReads,
  sub: string,
  tenantClaim: string | undefined,
): Promise<{ user: UserRecord; tenant: TenantRecord }> {
  if (!isTenantId(tenantClaim)) {
    throw new DomainError('tenant_mismatch', "The token's tenant claim is missing or not a tenant id.");
  }
  const [user, tenant] = await Promise.all([store.getUser(tenantClaim, sub), store.getTenant(tenantClaim)]);
  if (user === undefined || tenant === undefined) {
    throw new DomainError('user_not_found', 'No user record exists for this token.');
  }
  if (tenant.status !== 'active') throw new DomainError('tenant_suspended', 'The tenant is suspended.');
  if (user.status !== 'active') throw new DomainError('user_suspended', 'The user is suspended.');
  return { user, tenant };
}

/** Who is calling: the verified JWT's subject, tenant claim and scopes. */
export interface Principal {
  sub: string;
  /** Value of the configured tenant claim, when it is a non-empty string. */
  tenantId: string | undefined;
  /** Union of a space-separated `scope` string and an `scp` array (or string). */
  scopes: Set<string>;
}

/** Verifies `Authorization: Bearer <JWT>` headers. */
export interface JwtVerifier {
  /**
   * Resolves the principal, or rejects with `AuthError` (401 `unauthenticated`: the token is
   * missing, malformed, unsigned by a served key, expired, …) or `AuthUnavailableError`
   * (503 `auth_unavailable`: the JWKS could not be fetched, so no verdict on the token).
   */
  verify(authorizationHeader: string | undefined): Promise<Principal>;
}
