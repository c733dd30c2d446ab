import type { DispatcherDeps, DispatchRequest, DispatchResult } from './dispatch-request.js';
import { createDispatchSaga } from './dispatch-saga.js';
import { createJoinPolicy, type JoinedParticipant, type JoinOutcome } from './join-policy.js';
import { finishRoom } from './session-resources.js';

export {
  DEFAULT_CLAIM_HOLD_SECONDS,
  type DispatcherDeps,
  DispatchInProgressError,
  type DispatchRequest,
  type DispatchResult,
  QuotaExceededError,
} from './dispatch-request.js';
export type { JoinedParticipant, JoinOutcome } from './join-policy.js';
export { holderOf, releaseSessionResources } from './session-resources.js';

/** One dispatch per (room, agent[, participant]); the sessions that follow from it. */
export interface Dispatcher {
  /** The dispatch saga (dispatch-saga.ts): claim, lease, dispatch, session, undone on failure. */
  dispatch(request: DispatchRequest): Promise<DispatchResult>;
  /** Applies docs/api.md §5 to a `participant_joined` event (join-policy.ts). */
  participantJoined(participant: JoinedParticipant): Promise<JoinOutcome>;
  /**
   * Ends every active session of a room (`room_finished`) with its duration, releasing leases
   * and claims. Returns how many ended. Sessions of another incarnation (other sid) stay.
   */
  finishRoom(roomName: string, roomSid?: string): Promise<number>;
}

/** Creates the {@link Dispatcher}. */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const dispatch = createDispatchSaga(deps);
  return {
    dispatch,
    participantJoined: createJoinPolicy(deps, dispatch),
    finishRoom: (roomName, roomSid) => finishRoom(deps.store, deps.clock(), roomName, roomSid),
  };
}
