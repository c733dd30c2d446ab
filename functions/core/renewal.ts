import {
  type UnavailableServer,
  verifyWorkerAssertion,
  type WorkerAssertionClaims,
  WorkerAssertionError,
} from '@livekit-mcp-dispatch/contract';
import { refreshUrlOf } from './config.js';
import type { RejectionReport } from './connections/ports.js';
import { DomainError } from './errors.js';
import type { Keyring } from './keyring.js';
import type { Log } from './log.js';
import { createMetadataOpener, MetadataRefusedError } from './metadata-opener.js';
import type {
  McpServerGrant,
  SessionOrigin,
  SessionPointer,
  SessionRecord,
  TenantRecord,
  UserRecord,
} from './model.js';
import type { CredentialsStore } from './ports.js';
import type { DispatchSealer } from './sealing.js';
import type { ServerResolver, ServerState } from './servers.js';
import { holderOf } from './session-resources.js';

/** At most this many renewals per session in any 60 s (docs/api.md §9). */
export const RENEWALS_PER_MINUTE = 20;
/** A pointer younger than this whose session is not recorded yet belongs to a start under way (s). */
export const SESSION_BEING_CREATED_SECONDS = 30;

/** A server the worker reports rejected its credential (the body's `rejected`). */
export interface RejectedServer {
  name: string;
  status: 401 | 403;
  scope?: string;
}

/** What a resolution gives: the servers to seal and those left out, with why. */
export interface ResolvedServers {
  grants: McpServerGrant[];
  unavailable: UnavailableServer[];
}

/** What a renewal reads of its session: the record, its user and its tenant (absent: undefined). */
interface Live {
  session: SessionRecord | undefined;
  user: UserRecord | undefined;
  tenant: TenantRecord | undefined;
}

/** The code of a server left out of a renewal (docs/api.md §9 `unavailable[].code`). */
function unavailableCode(state: ServerState): UnavailableServer['code'] {
  return state.status === 'unavailable' ? 'mcp_auth_unavailable' : 'mcp_reauth_required';
}

