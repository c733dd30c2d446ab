import { createHash } from 'node:crypto';
import type {
  ConnectionStore,
  OneTimeItem,
  PendingPointer,
  StoredClient,
} from '../../core/connections/ports.js';
import { ConditionFailedError } from '../../core/errors.js';
import type { ConnectionRecord, ReauthReason } from '../../core/model.js';
import { type Page, type PageRequest, StoreConflict } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { allOf, type Cond, eq, eqPath, itemAbsent, itemPresent, versionIs } from './expr.js';
import { defined, fields } from './fields.js';
import type { Leases } from './leases.js';
import { conflict, seconds } from './records.js';

const STRIP = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', tableSchema.ttlAttribute];

/** A connection record as read, checked (key attributes dropped). */
export function connectionFromItem(item: Item): ConnectionRecord {
  const f = fields(item, 'connection');
  const lock = f.optionalObject('refresh_lock');
  const lf = lock === undefined ? undefined : fields(lock, 'connection refresh_lock');
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
    ...defined('entry_id', f.optionalString('entry_id')),
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
    ...defined('forced_refresh', item.forced_refresh === undefined ? undefined : f.boolean('forced_refresh')),
    rt_version: f.number('rt_version'),
    ...defined(
      'refresh_lock',
      lf === undefined ? undefined : { owner: lf.string('owner'), until: lf.number('until') },
    ),
    ...defined('connected_at', f.optionalString('connected_at')),
    ...defined('refreshed_at', f.optionalString('refreshed_at')),
    ...defined('last_error', f.optionalString('last_error')),
    version: f.number('version'),
    updated_at: f.string('updated_at'),
  };
}

function oneTimeFromItem(item: Item): OneTimeItem {
  const f = fields(item, 'oauth one-time item');
  return {
    tenant_id: f.string('tenant_id'),
    user_id: f.string('user_id'),
    server: f.string('server'),
    expires_at: f.number('expires_at'),
    used: f.boolean('used'),
    sealed: f.string('sealed'),
  };
}

function plain(item: Item): Item {
  const out: Item = { ...item };
  for (const k of STRIP) delete out[k];
  return out;
}

/** `refresh_lock.owner = owner` (a nested path: each part its own placeholder). */
const lockOwnerIs =
  (owner: string): Cond =>
  (p) =>
    `${p.name('refresh_lock')}.${p.name('owner')} = ${p.value(owner)}`;
/** No lock, or one whose `until` has passed. */
const lockFree =
  (now: number): Cond =>
  (p) =>
    `attribute_not_exists(${p.name('refresh_lock')}) OR ${p.name('refresh_lock')}.${p.name('until')} < ${p.value(now)}`;

/** The GSI1 keys of a connection with `status`: the tenant-wide list (docs/api.md §6). */
const indexKeys = (r: Pick<ConnectionRecord, 'tenant_id' | 'user_id' | 'server'>, status: string) => ({
  gsi1pk: keys.tenantConnections(r.tenant_id),
  gsi1sk: keys.connectionSort(status, r.user_id, r.server),
});

const issuerHash = (issuer: string) => createHash('sha256').update(issuer, 'utf8').digest('base64url');

/** The DynamoDB {@link ConnectionStore} (docs/api.md §8). */
export class Connections implements ConnectionStore {
  constructor(
    private readonly table: TableClient,
    private readonly leases: Leases,
    private readonly clock: () => number,
  ) {}

  async listConnections(tenantId: string, userId: string): Promise<ConnectionRecord[]> {
    const items = await this.table.queryAll({
      partition: keys.connectionPartition(tenantId, userId),
      sortPrefix: keys.connectionPrefix(),
      consistent: true,
    });
    return items.map(connectionFromItem);
  }

  async getConnection(tenantId: string, userId: string, server: string) {
    const item = await this.table.get(keys.connection(tenantId, userId, server));
    return item === undefined ? undefined : connectionFromItem(item);
  }

