import { createHash } from 'node:crypto';
import type { SessionPointer, SessionRecord } from '../../core/model.js';
import { keys, tableSchema } from '../schema.js';
import type { Item, TableClient } from './client.js';
import { anyOf, expiredAt, itemAbsent } from './expr.js';
import { defined, fields } from './fields.js';
import { seconds } from './records.js';

/** The item of a session id's pointer: kept as long as its session (`retentionSeconds`). */
export function pointerToItem(pointer: SessionPointer, retentionSeconds: number): Item {
  return {
    ...keys.sessionPointer(pointer.sid),
    ...pointer,
    [tableSchema.ttlAttribute]: seconds(Date.parse(pointer.created_at)) + retentionSeconds,
  };
}

/** A session id's pointer as read, checked. */
export function pointerFromItem(item: Item): SessionPointer {
  const f = fields(item, 'session pointer');
  return {
    sid: f.string('sid'),
    room_name: f.string('room_name'),
    ...defined('room_sid', f.optionalString('room_sid')),
    agent_name: f.string('agent_name'),
    participant_identity: f.string('participant_identity'),
    tenant_id: f.string('tenant_id'),
    user_id: f.string('user_id'),
    created_at: f.string('created_at'),
  };
}

/**
 * What worker renewals (docs/api.md §9) keep besides leases and rate windows: session-id pointers
 * and used assertion ids.
 */
export class Renewals {
  constructor(
    private readonly table: TableClient,
    private readonly clock: () => number,
    private readonly retentionSeconds: number,
  ) {}

  /** Writes the pointer `sid` → this session (before its dispatch is created). */
  async putPointer(session: SessionRecord & { sid: string }): Promise<void> {
    const pointer: SessionPointer = {
      sid: session.sid,
      room_name: session.room_name,
      ...(session.room_sid ? { room_sid: session.room_sid } : {}),
      agent_name: session.agent_name,
      participant_identity: session.participant_identity,
      tenant_id: session.tenant_id,
      user_id: session.user_id,
      created_at: session.created_at,
    };
    await this.table.put(pointerToItem(pointer, this.retentionSeconds));
  }

  /** Deletes a session id's pointer (absent is success). */
  async deletePointer(sid: string): Promise<void> {
    await this.table.delete(keys.sessionPointer(sid));
  }

  /** The pointer of `sid`, read strongly consistent, or undefined. */
  async pointer(sid: string): Promise<SessionPointer | undefined> {
    const item = await this.table.get(keys.sessionPointer(sid));
    return item === undefined ? undefined : pointerFromItem(item);
  }

  /**
   * Uses the assertion id `jti` of session `sid` once: a conditional put of its claim item, which
   * succeeds only when no live item holds it. The item lives until `untilSeconds` (the assertion's
   * `exp`), past which the assertion itself is refused, and then TTL removes it.
   * @returns false when the jti was used already.
   */
  async useJti(sid: string, jti: string, untilSeconds: number): Promise<boolean> {
    const digest = createHash('sha256')
      .update(JSON.stringify([sid, jti]))
      .digest('base64url');
    return this.table.putIf(
      { ...keys.assertionJti(digest), [tableSchema.ttlAttribute]: Math.ceil(untilSeconds) },
      anyOf(itemAbsent(), expiredAt(seconds(this.clock()))),
    );
  }
}
