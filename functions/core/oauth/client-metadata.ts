/** The fields of a tenant's Client ID Metadata Document (CONTRACT §8). */
export interface ClientMetadataDocument {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: 'private_key_jwt';
  jwks_uri: string;
}

function base(publicBaseUrl: string): string {
  return publicBaseUrl.replace(/\/+$/, '');
}

/** The OAuth callback every authorization returns to: `<PUBLIC_BASE_URL>/v1/oauth/callback`. */
export function callbackUrl(publicBaseUrl: string): string {
  return `${base(publicBaseUrl)}/v1/oauth/callback`;
}

/** The public JWKS URL: `<PUBLIC_BASE_URL>/oauth/jwks.json`. */
export function jwksUrl(publicBaseUrl: string): string {
  return `${base(publicBaseUrl)}/oauth/jwks.json`;
}

/** A tenant's client id under CIMD: the URL of its own metadata document. */
export function clientMetadataUrl(publicBaseUrl: string, tenantId: string): string {
  return `${base(publicBaseUrl)}/oauth/tenants/${encodeURIComponent(tenantId)}/client-metadata.json`;
}

/** Builds `GET /oauth/tenants/{tenantId}/client-metadata.json`: one client per tenant. */
export function buildClientMetadataDocument(input: {
  publicBaseUrl: string;
  tenantId: string;
  tenantName: string;
}): ClientMetadataDocument {
  return {
    client_id: clientMetadataUrl(input.publicBaseUrl, input.tenantId),
    client_name: input.tenantName,
    redirect_uris: [callbackUrl(input.publicBaseUrl)],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: jwksUrl(input.publicBaseUrl),
  };
}
