import { refreshUrlOf } from './config.js';
import {
  DEFAULT_CLAIM_HOLD_SECONDS,
  DEFAULT_CREDENTIALS_REFRESH_SECONDS,
  type DispatcherDeps,
  DispatchInProgressError,
  type DispatchRequest,
  type DispatchResult,
  errorName,
  newSessionId,
  QuotaExceededError,
  sha256Hex,
} from './dispatch-request.js';
import { DomainError, KeyTooLongError, LiveKitUnavailableError } from './errors.js';
import { addLogContext } from './log.js';
import type { SessionRecord } from './model.js';
import type { ClaimRef } from './ports.js';
import { holderOf } from './session-resources.js';

/**
 * Seals the metadata, claims (room, agent[, participant]), takes a lease when the tenant has a
 * limit, creates the dispatch (api mode) and records the session (both modes).
 *
 * @throws QuotaExceededError when every lease is taken (the claim is released).
 * @throws DomainError `user_suspended` / `tenant_suspended` when a revoke, suspension or delete
 *   raced this dispatch (the fence): the dispatch and session are undone first.
 * @throws LiveKitUnavailableError when LiveKit failed; any dispatch this attempt may have
 *   created is removed first, then the claim and the lease are released.
 */
export type DispatchSaga = (request: DispatchRequest) => Promise<DispatchResult>;

/** What a failed saga's undo steps share: whether a dispatch of this attempt may still exist. */
interface UndoState {
  dispatchMayRemain: boolean;
}

type Undo = (state: UndoState) => Promise<void>;

/**
 * Creates the dispatch saga. Each step pushes its undo once it has succeeded (or, for a LiveKit
 * call whose failure may hide a success, before it runs); on failure the undos run in reverse.
 * The last step is a fence (write-then-check): the user and tenant are read again after the
 * session's active marker is written, and the session undoes itself when either has changed.
 *
 * Ordering: the session is ended before its dispatch is removed, and the dispatch removed before
 * the claim is released. A released claim lets the next attempt dispatch at once, so it must not
 * be released while a dispatch of this attempt may exist: when removing it fails, the claim is
 * kept with its hold ended instead, and the next attempt takes it over and lists the room's
 * dispatches before creating one.
 */
