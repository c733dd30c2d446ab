import type * as oauth from 'oauth4webapi';
import type { DiscoveredServer } from './discovery.js';
import { OAuthIssuerMismatchError } from './errors.js';

/** Which §8 registration a discovered server gets (docs/api.md §8), decided without registering. */
export type RegistrationPath = 'preregistered' | 'cimd' | 'dcr' | 'unavailable';

/** The token endpoint auth methods the server lists (RFC 8414 §2: absent means client_secret_basic). */
export function authMethods(as: oauth.AuthorizationServer): string[] {
  return as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
}

/**
 * The registration order of §8: the tenant's pre-registered client (its issuer must be the
 * discovered one, else {@link OAuthIssuerMismatchError}); the Client ID Metadata Document when the
 * server supports it, our document URL is https and it lists `private_key_jwt` or `none`; DCR
 * when it has a registration endpoint; else none. The one place this order is decided: register()
 * follows it, and the admin's discovery dry run reports it.
 */
export function registrationPath(
  server: DiscoveredServer,
  input: { preregistered?: { issuer: string }; clientMetadataUrl?: string },
): RegistrationPath {
  const as = server.authorizationServer;
  if (input.preregistered !== undefined) {
    if (input.preregistered.issuer !== server.issuer) throw new OAuthIssuerMismatchError();
    return 'preregistered';
  }
  const methods = authMethods(as);
  if (
    as.client_id_metadata_document_supported === true &&
    input.clientMetadataUrl?.startsWith('https://') &&
    (methods.includes('private_key_jwt') || methods.includes('none'))
  ) {
    return 'cimd';
  }
  return as.registration_endpoint !== undefined ? 'dcr' : 'unavailable';
}
