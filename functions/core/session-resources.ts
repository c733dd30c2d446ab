import type { SessionRecord } from './model.js';
import type { DispatchStore, SessionResourceStore } from './ports.js';

/** Who holds a quota lease: the session it was taken for. */
export function holderOf(roomName: string, agentName: string, participant: string): string {
  return JSON.stringify([roomName, agentName, participant]);
}

/**
 * Frees what an ended session held: its quota lease and its dispatch claims, whoever holds
 * them (the room they guarded is gone). Call it once the session has been ended.
 */
export async function releaseSessionResources(store: SessionResourceStore, s: SessionRecord): Promise<void> {
  if (s.lease_slot !== undefined) {
    await store.releaseLease(
      s.tenant_id,
      s.lease_slot,
      holderOf(s.room_name, s.agent_name, s.participant_identity),
    );
  }
  // The session does not record which policy claimed it; dropping both shapes is harmless.
  const claimRoom = s.room_sid ?? s.room_name;
  for (const key of [
    { kind: 'dispatch', room: claimRoom, agent: s.agent_name },
    { kind: 'dispatch', room: claimRoom, agent: s.agent_name, participant: s.participant_identity },
  ] as const) {
    const claim = await store.getClaim(key);
    if (claim !== undefined) await store.releaseClaim(key, claim.owner);
  }
}

/**
 * Ends every active session of a room (`room_finished`) with its duration, releasing leases and
 * claims. Returns how many ended. Sessions of another incarnation (other sid) stay.
 */
export async function finishRoom(
  store: Pick<DispatchStore, 'roomSessions' | 'endSession' | 'unmarkSessionActive'> & SessionResourceStore,
  endedAt: Date,
  roomName: string,
  roomSid?: string,
): Promise<number> {
  const sessions = await store.roomSessions(roomName);
  let ended = 0;
  for (const s of sessions) {
    if (s.status !== 'active') continue;
    if (roomSid !== undefined && s.room_sid !== undefined && s.room_sid !== roomSid) continue;
    const done = await store.endSession(s, endedAt);
    if (done === undefined) continue;
    ended += 1;
    await releaseSessionResources(store, s);
    // The room is gone, so nothing of this session can be live: its marker may go.
    await store.unmarkSessionActive(s);
  }
  return ended;
}
