import { isTenantId } from '@livekit-mcp-dispatch/contract';
import { loadAppCaller } from './caller.js';
import { refreshUrlOf } from './config.js';
import { DEFAULT_CREDENTIALS_REFRESH_SECONDS } from './dispatch-request.js';
import type { Dispatcher } from './dispatcher.js';
import { DomainError } from './errors.js';
import type { Log } from './log.js';
import type { DispatchMode, McpServerGrant, TenantRecord } from './model.js';
import type { ClaimRef, ClaimView, DispatchStore, ParticipantTokens } from './ports.js';
import { newRoomName } from './rooms.js';
import type { DispatchSealer, SecretBox } from './sealing.js';
import { resolverOf, type ServerResolver, type ServerState, withoutHeaders } from './servers.js';

/** How long an Idempotency-Key is remembered (docs/api.md §4: 10 minutes). */
export const IDEMPOTENCY_WINDOW_SECONDS = 600;
/** How long a first request holds its key before a repeat may take over (it died). */
export const IDEMPOTENCY_HOLD_SECONDS = 30;

export type { ParticipantTokenInput, ParticipantTokens } from './ports.js';

/** Everything a {@link SessionService} is built from. */
export interface SessionServiceDeps {
  store: DispatchStore;
  dispatcher: Dispatcher;
  tokens: ParticipantTokens;
  sealer: DispatchSealer;
  secretBox: Pick<SecretBox, 'open'>;
  /**
   * The user's servers and their credentials (servers.ts); when unset, `mcp` and the catalog
   * with no connections (the stored-token source over `secretBox`).
   */
  servers?: ServerResolver;
  random: (n: number) => Uint8Array;
  log: Log;
  config: {
    defaultAgentName: string;
    sessionDispatchMode: DispatchMode;
    sessionTokenTtlSeconds: number;
    sessionRateLimitPerMinute: number;
    metadataTtlSeconds: number;
    webhookRoomPrefix: string;
    publicBaseUrl?: string | undefined;
    credentialsRefreshSeconds?: number;
  };
}

/** A validated `POST /v1/sessions` request, as the service sees it. */
export interface StartSessionInput {
  /** The verified JWT `sub`. */
  userId: string;
  /** The verified JWT's tenant claim. */
  tenantClaim: string | undefined;
  participantName?: string;
  participantMetadata?: string;
  participantAttributes?: Record<string, string>;
  /** `room_config.agents[0].agent_name`, when the app asked for one. */
  agentName?: string;
  /** `room_config.agents[0].metadata`: sealed as `client`. */
  agentMetadata?: string;
  /** The `Idempotency-Key` header and a hash of the request it came with. */
  idempotency?: { key: string; requestHash: string };
}

/** A started (or replayed) session. */
export interface StartedSession {
  roomName: string;
  participantIdentity: string;
  agentName: string;
  dispatchId: string | null;
  participantToken: string;
  expiresAt: Date;
  /** True when an Idempotency-Key repeat returned an earlier session. */
  replayed: boolean;
  /** Every server of the user and its status; those not `ready` are not in the dispatch. */
  mcpServers: ServerState[];
}

/** Starts sessions for app users (docs/api.md §4). */
export interface SessionService {
  /**
   * Checks the caller, then starts a session: new room, dispatch (or token dispatch), session
   * record, participant token. An Idempotency-Key repeat returns the earlier session.
   * @throws DomainError with the contract's codes (user_not_found, tenant_mismatch, …).
   */
  start(input: StartSessionInput): Promise<StartedSession>;
}

