import {
  array,
  boolean,
  discriminatedUnion,
  type infer as Infer,
  literal,
  maxLength,
  minLength,
  nullable,
  optional,
  refine,
  regex,
  strictObject,
  string,
} from 'zod/mini';
import { mcpFields, printable } from './mcp-input.js';
import { MAX_MCP_URL_LENGTH } from './url-guard.js';

/** Most catalog servers a tenant may list (docs/api.md §6: with `mcp`, 8 in a dispatch). */
export const MAX_CATALOG_SERVERS = 7;
/** Most `oauth_return_urls` a tenant may list (docs/api.md §6). */
export const MAX_OAUTH_RETURN_URLS = 10;
/** A catalog server's name (docs/api.md §6); also the `{server}` of the connection routes. */
export const CATALOG_SERVER_NAME = /^[a-z0-9_-]{1,32}$/;
/** Longest URL accepted for an icon, an issuer or a return URL. */
export const MAX_URL_LENGTH = 2048;

// RFC 6749 §3.3 scope-token: visible ASCII except `"` and `\`.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
// RFC 6749 §2.3.1 client_id / client_secret: VSCHAR (visible ASCII and space).
const VSCHAR = /^[\x20-\x7e]+$/;

const urlString = () => string().check(minLength(1), maxLength(MAX_URL_LENGTH));

/** An https URL without userinfo: shown to apps (an icon), never fetched by the functions. */
const httpsUrl = urlString().check(
  refine(
    (value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'https:' && url.username === '' && url.password === '' && url.host !== '';
      } catch {
        return false;
      }
    },
    { message: 'must be an https URL without userinfo' },
  ),
);

const secretString = (max: number) =>
  string().check(minLength(1), maxLength(max), regex(VSCHAR, 'must be printable ASCII'));

/**
 * A catalog entry's `auth` (docs/api.md §6). Secrets (`token`, `client_secret`) are write-only:
 * omitted keeps the stored one, `null` clears it.
 */
const catalogAuthSchema = discriminatedUnion('type', [
  strictObject({ type: literal('none') }),
  strictObject({ type: literal('static'), token: mcpFields.token }),
  strictObject({ type: literal('user_token') }),
  strictObject({
    type: literal('oauth'),
    client_id: optional(secretString(512)),
    // Checked by the URL rule (catalog-settings.ts: 400 `unsafe_oauth_url`), kept exactly as given:
    // an issuer is compared as an exact string (RFC 8414 §3.3, RFC 9207).
    issuer: optional(urlString()),
    client_secret: optional(nullable(secretString(4096))),
    scopes: optional(
      array(string().check(regex(SCOPE_TOKEN, 'must be an OAuth scope token'))).check(maxLength(50)),
    ),
  }),
]);

/** One entry of a tenant's `mcp_servers` as a PUT sends it (also the OpenAPI request schema). */
export const catalogServerSchema = strictObject({
  name: string().check(regex(CATALOG_SERVER_NAME, 'must be 1-32 characters [a-z0-9_-]')),
  display_name: optional(printable(200)),
  description: optional(printable(1000)),
  icon_url: optional(httpsUrl),
  // The URL guard does the real check (400 `unsafe_mcp_url`); the schema only bounds the size.
  url: string().check(minLength(1), maxLength(MAX_MCP_URL_LENGTH)),
  transport: mcpFields.transport,
  allowed_tools: mcpFields.allowed_tools,
  headers: mcpFields.headers,
  webhook: optional(boolean()),
  auth: catalogAuthSchema,
});

/** A tenant's `mcp_servers`: at most {@link MAX_CATALOG_SERVERS}. */
export const catalogServersSchema = array(catalogServerSchema).check(maxLength(MAX_CATALOG_SERVERS));

/**
 * A tenant's `oauth_return_urls`: at most {@link MAX_OAUTH_RETURN_URLS}; each is checked by
 * {@link returnUrlProblem} when the record is built (it depends on `ALLOW_INSECURE_MCP_URLS`).
 */
export const oauthReturnUrlsSchema = array(urlString()).check(maxLength(MAX_OAUTH_RETURN_URLS));

/** One validated catalog entry of a PUT body. */
export type CatalogServerBody = Infer<typeof catalogServerSchema>;

// Schemes a browser or OS gives a meaning of its own; never an app's private-use scheme.
const RESERVED_SCHEMES = new Set([
  'http',
  'https',
  'javascript',
  'data',
  'file',
  'blob',
  'about',
  'ftp',
  'ws',
  'wss',
]);
// RFC 8252 §7.1: a private-use scheme is a reverse domain name (at least one dot).
const REVERSE_DNS_SCHEME = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

/**
 * Why a URL may not be an OAuth return URL (docs/api.md §6), or `null` when it may. Allowed,
 * exactly as written (they are compared as exact strings): an `https` URL (App Links,
 * Universal Links, a web page) with a host and no userinfo; a private-use reverse-DNS scheme
 * (RFC 8252 §7.1, `com.example.app:/oauth`); `http://localhost` (or a loopback address) only
 * when `allowInsecure`. Never a fragment: the redirect appends a query.
 */
export function returnUrlProblem(raw: string, allowInsecure: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not contain userinfo';
  if (raw.includes('#')) return 'must not contain a fragment';
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme === 'https') return url.hostname === '' ? 'must name a host' : null;
  if (scheme === 'http') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
    if (!loopback) return 'must be https (http only for localhost in development)';
    return allowInsecure ? null : 'http://localhost is allowed only in development';
  }
  if (RESERVED_SCHEMES.has(scheme) || !REVERSE_DNS_SCHEME.test(scheme)) {
    return 'must be https or a private-use reverse-DNS scheme such as com.example.app:/oauth';
  }
  return null;
}
