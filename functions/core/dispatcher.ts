import { DomainError, KeyTooLongError, LiveKitUnavailableError } from './errors.js';
import { addLogContext, type Log } from './log.js';
import type {
  DispatchMode,
  McpServerGrant,
  SessionOrigin,
  SessionRecord,
  TenantRecord,
  UserRecord,
} from './model.js';
import type { ClaimRef, DispatchApi, DispatchStore, SessionResourceStore } from './ports.js';
import { effectiveMcpConfig } from './resolve.js';
import { isServiceParticipant, normalizeE164, ParticipantKind, roomTenantCandidates } from './rooms.js';
import { type DispatchSealer, type SecretBox, SecretBoxError } from './sealing.js';

/** The tenant's leases are all taken (429 `quota_exceeded`; the webhook answers 200). */
export class QuotaExceededError extends DomainError {
  constructor() {
    super('quota_exceeded', "All of the tenant's concurrent sessions are in use; retry later.");
  }
}

/**
 * Another attempt is making this dispatch right now (503, retryable): if it fails, the retry
 * must find no claim and dispatch, so this is never reported as already dispatched.
 */
export class DispatchInProgressError extends DomainError {
  constructor() {
    super('dispatch_in_progress', 'This dispatch is being made by another request; retry shortly.');
  }
}

/** Everything a {@link Dispatcher} is built from. */
export interface DispatcherDeps {
  store: DispatchStore;
  livekit: DispatchApi;
  sealer: DispatchSealer;
  secretBox: Pick<SecretBox, 'open'>;
  clock: () => Date;
  log: Log;
  config: {
    /** Lifetime of sealed metadata and of a quota lease (`METADATA_TTL_SECONDS`). */
    metadataTtlSeconds: number;
    defaultAgentName: string;
    webhookRoomPrefix: string;
  };
  /** How long an unfinished dispatch claim blocks others before it counts as abandoned (s). */
  claimHoldSeconds?: number;
}

/** One dispatch to make. */
export interface DispatchRequest {
  tenant: TenantRecord;
  userId: string;
  /** The participant the job serves (`pid`). */
  participantIdentity: string;
  agentName: string;
  roomName: string;
  /** LiveKit's room sid, when the room exists (webhook): claims are then per room incarnation. */
  roomSid?: string;
  /** Claim one dispatch per participant rather than per room. */
  perParticipant: boolean;
  /**
   * The caller has just named this room itself, at random (the session API): no one else can
   * dispatch in it, so no dispatch claim is taken.
   */
  freshRoom?: boolean;
  mcpServers: McpServerGrant[];
  /** The app's own agent metadata, sealed as `client`. */
  client?: string;
  /** `api`: CreateDispatch now; `token`: the caller embeds the metadata in a participant token. */
  mode: DispatchMode;
  origin: SessionOrigin;
  /**
   * Last check before anything is created, run once the claim and lease are held (the session
   * function's rate limit). When it throws, the claim and lease are released and the error
   * propagates, so a refused request leaves nothing behind.
   */
  admit?: () => Promise<void>;
}

/** What {@link Dispatcher.dispatch} did. */
export type DispatchResult =
  | { status: 'dispatched'; session: SessionRecord; metadata: string; metadataExpiresAt: Date }
  | { status: 'already_dispatched' };

/** A participant that joined a room, as the `participant_joined` webhook describes it. */
export interface JoinedParticipant {
  roomName: string;
  roomSid: string;
  identity: string;
  /** `ParticipantInfo.Kind` (see {@link ParticipantKind}). */
  kind: number;
  attributes: Record<string, string>;
}

/** What the webhook reports for a `participant_joined` event. */
export type JoinOutcome =
  | 'dispatched'
  | 'already_dispatched'
  | 'ignored'
  | 'quota_exceeded'
  /**
   * The room is one the session API named and its session has ended: whoever is back in it
   * holds an old participant token (in token mode, LiveKit dispatches the agent again from the
   * token's sealed metadata), so the caller deletes the room.
   */
  | 'session_ended';

/** One dispatch per (room, agent[, participant]); the sessions that follow from it. */
export interface Dispatcher {
  /**
   * Seals the metadata, claims (room, agent[, participant]), takes a lease when the tenant has
   * a limit, creates the dispatch (api mode) and records the session (both modes).
   *
   * @throws QuotaExceededError when every lease is taken (the claim is released).
   * @throws LiveKitUnavailableError when LiveKit failed; any dispatch this attempt may have
   *   created is removed first, then the claim and the lease are released.
   */
  dispatch(request: DispatchRequest): Promise<DispatchResult>;
  /** Applies CONTRACT §5 to a `participant_joined` event. */
  participantJoined(participant: JoinedParticipant): Promise<JoinOutcome>;
  /**
   * Ends every active session of a room (`room_finished`) with its duration, releasing leases
   * and claims. Returns how many ended. Sessions of another incarnation (other sid) stay.
   */
  finishRoom(roomName: string, roomSid?: string): Promise<number>;
}

