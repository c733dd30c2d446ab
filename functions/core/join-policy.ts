import { type DispatcherDeps, QuotaExceededError } from './dispatch-request.js';
import type { DispatchSaga } from './dispatch-saga.js';
import { DomainError } from './errors.js';
import type { TenantRecord, UserRecord } from './model.js';
import { isServiceParticipant, normalizeE164, ParticipantKind, roomTenantCandidates } from './rooms.js';
import { SecretBoxError } from './sealing.js';
import { type ResolvedServers, resolverOf } from './servers.js';

/** How many candidate tenant ids of a room name are read in one round trip. */
const TENANT_READS_AT_ONCE = 4;

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

/** Applies docs/api.md §5 to a `participant_joined` event. */
export type JoinPolicy = (participant: JoinedParticipant) => Promise<JoinOutcome>;

/**
 * Creates the join policy: who a joined participant is (SIP trunk and number, or the room's
 * tenant and the identity), whether they get an agent, and with which MCP configuration.
 */
export function createJoinPolicy(deps: DispatcherDeps, dispatch: DispatchSaga): JoinPolicy {
  const { store, log, config } = deps;
  const servers = resolverOf(deps);

  /** The tenant and user a joined participant belongs to, or why it gets nothing. */
  async function whoJoined(
    p: JoinedParticipant,
  ): Promise<{ tenant: TenantRecord; user: UserRecord } | { ignored: string }> {
    if (p.kind === ParticipantKind.SIP) {
      const trunkId = p.attributes['sip.trunkID'];
      if (!trunkId) return { ignored: 'SIP participant without a trunk id' };
      const phone = normalizeE164(p.attributes['sip.phoneNumber']);
      if (phone === undefined) return { ignored: 'SIP participant without a usable phone number' };
      // Trunk → tenant (trunk ids are unique across tenants), then the number within that tenant.
      const tenant = await store.tenantBySipTrunk(trunkId);
      if (tenant === undefined) return { ignored: 'SIP trunk of no tenant' };
      const user = await store.userByPhoneNumber(tenant.tenant_id, phone);
      if (user === undefined) return { ignored: 'unknown phone number' };
      return { tenant, user };
    }
    if (!p.roomName.startsWith(config.webhookRoomPrefix)) return { ignored: 'room outside the prefix' };
    const candidates = roomTenantCandidates(p.roomName, config.webhookRoomPrefix);
    // The user is read under the longest candidate together with the tenants: in a room the
    // session API named, that is the room's tenant, so one round trip decides.
    const [tenant, guess] = await Promise.all([
      roomTenant(candidates),
      candidates[0] === undefined ? undefined : store.getUser(candidates[0], p.identity),
    ]);
    if (tenant === undefined) return { ignored: 'room of no tenant' };
    if (!tenant.webhook_dispatch) return { ignored: 'tenant without webhook dispatch' };
    // The user is the identity within the room's tenant: a participant of another tenant (or
    // nobody's) has no record there, so it never gets a dispatch in this room.
    const user =
      tenant.tenant_id === candidates[0] ? guess : await store.getUser(tenant.tenant_id, p.identity);
    if (user === undefined) return { ignored: 'unknown user' };
    return { tenant, user };
  }

  /**
   * The tenant a room `<prefix><tenant>-<anything>` belongs to: the longest existing tenant id
   * that fits (ids may contain `-`, docs/api.md §5), or undefined when it names none. Candidates
   * are read strongly consistent from the base table, longest first, a few at a time (a room the
   * session API named is decided by its first read).
   */
  async function roomTenant(candidates: string[]): Promise<TenantRecord | undefined> {
    for (let i = 0; i < candidates.length; i += TENANT_READS_AT_ONCE) {
      const batch = candidates.slice(i, i + TENANT_READS_AT_ONCE);
      const found = await Promise.all(batch.map((id) => store.getTenant(id)));
      const tenant = found.find((t) => t !== undefined);
      if (tenant !== undefined) return tenant;
    }
    return undefined;
  }

  return async function participantJoined(p) {
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
    if (perParticipant ? sessions.some((s) => s.participant_identity === p.identity) : sessions.length > 0) {
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
    let resolved: ResolvedServers;
    try {
      // A webhook carries a server's user credential only when its entry opts in (§1, §6).
      resolved = await servers({ tenant, user, origin: 'webhook' });
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
    if (resolved.grants.length === 0) {
      log.info('participant ignored', {
        room: p.roomName,
        reason: resolved.states.length === 0 ? 'no MCP configuration' : 'no MCP server ready',
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
        mcpServers: resolved.grants,
        mode: 'api',
        origin: 'webhook',
      });
      return result.status;
    } catch (err) {
      if (err instanceof QuotaExceededError) {
        log.info('quota exceeded', { room: p.roomName, tenant_id: tenant.tenant_id });
        return 'quota_exceeded';
      }
      // The saga's fence: a revoke, suspension or delete raced this dispatch, which it undid.
      if (err instanceof DomainError && (err.code === 'user_suspended' || err.code === 'tenant_suspended')) {
        log.info('participant ignored', {
          room: p.roomName,
          reason: 'suspended',
          tenant_id: tenant.tenant_id,
        });
        return 'ignored';
      }
      throw err;
    }
  };
}
