import { randomBytes } from 'node:crypto';
import { fieldErrors } from './admin-access.js';
import { type CatalogServerBody, returnUrlProblem } from './catalog-input.js';
import { DomainError } from './errors.js';
import type { CatalogServer, StoredCatalogAuth } from './model.js';
import type { SecretBox } from './sealing.js';
import { checkMcpUrl, UnsafeMcpUrlError, type UrlGuardOptions } from './url-guard.js';

/** An OAuth URL an admin entered (a catalog entry's `issuer`) is refused (400 `unsafe_oauth_url`). */
export class UnsafeOAuthUrlError extends DomainError {
  readonly reason: string;
  constructor(reason: string) {
    super('unsafe_oauth_url', `The OAuth URL is not allowed: ${reason}.`, { details: { reason } });
    this.reason = reason;
  }
}

/** What {@link storedCatalog} seals with and checks URLs by. */
export interface CatalogSettingsDeps {
  secretBox: Pick<SecretBox, 'seal' | 'fingerprint'>;
  urlGuard: UrlGuardOptions;
}

/**
 * Checks an admin-entered issuer by the MCP URL rule (docs/api.md §6, §8: every URL fetched
 * during discovery obeys it) and returns it exactly as given: issuers are compared as exact
 * strings, and the URL parser would add a trailing slash. Throws {@link UnsafeOAuthUrlError}.
 */
export async function checkIssuerUrl(raw: string, guard: UrlGuardOptions): Promise<string> {
  try {
    await checkMcpUrl(raw, guard);
  } catch (err) {
    if (err instanceof UnsafeMcpUrlError) throw new UnsafeOAuthUrlError(err.reason);
    throw err;
  }
  // RFC 8414 §2: an issuer has no query and no fragment.
  if (raw.includes('?') || raw.includes('#'))
    throw new UnsafeOAuthUrlError('an issuer has no query or fragment');
  return raw;
}

/** The checked `oauth_return_urls` of a PUT (deduplicated, exactly as written), or 422. */
export function storedReturnUrls(input: string[] | null | undefined, allowInsecure: boolean): string[] {
  const urls = [...new Set(input ?? [])];
  const errors = urls.flatMap((url, i) => {
    const problem = returnUrlProblem(url, allowInsecure);
    return problem === null ? [] : [{ path: `oauth_return_urls.${i}`, message: problem }];
  });
  if (errors.length > 0) throw fieldErrors('The OAuth return URLs are invalid.', errors);
  return urls;
}

/** The 422 problems of a catalog its schema cannot see (the header rule runs in the schema). */
function shapeProblems(input: CatalogServerBody[], mcpName: string): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  input.forEach((entry, i) => {
    const at = `mcp_servers.${i}`;
    if (entry.name === mcpName)
      errors.push({ path: `${at}.name`, message: `is the name of mcp ("${mcpName}")` });
    else if (seen.has(entry.name)) errors.push({ path: `${at}.name`, message: 'is given twice' });
    seen.add(entry.name);
    const auth = entry.auth;
    if (auth.type === 'oauth') {
      if (auth.client_id !== undefined && auth.issuer === undefined) {
        errors.push({ path: `${at}.auth.issuer`, message: 'is required with client_id' });
      }
      if (auth.client_secret != null && auth.client_id === undefined) {
        errors.push({ path: `${at}.auth.client_secret`, message: 'needs a client_id' });
      }
    }
  });
  return errors;
}

/** A new catalog entry incarnation: 96 random bits. */
const newEntryId = () => randomBytes(12).toString('base64url');

/**
 * Builds a tenant's stored catalog from a PUT's `mcp_servers` (docs/api.md §6). Secrets are
 * write-only and matched with the stored entry of the same name: an omitted `token`,
 * `client_secret` or `headers` stays, `null` clears it. A kept static token and kept headers
 * never follow a changed `url` (they are cleared unless sent again); a kept client secret never
 * follows a changed `client_id` or `issuer`. Each secret is sealed bound to (tenant, "",
 * `catalog:<name>:<field>`).
 *
 * @throws ValidationError 422 with the failing fields (names, headers, client_id without issuer).
 * @throws UnsafeMcpUrlError 400 for a `url`, {@link UnsafeOAuthUrlError} 400 for an `issuer`.
 */