/** Creates the {@link SessionService}. */
export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { store, dispatcher, tokens, sealer, random, log, config } = deps;
  const servers = resolverOf({ ...deps, clock: () => new Date() });

  const loadCaller = (input: StartSessionInput) => loadAppCaller(store, input.userId, input.tenantClaim);

  function agentFor(tenant: TenantRecord, requested: string | undefined): string {
    const allowed = tenant.agent_names.length > 0 ? tenant.agent_names : [config.defaultAgentName];
    if (requested === undefined || requested === '') return allowed[0]!;
    if (!allowed.includes(requested))
      throw new DomainError('agent_not_allowed', 'The tenant does not allow this agent.');
    return requested;
  }

  function mint(input: StartSessionInput, room: string, agents?: { agentName: string; metadata: string }[]) {
    return tokens.participantToken({
      identity: input.userId,
      room,
      ttlSeconds: config.sessionTokenTtlSeconds,
      ...(input.participantName === undefined ? {} : { name: input.participantName }),
      ...(input.participantMetadata === undefined ? {} : { metadata: input.participantMetadata }),
      ...(input.participantAttributes === undefined ? {} : { attributes: input.participantAttributes }),
      ...(agents === undefined ? {} : { agents }),
    });
  }

  /**
   * Takes the Idempotency-Key for this attempt, or returns the earlier session it started.
   * A key whose session has ended is taken again: that request starts a new session.
   */
  async function takeKey(
    input: StartSessionInput,
    idem: { key: string; requestHash: string },
    grants: McpServerGrant[],
    states: ServerState[],
  ): Promise<{ owner: string } | { replay: StartedSession }> {
    const key = idempotencyRef(input, idem.key);
    for (let attempt = 0; attempt < 3; attempt++) {
      const claim = await store.tryClaim(key, {
        ttlSeconds: IDEMPOTENCY_WINDOW_SECONDS,
        holdSeconds: IDEMPOTENCY_HOLD_SECONDS,
        attrs: { request_sha256: idem.requestHash },
      });
      if (claim.won) return { owner: claim.owner };
      const current = claim.current;
      if (current.attrs.request_sha256 !== idem.requestHash) {
        throw new DomainError(
          'idempotency_key_reused',
          'This Idempotency-Key was used with another request body.',
        );
      }
      if (current.state === 'in_progress') {
        throw new DomainError(
          'idempotency_key_in_flight',
          'A request with this Idempotency-Key is still running.',
        );
      }
      const replay = await replayOf(current, input, grants, states);
      if (replay !== undefined) return { replay };
      // The earlier session has ended: forget the key, then take it like a first request.
      await dropIfSame(key, current);
    }
    throw new DomainError(
      'idempotency_key_in_flight',
      'A request with this Idempotency-Key is still running.',
    );
  }

  async function dropIfSame(key: ClaimRef, seen: ClaimView): Promise<void> {
    await store.releaseClaim(key, seen.owner);
  }

  /**
   * A fresh token for the session an earlier request with the same key started, or undefined
   * when that session has ended (or is gone).
   */
  async function replayOf(
    claim: ClaimView,
    input: StartSessionInput,
    grants: McpServerGrant[],
    states: ServerState[],
  ): Promise<StartedSession | undefined> {
    const roomName = claim.attrs.room_name;
    const agentName = claim.attrs.agent_name;
    if (typeof roomName !== 'string' || typeof agentName !== 'string') return undefined;
    const session = (await store.roomSessions(roomName)).find(
      (s) => s.agent_name === agentName && s.participant_identity === input.userId,
    );
    if (session === undefined || session.status !== 'active') return undefined;
    let agents: { agentName: string; metadata: string }[] | undefined;
    if (session.mode === 'token') {
      // The first token may never have been used, so the fresh one carries the dispatch too;
      // LiveKit applies it only when a join creates the room, so no second agent appears.
      const sealed = await sealer.seal({
        agentName,
        userId: session.user_id,
        tenantId: session.tenant_id,
        roomName,
        participantIdentity: input.userId,
        // Token mode: the participant token carries the JWE, so no credential (§3).
        mcpServers: withoutHeaders(grants),
        ttlSeconds: config.metadataTtlSeconds,
        ...(input.agentMetadata === undefined ? {} : { client: input.agentMetadata }),
        // The same session, so the same session id: the job renews it (docs/api.md §9).
        ...(session.sid === undefined ? {} : { sid: session.sid }),
        refresh: {
          url: refreshUrlOf({ publicBaseUrl: config.publicBaseUrl ?? 'http://localhost:8787' }),
          seconds: config.credentialsRefreshSeconds ?? DEFAULT_CREDENTIALS_REFRESH_SECONDS,
        },
      });
      agents = [{ agentName, metadata: sealed.metadata }];
    }
    const token = await mint(input, roomName, agents);
    log.info('session replayed', { tenant_id: session.tenant_id, room: roomName, agent: agentName });
    return {
      roomName,
      participantIdentity: input.userId,
      agentName,
      dispatchId: session.dispatch_id,
      participantToken: token.token,
      expiresAt: token.expiresAt,
      replayed: true,
      mcpServers: states,
    };
  }

  return {
    async start(input) {
      // The caller's rate window is read alongside the caller (a read, on the JWT's tenant and
      // subject), so that the admission (step 4 of the saga) is one conditional write. A failed
      // read is only a missed shortcut: the admission reads for itself.
      const rateRead = isTenantId(input.tenantClaim)
        ? store.rateWindow(input.tenantClaim, input.userId).catch(() => undefined)
        : Promise.resolve(undefined);
      const { user, tenant } = await loadCaller(input);
      const agentName = agentFor(tenant, input.agentName);
      const { states, grants } = await servers({ tenant, user, origin: 'session' });
      if (states.length === 0)
        throw new DomainError('mcp_not_configured', 'No MCP server is configured for this user.');
      // Servers that are not ready are left out; only when none is ready is the start refused,
      // with every server's status so the app can offer to connect or reconnect one (§4).
      if (grants.length === 0) {
        throw new DomainError('mcp_reauth_required', 'None of the MCP servers of this user is ready.', {
          details: { mcp_servers: states },
        });
      }
      const mode = config.sessionDispatchMode;

      const idem = input.idempotency;
      let owner: string | undefined;
      if (idem !== undefined) {
        const taken = await takeKey(input, idem, grants, states);
        if ('replay' in taken) return taken.replay;
        owner = taken.owner;
      }

      try {
        const roomName = newRoomName(config.webhookRoomPrefix, tenant.tenant_id, random);
        const result = await dispatcher.dispatch({
          tenant,
          userId: user.user_id,
          participantIdentity: input.userId,
          agentName,
          roomName,
          perParticipant: false,
          // Named just now with 120 random bits: no claim needed (see DispatchRequest.freshRoom).
          freshRoom: true,
          // Token mode: the app holds the participant token, and with it the JWE, so the grants
          // carry no headers; the job's start renewal supplies them (docs/api.md §3).
          mcpServers: mode === 'token' ? withoutHeaders(grants) : grants,
          ...(input.agentMetadata === undefined ? {} : { client: input.agentMetadata }),
          mode,
          origin: 'session',
          admit: async () => {
            const seen = await rateRead;
            const limit = config.sessionRateLimitPerMinute;
            if (!(await store.hitRate(tenant.tenant_id, input.userId, limit, seen))) {
              throw new DomainError('rate_limited', 'Too many sessions started; retry in a minute.');
            }
          },
        });
        // A fresh room is never claimed, so it cannot have been dispatched in already.
        if (result.status !== 'dispatched') throw new Error('a new room was already dispatched in');
        const token = await mint(
          input,
          roomName,
          mode === 'token' ? [{ agentName, metadata: result.metadata }] : undefined,
        );
        if (idem !== undefined && owner !== undefined) {
          await store.completeClaim(
            idempotencyRef(input, idem.key),
            owner,
            { room_name: roomName, agent_name: agentName, dispatch_id: result.session.dispatch_id },
            IDEMPOTENCY_WINDOW_SECONDS,
          );
        }
        log.info('session started', { tenant_id: tenant.tenant_id, room: roomName, agent: agentName, mode });
        return {
          roomName,
          participantIdentity: input.userId,
          agentName,
          dispatchId: result.session.dispatch_id,
          participantToken: token.token,
          expiresAt: token.expiresAt,
          replayed: false,
          mcpServers: states,
        };
      } catch (err) {
        if (idem !== undefined && owner !== undefined) {
          const held = owner;
          await store.releaseClaim(idempotencyRef(input, idem.key), held).catch((e: unknown) => {
            log.warn('idempotency key release failed', { error: e instanceof Error ? e.name : typeof e });
          });
        }
        throw err;
      }
    },
  };
}

/** The Idempotency-Key of one (tenant, user): a key of one tenant's user never meets another's. */
function idempotencyRef(input: StartSessionInput, key: string): ClaimRef {
  return { kind: 'idempotency', tenant: input.tenantClaim ?? '', user: input.userId, key };
}
