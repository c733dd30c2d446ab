import type { SessionRecord } from './model.js';
import type { AdminStore, RoomApi } from './ports.js';
import { releaseSessionResources } from './session-resources.js';

/** Sessions ended at once (each ends its record, deletes its room, removes its marker). */
export const END_SESSIONS_PARALLEL = 8;

/**
 * When the request's bulk work must stop (epoch ms of the service clock), so that it answers a
 * 202 with its progress before its invocation is killed; the next request resumes.
 */
export type Deadline = number;

/** How far ending a set of sessions got before the deadline. */
export interface EndProgress {
  ended: number;
  done: boolean;
}

/** What ending sessions needs: the store's session writes, LiveKit's DeleteRoom, the clock. */
export interface SessionEnderDeps {
  store: Pick<
    AdminStore,
    | 'endSession'
    | 'unmarkSessionActive'
    | 'activeSessionsOfUser'
    | 'releaseLease'
    | 'getClaim'
    | 'releaseClaim'
  >;
  livekit: RoomApi;
  clock: () => Date;
}

/**
 * Ending sessions for revoke, suspension and deletes (docs/api.md §6, §10), in bounded parallel
 * with per-session progress recorded first, so a retry resumes where a deadline stopped it.
 */
export function createSessionEnder(deps: SessionEnderDeps) {
  const { store, livekit, clock } = deps;
  const pastDeadline = (deadline: Deadline) => clock().getTime() >= deadline;

  /**
   * Ends these sessions (active markers), at most {@link END_SESSIONS_PARALLEL} at a time, each
   * one as: its record marked ended first (the progress a retry sees), then its room deleted,
   * its lease and claims released, and last its marker removed. A request stopped by its
   * deadline, or by a LiveKit failure, leaves every session it did not finish still marked, so
   * a retry resumes with those; a retry of one whose record is already ended still deletes the
   * room. Starts no session once the deadline has passed.
   */
  async function endSessions(sessions: SessionRecord[], deadline: Deadline): Promise<EndProgress> {
    const queue = [...sessions];
    const rooms = new Map<string, Promise<void>>();
    // One DeleteRoom per room, however many of its sessions are ended here.
    const deleteRoom = (room: string) => {
      let pending = rooms.get(room);
      if (pending === undefined) {
        pending = livekit.deleteRoom(room);
        rooms.set(room, pending);
      }
      return pending;
    };
    let ended = 0;
    let stopped = false;
    const at = clock();
    const worker = async () => {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
        if (pastDeadline(deadline)) {
          stopped = true;
          return;
        }
        await store.endSession(s, at);
        await deleteRoom(s.room_name);
        // Release what room_finished would have: that event now finds the session ended and
        // leaves it alone, so without this the tenant's lease stays taken until it expires.
        await releaseSessionResources(store, s);
        await store.unmarkSessionActive(s);
        // Counted when this request finished it: a retry after a failed room deletion counts it.
        ended += 1;
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(END_SESSIONS_PARALLEL, queue.length) }, worker),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    return { ended, done: !stopped };
  }

  async function endUserSessions(tenantId: string, userId: string, deadline: Deadline): Promise<EndProgress> {
    return endSessions(await store.activeSessionsOfUser(tenantId, userId), deadline);
  }

  return { endSessions, endUserSessions };
}