  /** The tenant's connections across users, by status when given (GSI1: eventually consistent). */
  async listTenantConnections(
    tenantId: string,
    filter: { status?: ConnectionRecord['status'] },
    page?: PageRequest,
  ): Promise<Page<ConnectionRecord>> {
    const { items, cursor } = await this.table.query(
      {
        index: tableSchema.indexes.byTenant.name,
        partition: keys.tenantConnections(tenantId),
        ...(filter.status === undefined ? {} : { sortPrefix: keys.connectionStatusPrefix(filter.status) }),
      },
      page,
    );
    return { items: items.map(connectionFromItem), cursor };
  }

  async putConnection(record: ConnectionRecord, expectedVersion: number | null): Promise<void> {
    const item = {
      ...record,
      ...keys.connection(record.tenant_id, record.user_id, record.server),
      ...indexKeys(record, record.status),
    };
    try {
      await this.table.put(item, expectedVersion === null ? itemAbsent() : versionIs(expectedVersion));
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
      conflict(
        expectedVersion === null ? StoreConflict.alreadyExists : StoreConflict.versionConflict,
        'The connection changed.',
      );
    }
  }

  /** Deletes the connection (at `expectedVersion` when given); the record deleted, or undefined. */
  async deleteConnection(
    tenantId: string,
    userId: string,
    server: string,
    expectedVersion?: number,
  ): Promise<ConnectionRecord | undefined> {
    const key = keys.connection(tenantId, userId, server);
    const condition =
      expectedVersion === undefined ? itemPresent() : allOf(itemPresent(), eq('version', expectedVersion));
    try {
      const old = await this.table.delete(key, condition);
      return old === undefined ? undefined : connectionFromItem(old);
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
    // Refused: gone already (nothing to delete), or another version (a conflict).
    if ((await this.table.get(key)) === undefined) return undefined;
    return conflict(StoreConflict.versionConflict, 'Version is stale.');
  }

  async takeRefreshLock(record: ConnectionRecord, lock: { owner: string; until: number; now: number }) {
    try {
      const after = await this.table.update(
        keys.connection(record.tenant_id, record.user_id, record.server),
        { set: [['refresh_lock', { owner: lock.owner, until: lock.until }]] },
        allOf(itemPresent(), eq('rt_version', record.rt_version), lockFree(lock.now)),
      );
      return after === undefined ? undefined : connectionFromItem(after);
    } catch (error) {
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  async storeRefresh(
    record: ConnectionRecord,
    owner: string,
    changes: Parameters<ConnectionStore['storeRefresh']>[2],
  ): Promise<boolean> {
    const set: [string, unknown][] = [
      ['rt_version', record.rt_version + 1],
      ['status', 'connected'],
      ...Object.entries(indexKeys(record, 'connected')),
      ['updated_at', changes.refreshed_at],
    ];
    const remove = ['refresh_lock', 'reason', 'last_error'];
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) remove.push(k);
      else set.push([k, v]);
    }
    try {
      await this.table.update(
        keys.connection(record.tenant_id, record.user_id, record.server),
        { set, add: [['version', 1]], remove },
        // The §8 store condition: the grant we refreshed is still the stored one, and we hold the lock.
        allOf(itemPresent(), eq('rt_version', record.rt_version), lockOwnerIs(owner)),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  async markNeedsReauth(
    record: ConnectionRecord,
    reason: ReauthReason,
    options: { owner?: string; lastError?: string; requiredScopes?: string[]; now: string },
  ): Promise<boolean> {
    const parts = [itemPresent(), eq('rt_version', record.rt_version)];
    if (options.owner !== undefined) parts.push(lockOwnerIs(options.owner));
    try {
      await this.table.update(
        keys.connection(record.tenant_id, record.user_id, record.server),
        {
          set: [
            ['status', 'needs_reauth'],
            ...Object.entries(indexKeys(record, 'needs_reauth')),
            ['reason', reason],
            ['updated_at', options.now],
            ...(options.lastError === undefined
              ? []
              : ([['last_error', options.lastError]] as [string, unknown][])),
            ...(options.requiredScopes === undefined
              ? []
              : ([['required_scopes', options.requiredScopes]] as [string, unknown][])),
          ],
          add: [['version', 1]],
          remove: ['refresh_lock'],
        },
        allOf(...parts),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  async releaseRefreshLock(record: ConnectionRecord, owner: string): Promise<void> {
    try {
      await this.table.update(
        keys.connection(record.tenant_id, record.user_id, record.server),
        { remove: ['refresh_lock'] },
        allOf(itemPresent(), lockOwnerIs(owner)),
      );
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
  }

  async listPending(tenantId: string, userId: string): Promise<PendingPointer[]> {
    const items = await this.table.queryAll({
      partition: keys.connectionPartition(tenantId, userId),
      sortPrefix: keys.pendingPrefix(),
      consistent: true,
    });
    return items.map(pointerFromItem);
  }

  async getPendingPointer(tenantId: string, userId: string, server: string) {
    const item = await this.table.get(keys.pendingPointer(tenantId, userId, server));
    return item === undefined ? undefined : pointerFromItem(item);
  }

  async setPendingPointer(tenantId: string, userId: string, pointer: PendingPointer) {
    const old = await this.table.put({
      ...keys.pendingPointer(tenantId, userId, pointer.server),
      ...pointer,
      [tableSchema.ttlAttribute]: seconds(pointer.expires_at) + 3600,
    });
    return old === undefined ? undefined : pointerFromItem(old);
  }

  async clearPendingPointer(tenantId: string, userId: string, server: string, stateHash: string) {
    await this.table.deleteIf(keys.pendingPointer(tenantId, userId, server), eq('state_hash', stateHash));
  }

  async putOneTime(kind: 'state' | 'result', hash: string, item: OneTimeItem, ttlSeconds: number) {
    const key = kind === 'state' ? keys.oauthState(hash) : keys.oauthResult(hash);
    await this.table.put(
      { ...key, ...item, [tableSchema.ttlAttribute]: seconds(this.clock()) + ttlSeconds },
      itemAbsent(),
    );
  }

  async getOneTime(kind: 'state' | 'result', hash: string) {
    const item = await this.table.get(kind === 'state' ? keys.oauthState(hash) : keys.oauthResult(hash));
    return item === undefined ? undefined : oneTimeFromItem(item);
  }

  async takeOneTime(kind: 'state' | 'result', hash: string, condition: { now: number; userId?: string }) {
    const key = kind === 'state' ? keys.oauthState(hash) : keys.oauthResult(hash);
    // Single use: of all concurrent takers exactly one flips `used` (the condition is evaluated
    // on the item as it is, atomically), and only while it has not expired.
    const when = allOf(
      itemPresent(),
      eq('used', false),
      (p) => `${p.value(condition.now)} < ${p.name('expires_at')}`,
      ...(condition.userId === undefined ? [] : [eq('user_id', condition.userId)]),
    );
    try {
      await this.table.update(key, { set: [['used', true]] }, when);
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  async getClient(tenantId: string, issuer: string): Promise<StoredClient | undefined> {
    const item = await this.table.get(keys.oauthClient(tenantId, issuerHash(issuer)));
    if (item === undefined || item.issuer !== issuer) return undefined;
    return plain(item) as unknown as StoredClient;
  }

  async putClient(client: StoredClient): Promise<void> {
    await this.table.put({ ...client, ...keys.oauthClient(client.tenant_id, issuerHash(client.issuer)) });
  }

  async forgetDcrClient(tenantId: string, issuer: string, clientId: string): Promise<boolean> {
    try {
      await this.table.update(
        keys.oauthClient(tenantId, issuerHash(issuer)),
        { remove: ['dcr'] },
        allOf(eq('issuer', issuer), eqPath(['dcr', 'client_id'], clientId)),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailedError) return false;
      throw error;
    }
  }

  hitAuthorizeRate(tenantId: string, userId: string, limitPerMinute: number) {
    return this.leases.hitRate(tenantId, userId, limitPerMinute, keys.authorizeRateWindow(tenantId, userId));
  }
}

function pointerFromItem(item: Item): PendingPointer {
  const f = fields(item, 'pending pointer');
  return {
    server: f.string('server'),
    state_hash: f.string('state_hash'),
    expires_at: f.number('expires_at'),
  };
}
