import type { CatalogServer, StoredCatalogAuth } from './model.js';

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** A secret as the audit compares it: whether it is set, and its fingerprint (never its value). */
const secretOf = (sealed: string | undefined, fingerprint: string | undefined) =>
  sealed === undefined ? null : (fingerprint ?? 'set');

function authFields(auth: StoredCatalogAuth): Record<string, unknown> {
  switch (auth.type) {
    case 'static':
      return { type: auth.type, token: secretOf(auth.token_sealed, auth.token_fingerprint) };
    case 'oauth':
      return {
        type: auth.type,
        client_id: auth.client_id,
        issuer: auth.issuer,
        scopes: auth.scopes,
        client_secret: secretOf(auth.client_secret_sealed, auth.client_secret_fingerprint),
      };
    default:
      return { type: auth.type };
  }
}

const PLAIN_FIELDS = [
  'display_name',
  'description',
  'icon_url',
  'url',
  'transport',
  'allowed_tools',
  'webhook',
] as const;

/**
 * The audit's changed fields of a catalog write (docs/api.md §6): `mcp_servers.<name>` for an
 * entry added or removed, else `mcp_servers.<name>.<field>` (`auth.token`, `auth.client_secret`
 * and `headers` by fingerprint, names and presence; never a value). `headersGiven` names the
 * entries whose PUT sent headers: values may have changed although the names did not.
 */
export function changedCatalogFields(
  before: readonly CatalogServer[] | undefined,
  after: readonly CatalogServer[] | undefined,
  headersGiven: ReadonlySet<string>,
): string[] {
  const out: string[] = [];
  const old = new Map((before ?? []).map((s) => [s.name, s]));
  const now = new Map((after ?? []).map((s) => [s.name, s]));
  for (const name of old.keys()) if (!now.has(name)) out.push(`mcp_servers.${name}`);
  for (const [name, server] of now) {
    const was = old.get(name);
    if (was === undefined) {
      out.push(`mcp_servers.${name}`);
      continue;
    }
    for (const f of PLAIN_FIELDS) if (!same(was[f], server[f])) out.push(`mcp_servers.${name}.${f}`);
    const a = authFields(was.auth);
    const b = authFields(server.auth);
    for (const f of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!same(a[f], b[f])) out.push(`mcp_servers.${name}.auth.${f}`);
    }
    if (
      headersGiven.has(name) ||
      !same(was.header_names, server.header_names) ||
      (was.headers_sealed === undefined) !== (server.headers_sealed === undefined)
    ) {
      out.push(`mcp_servers.${name}.headers`);
    }
  }
  return out;
}
