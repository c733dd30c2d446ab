import { MalformedItemError } from '../../core/errors.js';
import type { CatalogServer, StoredCatalogAuth } from '../../core/model.js';
import type { Item } from './client.js';
import { defined, fields } from './fields.js';

const TRANSPORTS = ['streamable_http', 'sse'] as const;

/** A stored catalog entry's `auth`, checked. */
function authFromItem(raw: Item, kind: string): StoredCatalogAuth {
  const f = fields(raw, kind);
  const type = f.oneOf('type', ['none', 'static', 'user_token', 'oauth']);
  switch (type) {
    case 'none':
    case 'user_token':
      return { type };
    case 'static':
      return {
        type,
        ...defined('token_sealed', f.optionalString('token_sealed')),
        ...defined('token_fingerprint', f.optionalString('token_fingerprint')),
      };
    case 'oauth':
      return {
        type,
        ...defined('client_id', f.optionalString('client_id')),
        ...defined('issuer', f.optionalString('issuer')),
        ...defined('client_secret_sealed', f.optionalString('client_secret_sealed')),
        ...defined('client_secret_fingerprint', f.optionalString('client_secret_fingerprint')),
        ...defined('scopes', raw.scopes === undefined ? undefined : f.strings('scopes')),
      };
  }
}

/** The `mcp_servers` of a tenant item, each entry checked (docs/api.md §6), or undefined. */
export function catalogFromItem(item: Item): CatalogServer[] | undefined {
  const raw = item.mcp_servers;
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) throw new MalformedItemError('tenant', 'mcp_servers', 'a list');
  return raw.map((entry: unknown, i) => {
    const kind = `tenant mcp_servers[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new MalformedItemError('tenant', `mcp_servers[${i}]`, 'a map');
    }
    const e = entry as Item;
    const g = fields(e, kind);
    return {
      name: g.string('name'),
      ...defined('entry_id', g.optionalString('entry_id')),
      ...defined('display_name', g.optionalString('display_name')),
      ...defined('description', g.optionalString('description')),
      ...defined('icon_url', g.optionalString('icon_url')),
      url: g.string('url'),
      ...defined('transport', g.optionalOneOf('transport', TRANSPORTS)),
      ...defined('allowed_tools', e.allowed_tools === undefined ? undefined : g.strings('allowed_tools')),
      ...defined('headers_sealed', g.optionalString('headers_sealed')),
      ...defined('header_names', e.header_names === undefined ? undefined : g.strings('header_names')),
      webhook: g.boolean('webhook'),
      auth: authFromItem(g.object('auth'), `${kind} auth`),
    };
  });
}
