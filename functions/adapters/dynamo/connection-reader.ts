import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionRecord } from '../../core/model.js';
import type { ConnectionReader } from '../../core/ports.js';
import { key } from '../schema.js';
import { type Item, TableClient } from './client.js';
import { defined, fields } from './fields.js';

/**
 * The partition of one user's connections: `CONN#<tenant>#<user>`, one item per server under
 * `SERVER#<server>` (the key of `keys.connection(tenant, user, server)`).
 */
export const connectionPartition = (tenantId: string, userId: string) => key('CONN', tenantId, userId);

/** A connection item as read, checked (key attributes and lock bookkeeping beyond the record dropped). */
export function connectionFromItem(item: Item): ConnectionRecord {
  const f = fields(item, 'connection');
  const lock = f.optionalObject('refresh_lock');
  const l = lock === undefined ? undefined : fields(lock, 'connection refresh_lock');
  return {
    tenant_id: f.string('tenant_id'),
    user_id: f.string('user_id'),
    server: f.string('server'),
    auth: f.oneOf('auth', ['oauth', 'user_token']),
    status: f.oneOf('status', ['connected', 'pending', 'needs_reauth']),
    ...defined(
      'reason',
      f.optionalOneOf('reason', ['invalid_grant', 'expired', 'resource_changed', 'insufficient_scope']),
    ),
    resource: f.string('resource'),
    ...defined('issuer', f.optionalString('issuer')),
    ...defined('client_id', f.optionalString('client_id')),
    ...defined('scopes', item.scopes === undefined ? undefined : f.strings('scopes')),
    ...defined(
      'required_scopes',
      item.required_scopes === undefined ? undefined : f.strings('required_scopes'),
    ),
    ...defined('token_sealed', f.optionalString('token_sealed')),
    ...defined('token_fingerprint', f.optionalString('token_fingerprint')),
    ...defined('access_expires_at', f.optionalNumber('access_expires_at')),
    ...defined('refresh_token_sealed', f.optionalString('refresh_token_sealed')),
    rt_version: f.number('rt_version'),
    ...defined(
      'refresh_lock',
      l === undefined ? undefined : { owner: l.string('owner'), until: l.number('until') },
    ),
    ...defined('connected_at', f.optionalString('connected_at')),
    ...defined('refreshed_at', f.optionalString('refreshed_at')),
    ...defined('last_error', f.optionalString('last_error')),
    version: f.number('version'),
    updated_at: f.string('updated_at'),
  };
}

/**
 * Reads a user's connections for dispatch (docs/api.md §8): one strongly consistent query of
 * the user's partition in the base table, never an index, since the result decides what is
 * sealed. The full connections store (connections.ts) writes these items.
 */
export class DynamoConnectionReader implements ConnectionReader {
  private readonly table: TableClient;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.table = new TableClient(options.client, options.tableName);
  }

  async listConnections(tenantId: string, userId: string): Promise<ConnectionRecord[]> {
    const items = await this.table.queryAll({
      partition: connectionPartition(tenantId, userId),
      sortPrefix: 'SERVER#',
      consistent: true,
    });
    return items.map(connectionFromItem);
  }
}