/** The bearer token a sealed grant carries, if any (the header name is case-insensitive). */
function bearerOf(grant: McpServerGrant | undefined): string | undefined {
  if (grant === undefined) return undefined;
  const value = Object.entries(grant.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  return value?.startsWith('Bearer ') ? value.slice('Bearer '.length) : undefined;
}

/**
 * A renewal's servers, resolved as a dispatch resolves them (core/servers.ts), with what the
 * worker reported rejected passed on with the token it held (from the metadata it sent), so an
 * OAuth token is refreshed once, and every server that is not `ready` listed as `unavailable`
 * with its code.
 */
export async function renewalServers(
  resolve: ServerResolver,
  input: {
    tenant: TenantRecord;
    user: UserRecord;
    origin: SessionOrigin;
    rejected: RejectedServer[];
    held: McpServerGrant[];
  },
): Promise<ResolvedServers> {
  const rejected = new Map<string, RejectionReport>();
  for (const r of input.rejected) {
    const held = bearerOf(input.held.find((g) => g.name === r.name));
    rejected.set(r.name, {
      status: r.status,
      ...(r.scope === undefined ? {} : { scope: r.scope }),
      ...(held === undefined ? {} : { held }),
    });
  }
  const resolved = await resolve({ tenant: input.tenant, user: input.user, origin: input.origin, rejected });
  return {
    grants: resolved.grants,
    unavailable: resolved.states.flatMap((s) =>
      s.status === 'ready' ? [] : [{ name: s.name, status: s.status, code: unavailableCode(s) }],
    ),
  };
}

/** Everything a {@link RenewalService} is built from. */
export interface RenewalDeps {
  store: CredentialsStore;
  /** The dispatch keyring: opens metadata and verifies worker assertions. */
  dispatchKeys: Keyring;
  sealer: DispatchSealer;
  resolveServers: ServerResolver;
  clock: () => Date;
  log: Log;
  config: {
    metadataTtlSeconds: number;
    credentialsRefreshSeconds: number;
    /** Read at each call: the local server learns its port after it listens. */
    publicBaseUrl: string | undefined;
  };
}

/** `POST /v1/worker/credentials` (docs/api.md §9), in two steps so the body is read in between. */
export interface RenewalService {
  /** Checks the bearer worker assertion's signature, `kid`, `aud`, lifetime (no I/O). */
  verifyAssertion(authorization: string | undefined): Promise<WorkerAssertionClaims>;
  /** Uses the assertion's `jti`, then renews the metadata's session. */
  renew(
    assertion: WorkerAssertionClaims,
    body: { metadata: string; rejected: RejectedServer[] },
  ): Promise<{ metadata: string }>;
}

const invalidAssertion = (reason: string) =>
  new DomainError('invalid_worker_assertion', 'The worker assertion was refused.', { details: { reason } });
const invalidMetadata = (reason: string) =>
  new DomainError('invalid_metadata', 'The sealed metadata was refused.', { details: { reason } });
const sessionEnded = () => new DomainError('session_ended', 'The session has ended; end the job.');

/** Creates the {@link RenewalService}. */
export function createRenewalService(deps: RenewalDeps): RenewalService {
  const { store, sealer, clock, log, config } = deps;
  const open = createMetadataOpener(deps.dispatchKeys);
  const refreshUrl = () => {
    const url = refreshUrlOf(config);
    if (url === undefined) throw new DomainError('invalid_config', 'PUBLIC_BASE_URL is not configured.');
    return url;
  };

  /**
   * The session named by `sid`, read strongly consistent through its pointer, with whether it, its
   * user and its tenant are active. The pointer names all three, so they are read in one round trip.
   */
  async function sessionOf(
    sid: string,
  ): Promise<{ pointer: SessionPointer; session: SessionRecord; active: boolean }> {
    const pointer = await store.sessionPointer(sid);
    // No session of ours has this id: the metadata was not sealed by a dispatch of this system.
    if (pointer === undefined) throw invalidMetadata('mismatch');
    const live = await readLive(pointer);
    const session = live.session;
    if (session === undefined) {
      const age = (clock().getTime() - Date.parse(pointer.created_at)) / 1000;
      // The dispatch exists a moment before its session record (dispatch-saga.ts, steps 6-7).
      if (age < SESSION_BEING_CREATED_SECONDS) {
        throw new DomainError('store_unavailable', 'The session is still being created; retry shortly.');
      }
      throw sessionEnded();
    }
    if (session.sid !== sid) throw invalidMetadata('mismatch');
    return { pointer, session, active: activeOf(live, pointer, sid) !== undefined };
  }

  /** The session a pointer names, its user and its tenant: strongly consistent, in parallel. */
  async function readLive(pointer: SessionPointer): Promise<Live> {
    const [session, user, tenant] = await Promise.all([
      store.getSession(pointer),
      store.getUser(pointer.tenant_id, pointer.user_id),
      store.getTenant(pointer.tenant_id),
    ]);
    return { session, user, tenant };
  }

  /** The user and tenant while the session and both are active. */
  function activeOf(
    { session, user, tenant }: Live,
    pointer: SessionPointer,
    sid: string,
  ): { user: UserRecord; tenant: TenantRecord } | undefined {
    const active =
      session?.status === 'active' &&
      session.sid === sid &&
      tenant?.status === 'active' &&
      user?.status === 'active' &&
      user.tenant_id === pointer.tenant_id;
    return active ? { user: user!, tenant: tenant! } : undefined;
  }

  /** The user and tenant while the session and both are still active (read again). */
  const stillActive = async (pointer: SessionPointer, sid: string) =>
    activeOf(await readLive(pointer), pointer, sid);

  return {
    async verifyAssertion(authorization) {
      const match = /^Bearer ([^\s]+)$/.exec(authorization ?? '');
      if (match === null) throw invalidAssertion('malformed');
      try {
        return await verifyWorkerAssertion(match[1]!, {
          keyring: deps.dispatchKeys,
          audience: refreshUrl(),
          now: clock().getTime() / 1000,
        });
      } catch (err) {
        if (err instanceof WorkerAssertionError) throw invalidAssertion(err.reason);
        throw err;
      }
    },

    async renew(assertion, body) {
      // 1. The assertion's jti, once: the first write, so a replayed assertion gets nothing.
      if (!(await store.useAssertionJti(assertion.sub, assertion.jti, assertion.exp))) {
        throw invalidAssertion('replayed');
      }

      // 2. The metadata, opened as a worker would; its job-bound checks come from the record.
      let claims: Awaited<ReturnType<typeof open>>;
      try {
        claims = await open(body.metadata);
      } catch (err) {
        if (err instanceof MetadataRefusedError) throw invalidMetadata(err.code);
        throw err;
      }
      if (claims.sid === undefined) throw invalidMetadata('malformed');
      if (assertion.sub !== claims.sid) throw invalidAssertion('wrong_subject');
      const sid = claims.sid;

      // 3. The session record decides tenant, user, room, pid and agent (docs/api.md §9): anyone
      // with the dispatch keyring can forge metadata, but not a session record. The session's
      // rate window is read meanwhile (a read, keyed by the checked sid), so that step 4 admits
      // with one conditional write.
      const [{ pointer, session, active }, rateRead] = await Promise.all([
        sessionOf(sid),
        store.renewalRateWindow(sid),
      ]);
      if (claims.aud !== session.agent_name) throw invalidMetadata('wrong_audience');
      if (claims.room !== session.room_name) throw invalidMetadata('wrong_room');
      if (
        claims.pid !== session.participant_identity ||
        claims.sub !== session.user_id ||
        claims.tid !== session.tenant_id
      )
        throw invalidMetadata('mismatch');
      if (assertion.iss !== session.agent_name) throw invalidAssertion('wrong_issuer');
      // `expired` is accepted while the session is active: a job LiveKit restarts has only its
      // original metadata. An ended session answers here, whatever the metadata's age; so does one
      // whose user or tenant is no longer active, before anything but the jti is written.
      if (!active) throw sessionEnded();

      // 4. The rate counter: refused, nothing more is written.
      if (!(await store.hitRenewalRate(sid, RENEWALS_PER_MINUTE, rateRead))) {
        throw new DomainError('rate_limited', 'Too many renewals of this session; retry in a minute.');
      }

      // 5. The check after the writes (write-then-check, docs/api.md §10): the session, its user
      // and its tenant, re-read strongly consistent (R), after this renewal's jti and rate writes.
      // A revoke writes the user's status (W_u), then ends the session (W_s) and releases its
      // lease, then answers. The operations on each item are totally ordered. If R sees neither
      // W_u nor W_s, then R < W_u: this renewal was decided before the revoke's first write, hence
      // before it answered. Otherwise R sees a suspended user or an ended session and this
      // renewal answers 403. Suspending or deleting the tenant or user, and room_finished, write
      // the record this reads first too. The lease is extended meanwhile: the argument is about R
      // alone, and an extension is conditional on this holder's lease being there (Leases.extend),
      // so one that lands after the revoke released the lease writes nothing, and one that lands
      // before is released with it: a revoked session's lease is never brought back.
      const [live] = await Promise.all([
        stillActive(pointer, sid),
        session.lease_slot === undefined
          ? undefined
          : store
              .extendLease(
                session.tenant_id,
                session.lease_slot,
                holderOf(session.room_name, session.agent_name, session.participant_identity),
                2 * config.credentialsRefreshSeconds,
              )
              .then((extended) => {
                if (!extended)
                  log.warn('renewal found its lease lapsed or released', { tenant_id: session.tenant_id });
              }),
      ]);
      if (live === undefined) throw sessionEnded();
      const { user, tenant } = live;

      // 6. The servers, afresh, as a dispatch resolves them.
      const resolved = await renewalServers(deps.resolveServers, {
        tenant,
        user,
        origin: session.origin,
        rejected: body.rejected,
        held: claims.mcp_servers,
      });
      const rejected = new Set(body.rejected.map((r) => r.name));
      const grants: McpServerGrant[] = [];
      const unavailable = [...resolved.unavailable];
      for (const grant of resolved.grants) {
        // A rejected OAuth token was refreshed by the resolver; any other rejected credential
        // would be sealed unchanged, so it is left out (docs/api.md §9).
        if (rejected.has(grant.name) && (grant.auth ?? 'static') !== 'oauth') {
          unavailable.push({ name: grant.name, status: 'unavailable', code: 'mcp_auth_rejected' });
        } else {
          grants.push(grant);
        }
      }

      const sealed = await sealer.seal({
        agentName: session.agent_name,
        userId: session.user_id,
        tenantId: session.tenant_id,
        roomName: session.room_name,
        participantIdentity: session.participant_identity,
        mcpServers: grants,
        ttlSeconds: config.metadataTtlSeconds,
        ...(claims.client === undefined ? {} : { client: claims.client }),
        sid,
        refresh: { url: refreshUrl(), seconds: config.credentialsRefreshSeconds },
        unavailable,
      });
      log.info('credentials renewed', {
        tenant_id: session.tenant_id,
        room: session.room_name,
        servers: grants.length,
        unavailable: unavailable.length,
      });
      return { metadata: sealed.metadata };
    },
  };
}