/** Seconds an in-progress dispatch claim holds: longer than one attempt can take. */
export const DEFAULT_CLAIM_HOLD_SECONDS = 30;

/** Creates the {@link Dispatcher}. */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { store, livekit, sealer, secretBox, clock, log, config } = deps;
  const holdSeconds = deps.claimHoldSeconds ?? DEFAULT_CLAIM_HOLD_SECONDS;

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

  async function quietly(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      log.warn(`${what} failed`, { error: errorName(err) });
    }
  }

  async function dispatch(req: DispatchRequest): Promise<DispatchResult> {
    addLogContext({ tenant_id: req.tenant.tenant_id, room: req.roomName });
    const participant = req.perParticipant ? req.participantIdentity : undefined;
    const claimKey: ClaimRef = {
      kind: 'dispatch',
      room: req.roomSid || req.roomName,
      agent: req.agentName,
      ...(participant === undefined ? {} : { participant }),
    };
    // An id too long for the claim's key names nothing of ours; refused before anything is written.
    if (!req.freshRoom && !store.fits(claimKey)) throw new KeyTooLongError();
    const sealed = await sealer.seal({
      agentName: req.agentName,
      userId: req.userId,
      tenantId: req.tenant.tenant_id,
      roomName: req.roomName,
      participantIdentity: req.participantIdentity,
      mcpServers: req.mcpServers,
      ttlSeconds: config.metadataTtlSeconds,
      ...(req.client === undefined ? {} : { client: req.client }),
    });
    const metadataHash = await sha256Hex(sealed.metadata);

    // A fresh random room name (the session API's) guards itself: nobody else knows it until the
    // participant token is handed out, the webhook claims by room sid and never dispatches in a
    // room with a session record, and repeats of one Idempotency-Key are serialised by that key's
    // own claim. A claim would guard nothing and cost two sequential writes (PutItem, UpdateItem).
    const claim = req.freshRoom
      ? undefined
      : await store.tryClaim(claimKey, {
          ttlSeconds: config.metadataTtlSeconds,
          holdSeconds,
          attrs: { metadata_sha256: metadataHash },
        });
    if (claim !== undefined && !claim.won) {
      if (claim.current.state === 'completed') return { status: 'already_dispatched' };
      throw new DispatchInProgressError();
    }
    const owner = claim?.owner;
    const releaseClaim = async () => {
      if (owner !== undefined) await quietly('claim release', () => store.releaseClaim(claimKey, owner));
    };
    // A dispatch may exist that nothing records: keep the claim but end its hold now, so the
    // next attempt takes it over and lists the room's dispatches before creating one.
    const abandonClaim = async () => {
      if (owner !== undefined) {
        await quietly('claim abandon', () => store.updateClaim(claimKey, owner, {}, 0));
      }
    };

    // An earlier attempt died mid-call: its dispatch may exist although nothing recorded it.
    let adopted: string | undefined;
    if (claim?.previous !== undefined && req.mode === 'api') {
      const previousHash = claim.previous.attrs.metadata_sha256;
      let existing: { id: string; agentName: string; metadata: string }[];
      try {
        existing = await livekit.listDispatches(req.roomName);
      } catch (err) {
        await abandonClaim();
        throw asLiveKitError(err);
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

    const holder = holderOf(req.roomName, req.agentName, req.participantIdentity);
    let leaseSlot: number | undefined;
    const rollback = async (dispatchMayExist: boolean) => {
      const cleaned = dispatchMayExist
        ? await removeOwnDispatches(req.roomName, req.agentName, sealed.metadata, adopted)
        : true;
      if (leaseSlot !== undefined) {
        const slot = leaseSlot;
        await quietly('lease release', () => store.releaseLease(req.tenant.tenant_id, slot, holder));
      }
      await (cleaned ? releaseClaim() : abandonClaim());
    };

    const max = req.tenant.max_concurrent_sessions;
    if (typeof max === 'number') {
      let slot: number | null;
      try {
        slot = await store.acquireLease(req.tenant.tenant_id, max, holder, config.metadataTtlSeconds);
      } catch (err) {
        await rollback(adopted !== undefined);
        throw err;
      }
      if (slot === null) {
        await rollback(adopted !== undefined);
        throw new QuotaExceededError();
      }
      leaseSlot = slot;
    }

    if (req.admit !== undefined) {
      try {
        await req.admit();
      } catch (err) {
        await rollback(adopted !== undefined);
        throw err;
      }
    }

    let dispatchId: string | null = null;
    if (req.mode === 'api') {
      if (adopted !== undefined) {
        dispatchId = adopted;
      } else {
        try {
          ({ dispatchId } = await livekit.createDispatch(req.roomName, req.agentName, sealed.metadata));
          addLogContext({ dispatch_id: dispatchId });
        } catch (err) {
          await rollback(true);
          throw asLiveKitError(err);
        }
      }
    }

    const session: SessionRecord = {
      room_name: req.roomName,
      ...(req.roomSid ? { room_sid: req.roomSid } : {}),
      tenant_id: req.tenant.tenant_id,
      user_id: req.userId,
      participant_identity: req.participantIdentity,
      agent_name: req.agentName,
      dispatch_id: dispatchId,
      mode: req.mode,
      origin: req.origin,
      status: 'active',
      created_at: clock().toISOString(),
      ...(leaseSlot === undefined ? {} : { lease_slot: leaseSlot }),
    };
    let recorded = false;
    try {
      await store.putSession(session);
      recorded = true;
      if (owner !== undefined) {
        await store.completeClaim(
          claimKey,
          owner,
          { metadata_sha256: metadataHash, dispatch_id: dispatchId },
          config.metadataTtlSeconds,
        );
      }
    } catch (err) {
      if (recorded) await quietly('session end', () => store.endSession(session, clock()));
      await rollback(req.mode === 'api');
      throw err;
    }
    return { status: 'dispatched', session, metadata: sealed.metadata, metadataExpiresAt: sealed.expiresAt };
  }

  /** The tenant and user a joined participant belongs to, or why it gets nothing. */
  async function whoJoined(
    p: JoinedParticipant,
  ): Promise<{ tenant: TenantRecord; user: UserRecord } | { ignored: string }> {
    if (p.kind === ParticipantKind.SIP) {
      const trunkId = p.attributes['sip.trunkID'];
      if (!trunkId) return { ignored: 'SIP participant without a trunk id' };
      const phone = normalizeE164(p.attributes['sip.phoneNumber']);
      if (phone === undefined) return { ignored: 'SIP participant without a usable phone number' };
      // Neither lookup needs the other: one round trip instead of two.
      const [tenant, user] = await Promise.all([
        store.tenantBySipTrunk(trunkId),
        store.userByPhoneNumber(phone),
      ]);
      if (tenant === undefined) return { ignored: 'SIP trunk of no tenant' };
      if (user === undefined) return { ignored: 'unknown phone number' };
      if (user.tenant_id !== tenant.tenant_id) return { ignored: "phone number of another tenant's user" };
      return { tenant, user };
    }
    if (!p.roomName.startsWith(config.webhookRoomPrefix)) return { ignored: 'room outside the prefix' };
    // A room `<prefix><tenant>-<rest>` belongs to the longest existing tenant id that fits (ids
    // may contain `-`). The longest candidate is read with the user, not after it: in a room the
    // session API named it is the user's own tenant, and otherwise it must be read anyway.
    const candidates = roomTenantCandidates(p.roomName, config.webhookRoomPrefix);
    const [user, longest] = await Promise.all([
      store.getUser(p.identity),
      candidates[0] === undefined ? undefined : store.getTenant(candidates[0]),
    ]);
    if (user === undefined) return { ignored: 'unknown user' };
    const own = candidates.indexOf(user.tenant_id);
    let tenant = longest;
    let longer: (TenantRecord | undefined)[] = [];
    if (own !== 0) {
      const between = own === -1 ? candidates.slice(1) : candidates.slice(1, own);
      [tenant, ...longer] = await Promise.all([
        store.getTenant(user.tenant_id),
        ...between.map((id) => store.getTenant(id)),
      ]);
      longer.push(longest);
    }
    if (tenant === undefined || !tenant.webhook_dispatch)
      return { ignored: 'tenant without webhook dispatch' };
    if (longer.some((t) => t !== undefined)) return { ignored: "another tenant's room" };
    return { tenant, user };
  }

  return {
    dispatch,

    async participantJoined(p) {
      if (isServiceParticipant(p.kind)) return 'ignored';
      // Independent reads, one round trip: the room's sessions and who joined.
      const [roomSessions, who] = await Promise.all([store.roomSessions(p.roomName), whoJoined(p)]);
      // Rooms the session API names are random and never reused: once none of their sessions is
      // active, a participant back in one is replaying a participant token.
      if (
        !roomSessions.some((s) => s.status === 'active') &&
        roomSessions.some((s) => s.origin === 'session')
      ) {
        log.info('participant in a room whose session ended', { room: p.roomName });
        return 'session_ended';
      }
      if ('ignored' in who) {
        log.info('participant ignored', { room: p.roomName, reason: who.ignored });
        return 'ignored';
      }
      const { tenant, user } = who;
      if (tenant.status !== 'active' || user.status !== 'active') {
        log.info('participant ignored', {
          room: p.roomName,
          reason: 'suspended',
          tenant_id: tenant.tenant_id,
        });
        return 'ignored';
      }
      const sessions = roomSessions.filter(
        (s) => s.status === 'active' && (s.room_sid === undefined || !p.roomSid || s.room_sid === p.roomSid),
      );
      if (sessions.some((s) => s.tenant_id !== tenant.tenant_id)) {
        log.info('participant ignored', { room: p.roomName, reason: "another tenant's room" });
        return 'ignored';
      }
      const perParticipant = tenant.dispatch_policy === 'per_participant';
      if (
        perParticipant ? sessions.some((s) => s.participant_identity === p.identity) : sessions.length > 0
      ) {
        return 'already_dispatched';
      }
      const agentName = tenant.agent_names[0] ?? config.defaultAgentName;
      // The session record this dispatch would write (room incarnation, agent, participant) has
      // ended, and the store never reopens an ended session: a dispatch would only be created and
      // deleted again, on every retry of LiveKit's. A later incarnation (new sid) starts afresh.
      if (
        roomSessions.some(
          (s) =>
            s.status !== 'active' &&
            s.agent_name === agentName &&
            s.participant_identity === p.identity &&
            (s.room_sid === undefined || !p.roomSid || s.room_sid === p.roomSid),
        )
      ) {
        log.info('participant ignored', {
          room: p.roomName,
          reason: 'their session in this room has ended',
          tenant_id: tenant.tenant_id,
        });
        return 'ignored';
      }
      let grant: McpServerGrant | null;
      try {
        grant = await effectiveMcpConfig(tenant, user, secretBox);
      } catch (err) {
        // A stored secret that does not open will not open on LiveKit's retry either.
        if (!(err instanceof SecretBoxError)) throw err;
        log.error('participant ignored', {
          room: p.roomName,
          reason: err.reason,
          tenant_id: tenant.tenant_id,
        });
        return 'ignored';
      }
      if (grant === null) {
        log.info('participant ignored', {
          room: p.roomName,
          reason: 'no MCP configuration',
          tenant_id: tenant.tenant_id,
        });
        return 'ignored';
      }
      try {
        const result = await dispatch({
          tenant,
          userId: user.user_id,
          participantIdentity: p.identity,
          agentName,
          roomName: p.roomName,
          roomSid: p.roomSid,
          perParticipant,
          mcpServers: [grant],
          mode: 'api',
          origin: 'webhook',
        });
        return result.status;
      } catch (err) {
        if (err instanceof QuotaExceededError) {
          log.info('quota exceeded', { room: p.roomName, tenant_id: tenant.tenant_id });
          return 'quota_exceeded';
        }
        throw err;
      }
    },

    async finishRoom(roomName, roomSid) {
      const sessions = await store.roomSessions(roomName);
      const endedAt = clock();
      let ended = 0;
      for (const s of sessions) {
        if (s.status !== 'active') continue;
        if (roomSid !== undefined && s.room_sid !== undefined && s.room_sid !== roomSid) continue;
        const done = await store.endSession(s, endedAt);
        if (done === undefined) continue;
        ended += 1;
        await releaseSessionResources(store, s);
      }
      return ended;
    },
  };
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

/** Who holds a quota lease: the session it was taken for. */
export function holderOf(roomName: string, agentName: string, participant: string): string {
  return JSON.stringify([roomName, agentName, participant]);
}

function asLiveKitError(err: unknown): DomainError {
  return err instanceof DomainError ? err : new LiveKitUnavailableError({ cause: err });
}

async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  return Buffer.from(digest).toString('hex');
}

function errorName(err: unknown): string {
  return err instanceof DomainError ? err.code : err instanceof Error ? err.name : typeof err;
}
