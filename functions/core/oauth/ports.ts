/**
 * What the OAuth client domain needs from outside, and the plain records it hands back for the
 * caller to seal and store. Nothing here knows DynamoDB or HTTP routing.
 */

/** The fetch every OAuth request goes through (the adapter's safe fetch; oauth4webapi's `customFetch`). */
export type OAuthFetch = (
  url: string,
  init?: {
    method?: string;
    headers?: Record<string, string> | [string, string][] | Headers;
    body?: unknown;
    signal?: AbortSignal | null | undefined;
    redirect?: string;
  },
) => Promise<Response>;

/** Wall clock in milliseconds (injected so caches and expiries are testable). */
export type Clock = () => number;

/** A small cache of discovery results, keyed by MCP server URL. */
export interface MetadataCache<T> {
  get(key: string): { value: T; expiresAt: number } | undefined;
  set(key: string, entry: { value: T; expiresAt: number }): void;
}

/** In-process {@link MetadataCache} (one per warm function instance is enough: ≤ 1 h anyway). */
export class MemoryMetadataCache<T> implements MetadataCache<T> {
  readonly #entries = new Map<string, { value: T; expiresAt: number }>();
  get(key: string) {
    return this.#entries.get(key);
  }
  set(key: string, entry: { value: T; expiresAt: number }) {
    this.#entries.set(key, entry);
  }
}

/** How the client authenticates at the token endpoint. */
export type TokenEndpointAuthMethod =
  | 'private_key_jwt'
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'none';

/**
 * A client registration at one issuer. Stored per (tenant, issuer) for `dcr`; `client_secret` is
 * a secret (seal it at rest), never reused with another issuer.
 */
export interface ClientRegistration {
  kind: 'preregistered' | 'cimd' | 'dcr';
  issuer: string;
  client_id: string;
  client_secret?: string;
  /** Seconds since the epoch; 0 or absent: never expires (RFC 7591 §3.2.1). */
  client_secret_expires_at?: number;
  token_endpoint_auth_method: TokenEndpointAuthMethod;
}

/**
 * A pending authorization, for the caller to bind to (tenant, user, server, return_to), seal at
 * rest and use once. `code_verifier` is a secret.
 */
export interface PendingAuthorization {
  state: string;
  code_verifier: string;
  resource: string;
  issuer: string;
  client_id: string;
  redirect_uri: string;
  scopes: string[];
  /** Milliseconds since the epoch. */
  created_at: number;
  expires_at: number;
}

/** Tokens from a code exchange or refresh. `access_token` and `refresh_token` are secrets. */
export interface TokenSet {
  access_token: string;
  token_type: string;
  refresh_token?: string;
  /** Milliseconds since the epoch, when the server said `expires_in`. */
  expires_at?: number;
  scopes: string[];
  resource: string;
  issuer: string;
  client_id: string;
}
