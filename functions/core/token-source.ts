import type { OAuthTokenSource } from './connections/ports.js';
import type { SecretBox } from './sealing.js';

/**
 * The simplest {@link OAuthTokenSource}: the connection's stored access token, opened, while it
 * has not expired (`ready` with its `expires_at`); past its expiry `needs_reauth` (`expired`).
 * It never refreshes: the refreshing source (docs/api.md §8) replaces it where the OAuth client
 * is composed. A token stored without an expiry is used as it is.
 */
export function createStoredTokenSource(deps: {
  secretBox: Pick<SecretBox, 'open'>;
  clock: () => Date;
}): OAuthTokenSource {
  return {
    async accessToken({ connection }) {
      if (connection.token_sealed === undefined) return { status: 'not_connected' };
      const now = Math.floor(deps.clock().getTime() / 1000);
      const expiresAt = connection.access_expires_at;
      if (expiresAt !== undefined && expiresAt <= now) return { status: 'needs_reauth', reason: 'expired' };
      const token = await deps.secretBox.open(connection.token_sealed, {
        tenantId: connection.tenant_id,
        userId: connection.user_id,
        field: `conn:${connection.server}:token`,
      });
      return { status: 'ready', token, ...(expiresAt === undefined ? {} : { expires_at: expiresAt }) };
    },
  };
}