export async function storedCatalog(
  deps: CatalogSettingsDeps,
  input: CatalogServerBody[] | null | undefined,
  old: readonly CatalogServer[] | undefined,
  binding: { tenantId: string; mcpName: string },
): Promise<CatalogServer[]> {
  if (input === undefined || input === null || input.length === 0) return [];
  const errors = shapeProblems(input, binding.mcpName);
  if (errors.length > 0) throw fieldErrors('The MCP server catalog is invalid.', errors);
  // Every URL check before any sealing; independent DNS lookups run together.
  const urls = await Promise.all(input.map((e) => checkMcpUrl(e.url, deps.urlGuard)));
  const issuers = await Promise.all(
    input.map((e) =>
      e.auth.type === 'oauth' && e.auth.issuer !== undefined
        ? checkIssuerUrl(e.auth.issuer, deps.urlGuard)
        : undefined,
    ),
  );
  const seal = (value: string, name: string, field: 'token' | 'headers' | 'client_secret') =>
    deps.secretBox.seal(value, { tenantId: binding.tenantId, userId: '', field: `catalog:${name}:${field}` });

  const out: CatalogServer[] = [];
  for (const [i, entry] of input.entries()) {
    const url = urls[i]!;
    const before = old?.find((o) => o.name === entry.name);
    const sameUrl = before !== undefined && before.url === url;
    // The incarnation (model.ts): kept while the entry keeps its auth type, new otherwise.
    const entryId =
      before !== undefined && before.auth.type === entry.auth.type ? before.entry_id : newEntryId();
    const server: CatalogServer = {
      name: entry.name,
      ...(entryId === undefined ? {} : { entry_id: entryId }),
      url,
      webhook: entry.webhook ?? false,
      auth: { type: 'none' },
    };
    if (entry.display_name !== undefined) server.display_name = entry.display_name;
    if (entry.description !== undefined) server.description = entry.description;
    if (entry.icon_url !== undefined) server.icon_url = entry.icon_url;
    if (entry.transport !== undefined) server.transport = entry.transport;
    if (entry.allowed_tools !== undefined) server.allowed_tools = [...new Set(entry.allowed_tools)];

    const headers = entry.headers;
    if (headers && Object.keys(headers).length > 0) {
      server.headers_sealed = await seal(JSON.stringify(headers), entry.name, 'headers');
      server.header_names = Object.keys(headers).sort();
    } else if (headers === undefined && sameUrl && before.headers_sealed !== undefined) {
      server.headers_sealed = before.headers_sealed;
      server.header_names = before.header_names ?? [];
    }
    server.auth = await storedAuth(entry.auth, before?.auth, sameUrl, issuers[i], {
      seal: (value, field) => seal(value, entry.name, field),
      fingerprint: (value) => deps.secretBox.fingerprint(value),
    });
    out.push(server);
  }
  return out;
}

async function storedAuth(
  input: CatalogServerBody['auth'],
  before: StoredCatalogAuth | undefined,
  sameUrl: boolean,
  issuer: string | undefined,
  box: {
    seal: (value: string, field: 'token' | 'client_secret') => Promise<string>;
    fingerprint: (value: string) => string;
  },
): Promise<StoredCatalogAuth> {
  switch (input.type) {
    case 'none':
    case 'user_token':
      return { type: input.type };
    case 'static': {
      const auth: StoredCatalogAuth = { type: 'static' };
      if (typeof input.token === 'string') {
        auth.token_sealed = await box.seal(input.token, 'token');
        auth.token_fingerprint = box.fingerprint(input.token);
      } else if (input.token === undefined && sameUrl && before?.type === 'static' && before.token_sealed) {
        auth.token_sealed = before.token_sealed;
        if (before.token_fingerprint !== undefined) auth.token_fingerprint = before.token_fingerprint;
      }
      return auth;
    }
    case 'oauth': {
      const auth: Extract<StoredCatalogAuth, { type: 'oauth' }> = { type: 'oauth' };
      if (input.client_id !== undefined) auth.client_id = input.client_id;
      if (issuer !== undefined) auth.issuer = issuer;
      if (input.scopes !== undefined) auth.scopes = [...new Set(input.scopes)];
      const sameClient =
        before?.type === 'oauth' && before.client_id === auth.client_id && before.issuer === auth.issuer;
      if (typeof input.client_secret === 'string') {
        auth.client_secret_sealed = await box.seal(input.client_secret, 'client_secret');
        auth.client_secret_fingerprint = box.fingerprint(input.client_secret);
      } else if (
        input.client_secret === undefined &&
        auth.client_id !== undefined &&
        sameClient &&
        before.client_secret_sealed !== undefined
      ) {
        auth.client_secret_sealed = before.client_secret_sealed;
        if (before.client_secret_fingerprint !== undefined) {
          auth.client_secret_fingerprint = before.client_secret_fingerprint;
        }
      }
      return auth;
    }
  }
}
