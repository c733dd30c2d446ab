import { fieldErrors } from './admin-access.js';
import type { McpBody } from './admin-input.js';
import type { StoredMcp } from './model.js';
import { mcpHeadersProblems, originOf } from './resolve.js';
import type { SecretBox } from './sealing.js';
import { checkMcpUrl, type UrlGuardOptions } from './url-guard.js';

/** What {@link storedMcp} seals with and checks URLs by. */
export interface McpSettingsDeps {
  secretBox: Pick<SecretBox, 'seal' | 'fingerprint'>;
  urlGuard: UrlGuardOptions;
}

/**
 * Builds the stored MCP settings from a PUT's `mcp`. Omitted `token`/`headers` keep the stored
 * ones, `null` clears them. Secrets are bound to the origin they are set for: kept secrets may
 * not follow this record's URL to another origin (422: send them again, or null).
 */
export async function storedMcp(
  deps: McpSettingsDeps,
  input: McpBody | null | undefined,
  old: StoredMcp | undefined,
  binding: { tenantId: string; userId: string },
  inheritedUrl: string | undefined,
): Promise<StoredMcp | undefined> {
  if (input === undefined || input === null) return undefined;
  const errors: { path: string; message: string }[] = [];
  const url = input.url === undefined ? undefined : await checkMcpUrl(input.url, deps.urlGuard);
  const origin = originOf(url ?? inheritedUrl);
  const out: StoredMcp = {};
  if (url !== undefined) out.url = url;
  if (input.transport !== undefined) out.transport = input.transport;
  if (input.allowed_tools !== undefined) out.allowed_tools = [...new Set(input.allowed_tools)];
  if (input.name !== undefined) out.name = input.name;

  const headers =
    input.headers === null || (input.headers && Object.keys(input.headers).length === 0)
      ? null
      : input.headers;
  if (headers) {
    for (const p of mcpHeadersProblems(headers)) {
      errors.push({ path: p.name === '' ? 'mcp.headers' : `mcp.headers.${p.name}`, message: p.message });
    }
  }
  const newSecret =
    (input.token !== undefined && input.token !== null) || (headers !== undefined && headers !== null);
  const keepToken = input.token === undefined && old?.token_sealed !== undefined;
  const keepHeaders = headers === undefined && old?.headers_sealed !== undefined;
  // A kept secret may stay only where it was set: same origin, or this record names no URL of its own.
  const mustMatch = url !== undefined || newSecret;
  const mismatch = old?.credentials_origin === undefined || old.credentials_origin !== origin;
  if (keepToken && mustMatch && mismatch) {
    errors.push({
      path: 'mcp.token',
      message: 'must be sent again (or null) when the token would go to another origin',
    });
  }
  if (keepHeaders && mustMatch && mismatch) {
    errors.push({
      path: 'mcp.headers',
      message: 'must be sent again (or null) when the headers would go to another origin',
    });
  }
  if (newSecret && origin === undefined) {
    errors.push({
      path: 'mcp.url',
      message: 'is required here or on the tenant to set a token or headers',
    });
  }
  if (errors.length > 0) throw fieldErrors('The MCP settings are invalid.', errors);

  if (input.token !== undefined && input.token !== null) {
    out.token_sealed = await deps.secretBox.seal(input.token, { ...binding, field: 'token' });
    out.token_fingerprint = deps.secretBox.fingerprint(input.token);
  } else if (keepToken) {
    out.token_sealed = old!.token_sealed;
    if (old!.token_fingerprint !== undefined) out.token_fingerprint = old!.token_fingerprint;
  }
  if (headers) {
    out.headers_sealed = await deps.secretBox.seal(JSON.stringify(headers), { ...binding, field: 'headers' });
    out.header_names = Object.keys(headers).sort();
  } else if (keepHeaders) {
    out.headers_sealed = old!.headers_sealed;
    out.header_names = old!.header_names ?? [];
  }
  if (out.token_sealed !== undefined || out.headers_sealed !== undefined) {
    out.credentials_origin = newSecret ? origin : old?.credentials_origin;
  }
  return out;
}
