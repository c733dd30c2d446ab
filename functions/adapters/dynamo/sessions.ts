import { createHash } from 'node:crypto';
import { ConditionFailedError } from '../../core/errors.js';
import type { SessionRecord } from '../../core/model.js';
import { type Page, type PageRequest, StoreConflict } from '../../core/ports.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { anyOf, eq, itemAbsent } from './expr.js';
import { defined, fields } from './fields.js';
import { conflict, putOr, seconds } from './records.js';

const sessionKey = (s: SessionRecord) =>
  keys.session(s.room_name, s.agent_name, s.participant_identity, s.room_sid);

/** The key of a session's active marker: its tenant's partition, its user, a digest of its key. */
const markerKey = (s: SessionRecord) => {
  const { pk, sk } = sessionKey(s);
  const digest = createHash('sha256')
    .update(JSON.stringify([pk, sk]))
    .digest('base64url');
  return keys.activeMarker(s.tenant_id, s.user_id, digest);
};

/**
 * The item of a session: under its room, listed under its tenant by `created_at` and, while
 * active, under its tenant's active sessions by user (the sparse index).
 */
export function sessionToItem(record: SessionRecord, retentionSeconds: number): Item {
  const active = record.status === 'active';
  return {
    ...record,
    ...sessionKey(record),
    gsi1pk: keys.tenantSessions(record.tenant_id),
    gsi1sk: `${record.created_at}#${record.room_name}`,
    ...(active
      ? {
          gsi2pk: keys.tenantActiveSessions(record.tenant_id),
          gsi2sk: keys.activeSessionSort(record.user_id, record.created_at),
        }
      : {}),
    [tableSchema.ttlAttribute]: seconds(Date.parse(record.created_at)) + retentionSeconds,
  };
}

/** A session record as read, checked (key attributes dropped). */
export function sessionFromItem(item: Item): SessionRecord {
  const f = fields(item, 'session');
  return {
    room_name: f.string('room_name'),
    ...defined('room_sid', f.optionalString('room_sid')),
    tenant_id: f.string('tenant_id'),
    user_id: f.string('user_id'),
    participant_identity: f.string('participant_identity'),
    agent_name: f.string('agent_name'),
    dispatch_id: f.nullableString('dispatch_id'),
    mode: f.oneOf('mode', ['api', 'token']),
    origin: f.oneOf('origin', ['session', 'webhook']),
    status: f.oneOf('status', ['active', 'ended']),
    created_at: f.string('created_at'),
    ...defined('ended_at', f.optionalString('ended_at')),
    ...defined('duration_seconds', f.optionalNumber('duration_seconds')),
    ...defined('lease_slot', f.optionalNumber('lease_slot')),
    ...defined('sid', f.optionalString('sid')),
  };
}

const sessionActive = () => eq('status', 'active');

/** Sessions: one item per (room[ incarnation], agent, participant). */
export class Sessions {
  constructor(
    private readonly table: TableClient,
    private readonly clock: () => number,
    private readonly retentionSeconds: number,
  ) {}

  /**
   * Writes the session. Rewriting an active session is allowed (a retry).
   * @throws ConditionFailedError `session_ended` if that session already ended.
   */
  async put(record: SessionRecord): Promise<void> {
    await putOr(
      this.table,
      sessionToItem(record, this.retentionSeconds),
      anyOf(itemAbsent(), sessionActive()),
      () => conflict(StoreConflict.sessionEnded, 'Session already ended.'),
    );
  }

  /** The session at this key (strongly consistent), any state, or undefined. */
  async get(ref: {
    room_name: string;
    agent_name: string;
    participant_identity: string;
    room_sid?: string;
  }): Promise<SessionRecord | undefined> {
    const item = await this.table.get(
      keys.session(ref.room_name, ref.agent_name, ref.participant_identity, ref.room_sid),
    );
    return item === undefined ? undefined : sessionFromItem(item);
  }

  /** Every session of the room (strongly consistent), any state. */
  async ofRoom(roomName: string): Promise<SessionRecord[]> {
    const items = await this.table.queryAll({
      partition: keys.roomPartition(roomName),
      sortPrefix: 'SESSION#',
      consistent: true,
    });
    return items.map(sessionFromItem);
  }

  /**
   * Ends an active session: `status` ended, `ended_at`, `duration_seconds` from `created_at`,
   * and off the active index. Ends it once: a second call changes nothing.
   * @returns the ended session, or undefined if it was not active (or does not exist).
   */
  async end(
    session: SessionRecord,
    endedAt: Date = new Date(this.clock()),
  ): Promise<SessionRecord | undefined> {
    const duration = Math.max(0, Math.round((endedAt.getTime() - Date.parse(session.created_at)) / 1000));
    const index = tableSchema.indexes.activeSessions;
    try {
      const after = await this.table.update(
        sessionKey(session),
        {
          set: [
            ['status', 'ended'],
            ['ended_at', endedAt.toISOString()],
            ['duration_seconds', duration],
          ],
          remove: [index.partitionKey, index.sortKey],
        },
        sessionActive(),
      );
      return after === undefined ? undefined : sessionFromItem(after);
    } catch (error) {
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  /** Sessions of a tenant, newest first (eventually consistent index). */
  async list(tenantId: string, page: PageRequest = {}): Promise<Page<SessionRecord>> {
    const result = await this.table.query(
      {
        index: tableSchema.indexes.byTenant.name,
        partition: keys.tenantSessions(tenantId),
        ascending: false,
      },
      page,
    );
    return { items: result.items.map(sessionFromItem), cursor: result.cursor };
  }

  /**
   * Writes the session's active marker (the record as it is when written) in its tenant's
   * base-table partition; kept as long as session items, so an abandoned one is ended by the
   * next revoke or suspension rather than forgotten.
   */
  async mark(record: SessionRecord): Promise<void> {
    await this.table.put({
      ...record,
      ...markerKey(record),
      status: 'active',
      [tableSchema.ttlAttribute]: seconds(Date.parse(record.created_at)) + this.retentionSeconds,
    });
  }

  /** Deletes the session's active marker. */
  async unmark(record: SessionRecord): Promise<void> {
    await this.table.delete(markerKey(record));
  }

  /**
   * The tenant's active markers, or one user's, read strongly consistent from the base table:
   * the sessions that may be live (docs/api.md §10). Not the sparse index gsi2, which is
   * eventually consistent in AWS and would let a session created a moment ago slip past a revoke.
   */
  async active(tenantId: string, userId?: string): Promise<SessionRecord[]> {
    const items = await this.table.queryAll({
      partition: keys.activeMarkerPartition(tenantId),
      consistent: true,
      ...(userId === undefined ? {} : { sortPrefix: keys.activeMarkerUserPrefix(userId) }),
    });
    return items.map(sessionFromItem);
  }
}
