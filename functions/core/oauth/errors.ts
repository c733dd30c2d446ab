import { DomainError } from '../errors.js';

/** Why discovery refused a server (CONTRACT §8), the `reason` of 502 `oauth_discovery_failed`. */
export type DiscoveryFailureReason =
  | 'unsafe_url'
  | 'resource_mismatch'
  | 'issuer_mismatch'
  | 'no_s256'
  | 'timeout'
  | 'bad_metadata';

/** Discovery refused the MCP server or its authorization server (502 `oauth_discovery_failed`). */
export class OAuthDiscoveryError extends DomainError {
  readonly reason: DiscoveryFailureReason;
  constructor(reason: DiscoveryFailureReason, message: string) {
    super('oauth_discovery_failed', message, { details: { reason } });
    this.reason = reason;
  }
}

/** The pre-registered client belongs to another authorization server (409 `oauth_issuer_mismatch`). */
export class OAuthIssuerMismatchError extends DomainError {
  constructor() {
    super('oauth_issuer_mismatch', 'The pre-registered client is bound to another authorization server.');
  }
}

/** No registration path works with this authorization server (409 `oauth_registration_unavailable`). */
export class OAuthRegistrationUnavailableError extends DomainError {
  readonly reason: 'no_path' | 'dcr_failed';
  constructor(reason: 'no_path' | 'dcr_failed', message: string) {
    super('oauth_registration_unavailable', message, { details: { reason } });
    this.reason = reason;
  }
}

/** Our codes for a failed callback (CONTRACT §8); never the authorization server's own text. */
export type CallbackErrorCode =
  | 'access_denied'
  | 'issuer_mismatch'
  | 'token_exchange_failed'
  | 'state_expired';

/** The authorization callback did not yield tokens; `code` is one of ours. */
export class OAuthCallbackError extends DomainError {
  override readonly code: CallbackErrorCode;
  /** The token endpoint refused our client itself (`invalid_client`), not the code. */
  readonly clientRefused: boolean;
  constructor(code: CallbackErrorCode, message: string, clientRefused = false) {
    super(code, message);
    this.code = code;
    this.clientRefused = clientRefused;
  }
}

/**
 * A refresh failed. `invalid_grant`: the authorization server no longer honours the refresh
 * token (the caller marks `needs_reauth` only if `rt_version` is unchanged); `invalid_client`: it
 * no longer knows or accepts our client (RFC 6749 §5.2; a forgotten DCR registration);
 * `unavailable`: it could not be reached or answered something else (retry later).
 */
export class OAuthRefreshError extends DomainError {
  readonly kind: 'invalid_grant' | 'invalid_client' | 'unavailable';
  constructor(kind: 'invalid_grant' | 'invalid_client' | 'unavailable') {
    super(
      kind === 'unavailable' ? 'mcp_auth_unavailable' : 'mcp_reauth_required',
      kind === 'unavailable'
        ? 'The authorization server could not refresh the token; retry later.'
        : kind === 'invalid_grant'
          ? 'The authorization server refused the refresh token.'
          : 'The authorization server refused our client.',
    );
    this.kind = kind;
  }
}

/** Revocation was offered but failed (the caller deletes the grant anyway, and may log this). */
export class OAuthRevocationError extends DomainError {
  constructor() {
    super('oauth_revocation_failed', 'The authorization server did not accept the revocation.');
  }
}