export function createDispatchSaga(deps: DispatcherDeps): DispatchSaga {
  const { store, livekit, sealer, clock, log, config } = deps;
  const holdSeconds = deps.claimHoldSeconds ?? DEFAULT_CLAIM_HOLD_SECONDS;

  async function quietly(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      log.warn(`${what} failed`, { error: errorName(err) });
    }
  }

  /**
   * Removes the dispatches this attempt may have created (a timed-out CreateDispatch may still
   * have succeeded) or adopted. Matches the exact sealed metadata (or the adopted id), so
   * another participant's dispatch of the same agent is never touched. Returns false when
   * LiveKit could not be asked.
   */
  async function removeOwnDispatches(
    roomName: string,
    agentName: string,
    metadata: string,
    adoptedId: string | undefined,
  ): Promise<boolean> {
    try {
      const existing = await livekit.listDispatches(roomName);
      for (const d of existing) {
        const ours = d.id === adoptedId || (d.agentName === agentName && d.metadata === metadata);
        if (ours) await livekit.deleteDispatch(d.id, roomName);
      }
      return true;
    } catch (err) {
      log.error('dispatch cleanup failed', { room: roomName, agent: agentName, error: errorName(err) });
      return false;
    }
  }

  /** The fence's verdict: the error this start must answer with, or undefined to go on. */
  async function fenceCheck(req: DispatchRequest): Promise<DomainError | undefined> {
    const [tenant, user] = await Promise.all([
      store.getTenant(req.tenant.tenant_id),
      store.getUser(req.tenant.tenant_id, req.userId),
    ]);
    if (tenant === undefined || tenant.status !== 'active') {
      return new DomainError('tenant_suspended', 'The tenant is suspended.');
    }
    if (user === undefined || user.tenant_id !== req.tenant.tenant_id || user.status !== 'active') {
      return new DomainError('user_suspended', 'The user is suspended.');
    }
    return undefined;
  }

  return async function dispatch(req) {
    addLogContext({ tenant_id: req.tenant.tenant_id, room: req.roomName });
    const participant = req.perParticipant ? req.participantIdentity : undefined;
    const claimRef: ClaimRef = {
      kind: 'dispatch',
      room: req.roomSid || req.roomName,
      agent: req.agentName,
      ...(participant === undefined ? {} : { participant }),
    };
    // An id too long for the claim's key names nothing of ours; refused before anything is written.
    if (!req.freshRoom && !store.fits(claimRef)) throw new KeyTooLongError();
    const sid = newSessionId();
    const sealed = await sealer.seal({
      agentName: req.agentName,
      userId: req.userId,
      tenantId: req.tenant.tenant_id,
      roomName: req.roomName,
      participantIdentity: req.participantIdentity,
      mcpServers: req.mcpServers,
      ttlSeconds: config.metadataTtlSeconds,
      ...(req.client === undefined ? {} : { client: req.client }),
      sid,
      refresh: {
        url: refreshUrlOf({ publicBaseUrl: config.publicBaseUrl ?? 'http://localhost:8787' }),
        seconds: config.credentialsRefreshSeconds ?? DEFAULT_CREDENTIALS_REFRESH_SECONDS,
      },
    });
    const metadataHash = await sha256Hex(sealed.metadata);

    const undos: Undo[] = [];
    const state: UndoState = { dispatchMayRemain: false };
    const fail = async (err: unknown): Promise<never> => {
      for (const undo of undos.reverse()) await undo(state);
      throw err;
    };

    // Step 1, the claim. A fresh random room name (the session API's) guards itself: nobody else
    // knows it until the participant token is handed out, the webhook claims by room sid and never
    // dispatches in a room with a session record, and repeats of one Idempotency-Key are serialised
    // by that key's own claim. A claim would guard nothing and cost two sequential writes.
    const claim = req.freshRoom
      ? undefined
      : await store.tryClaim(claimRef, {
          ttlSeconds: config.metadataTtlSeconds,
          holdSeconds,
          attrs: { metadata_sha256: metadataHash },
        });
    if (claim !== undefined && !claim.won) {
      if (claim.current.state === 'completed') return { status: 'already_dispatched' };
      throw new DispatchInProgressError();
    }
    const owner = claim?.owner;
    if (owner !== undefined) {
      undos.push(async ({ dispatchMayRemain }) => {
        // A dispatch may exist that nothing records: keep the claim but end its hold now.
        await (dispatchMayRemain
          ? quietly('claim abandon', () => store.updateClaim(claimRef, owner, {}, 0))
          : quietly('claim release', () => store.releaseClaim(claimRef, owner)));
      });
    }

    // Step 2, adoption. An earlier attempt died mid-call: its dispatch may exist although nothing
    // recorded it.
    let adopted: string | undefined;
    if (claim?.previous !== undefined && req.mode === 'api') {
      const previousHash = claim.previous.attrs.metadata_sha256;
      let existing: { id: string; agentName: string; metadata: string }[];
      try {
        existing = await livekit.listDispatches(req.roomName);
      } catch (err) {
        state.dispatchMayRemain = true;
        return fail(asLiveKitError(err));
      }
      for (const d of existing) {
        if (d.agentName !== req.agentName) continue;
        // Per participant, only the abandoned attempt's own dispatch counts.
        if (participant !== undefined && (await sha256Hex(d.metadata)) !== previousHash) continue;
        adopted = d.id;
        log.info('adopted the dispatch of an abandoned attempt', {
          room: req.roomName,
          agent: req.agentName,
        });
        break;
      }
    }
    const removeDispatches: Undo = async (s) => {
      if (!(await removeOwnDispatches(req.roomName, req.agentName, sealed.metadata, adopted))) {
        s.dispatchMayRemain = true;
      }
    };
    if (adopted !== undefined) undos.push(removeDispatches);

    // Step 3, the lease, when the tenant has a limit.
    const holder = holderOf(req.roomName, req.agentName, req.participantIdentity);
    let leaseSlot: number | undefined;
    const max = req.tenant.max_concurrent_sessions;
    if (typeof max === 'number') {
      let slot: number | null;
      try {
        slot = await store.acquireLease(req.tenant.tenant_id, max, holder, config.metadataTtlSeconds);
      } catch (err) {
        return fail(err);
      }
      if (slot === null) return fail(new QuotaExceededError());
      leaseSlot = slot;
      undos.push(() =>
        quietly('lease release', () => store.releaseLease(req.tenant.tenant_id, slot, holder)),
      );
    }

    // Step 4, the caller's last check (the rate limit); it has nothing to undo.
    if (req.admit !== undefined) {
      try {
        await req.admit();
      } catch (err) {
        return fail(err);
      }
    }

    // The session as it will be recorded; its active marker goes first (step 5), so that a
    // revoke, suspension or delete that lists the markers after this write finds it (see the
    // fence, step 8).
    const session: SessionRecord & { sid: string } = {
      room_name: req.roomName,
      ...(req.roomSid ? { room_sid: req.roomSid } : {}),
      tenant_id: req.tenant.tenant_id,
      user_id: req.userId,
      participant_identity: req.participantIdentity,
      agent_name: req.agentName,
      dispatch_id: null,
      mode: req.mode,
      origin: req.origin,
      status: 'active',
      created_at: clock().toISOString(),
      ...(leaseSlot === undefined ? {} : { lease_slot: leaseSlot }),
      sid,
    };

    // Step 5, the active marker (base table, docs/api.md §10). Its undo runs last of the
    // session's, once the dispatch is gone.
    try {
      await store.markSessionActive(session);
    } catch (err) {
      return fail(err);
    }
    undos.push(() => quietly('active marker removal', () => store.unmarkSessionActive(session)));

    // Step 5b, the session id's pointer (docs/api.md §9), before the dispatch: the job's first
    // renewal may come as soon as the dispatch exists. A failed start deletes it.
    try {
      await store.putSessionPointer(session);
    } catch (err) {
      return fail(err);
    }
    undos.push(() => quietly('session pointer removal', () => store.deleteSessionPointer(sid)));

    // Step 6, the dispatch (api mode). Its undo is pushed before the call: a timed-out
    // CreateDispatch may still have succeeded.
    if (req.mode === 'api') {
      if (adopted !== undefined) {
        session.dispatch_id = adopted;
      } else {
        undos.push(removeDispatches);
        try {
          ({ dispatchId: session.dispatch_id } = await livekit.createDispatch(
            req.roomName,
            req.agentName,
            sealed.metadata,
          ));
          addLogContext({ dispatch_id: session.dispatch_id });
        } catch (err) {
          return fail(asLiveKitError(err));
        }
      }
    }

    // Step 7, the session record.
    try {
      await store.putSession(session);
      undos.push(() => quietly('session end', () => store.endSession(session, clock())));
    } catch (err) {
      return fail(err);
    }

    // Step 8, the fence (write-then-check, docs/api.md §10): re-read the user and the tenant,
    // strongly consistent, after the marker, and end this session if either is no longer active.
    //
    // Why a revoke (or suspension, or delete) and this start cannot both miss each other: the
    // revoke writes the user's status (W_u), then lists the markers (R_m); this start writes its
    // marker (W_m, step 5), then reads the status (R_u, here). Each is a strongly consistent
    // single-item or single-partition operation, so they are totally ordered. If R_m misses W_m,
    // then R_m < W_m, hence W_u < R_m < W_m < R_u: this read sees the suspension and the session
    // ends itself before it answers. If R_u misses W_u, then R_u < W_u, hence
    // W_m < R_u < W_u < R_m: the revoke sees the marker, and since this dispatch was created
    // before R_u, it exists by the time the revoke deletes the room. Tenant suspension is the
    // same with the tenant's record; a delete writes (removes) the record first, and a missing
    // record fails this check too.
    let fenced: DomainError | undefined;
    try {
      fenced = await fenceCheck(req);
    } catch (err) {
      return fail(err);
    }
    if (fenced !== undefined) {
      log.info('session fenced off by a concurrent revoke, suspension or delete', {
        tenant_id: req.tenant.tenant_id,
        reason: fenced.code,
      });
      return fail(fenced);
    }

    // Step 9, the claim is completed.
    try {
      if (owner !== undefined) {
        await store.completeClaim(
          claimRef,
          owner,
          { metadata_sha256: metadataHash, dispatch_id: session.dispatch_id },
          config.metadataTtlSeconds,
        );
      }
    } catch (err) {
      return fail(err);
    }
    return { status: 'dispatched', session, metadata: sealed.metadata, metadataExpiresAt: sealed.expiresAt };
  };
}

function asLiveKitError(err: unknown): DomainError {
  return err instanceof DomainError ? err : new LiveKitUnavailableError({ cause: err });
}
