import { decodeJwt } from 'jose';
import {
  AccessToken,
  AgentDispatchClient,
  RoomAgentDispatch,
  RoomConfiguration,
  RoomServiceClient,
  ServerError,
} from 'livekit-server-sdk';
import { ConfigError, LiveKitUnavailableError } from '../core/errors.js';

/** One agent dispatch as LiveKit reports it. */
export interface DispatchInfo {
  id: string;
  agentName: string;
  metadata: string;
}

/** What a participant token carries. Grants are fixed: join this room, publish, subscribe, data. */
export interface ParticipantTokenInput {
  identity: string;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
  room: string;
  ttlSeconds: number;
  /** Agents LiveKit dispatches when the room is created by this participant (token dispatch mode). */
  agents?: { agentName: string; metadata: string }[];
}

/**
 * The LiveKit calls the functions make. Every failure (HTTP error, timeout, reset, a body that
 * is not the expected JSON) rejects with {@link LiveKitUnavailableError}, the SDK error as cause.
 */
export interface LiveKitGateway {
  /** AgentDispatchService.CreateDispatch; LiveKit creates the room when it does not exist. */
  createDispatch(room: string, agentName: string, metadata: string): Promise<{ dispatchId: string }>;
  /** AgentDispatchService.ListDispatch for one room; a room LiveKit does not know has none. */
  listDispatches(room: string): Promise<DispatchInfo[]>;
  /** AgentDispatchService.DeleteDispatch; a dispatch (or room) that is already gone is success. */
  deleteDispatch(dispatchId: string, room: string): Promise<void>;
  /** RoomService.DeleteRoom; a room that does not exist is success. */
  deleteRoom(room: string): Promise<void>;
  /** Signs a participant token (HS256 with the API secret); `expiresAt` is its `exp`. */
  participantToken(input: ParticipantTokenInput): Promise<{ token: string; expiresAt: Date }>;
}

/** Options of {@link createLiveKitGateway}. */
export interface LiveKitGatewayOptions {
  /** LiveKit server URL, `http(s)://` or `ws(s)://` (the SDK maps ws to http). */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  /**
   * Per-call timeout in SECONDS (the SDK's unit), default 5, at most 10. Failover is off, so one
   * call never takes longer than this: a session's worst case (create, then list + delete to
   * clean up) stays at 3 × timeout, well inside API Gateway's 30 s.
   */
  requestTimeoutSeconds?: number;
}

/** Largest per-call timeout accepted, in seconds. */
export const MAX_LIVEKIT_TIMEOUT_SECONDS = 10;

/** Creates the production {@link LiveKitGateway} over livekit-server-sdk. */
export function createLiveKitGateway(options: LiveKitGatewayOptions): LiveKitGateway {
  const { httpUrl, apiKey, apiSecret } = options;
  const requestTimeout = options.requestTimeoutSeconds ?? 5;
  const problems: string[] = [];
  if (!(requestTimeout > 0 && requestTimeout <= MAX_LIVEKIT_TIMEOUT_SECONDS)) {
    problems.push(`LiveKit request timeout must be more than 0 and at most ${MAX_LIVEKIT_TIMEOUT_SECONDS} s`);
  }
  if (!apiKey || !apiSecret) problems.push('LiveKit API key and secret are required');
  if (problems.length > 0) throw new ConfigError(problems);

  // Failover retries other LiveKit Cloud regions up to 3 times per call, which would multiply
  // the budget; a failed call is retried by the client instead.
  const clientOptions = { requestTimeout, failover: false };
  const dispatchClient = new AgentDispatchClient(httpUrl, apiKey, apiSecret, clientOptions);
  const roomClient = new RoomServiceClient(httpUrl, apiKey, apiSecret, clientOptions);

  return {
    async createDispatch(room, agentName, metadata) {
      const dispatch = await guard(() => dispatchClient.createDispatch(room, agentName, { metadata }));
      if (!dispatch.id) {
        throw new LiveKitUnavailableError({
          cause: new Error('CreateDispatch answered without a dispatch id'),
        });
      }
      return { dispatchId: dispatch.id };
    },

    async listDispatches(room) {
      const dispatches = await guard(() => dispatchClient.listDispatch(room), { notFound: [] });
      return dispatches.map((d) => ({ id: d.id, agentName: d.agentName, metadata: d.metadata }));
    },

    async deleteDispatch(dispatchId, room) {
      await guard(() => dispatchClient.deleteDispatch(dispatchId, room), { notFound: undefined });
    },

    async deleteRoom(room) {
      await guard(() => roomClient.deleteRoom(room), { notFound: undefined });
    },

    async participantToken(input) {
      const at = new AccessToken(apiKey, apiSecret, {
        identity: input.identity,
        name: input.name,
        metadata: input.metadata,
        attributes: input.attributes,
        ttl: input.ttlSeconds,
      });
      at.addGrant({
        roomJoin: true,
        room: input.room,
        canPublish: true,
        canSubscribe: true,
        canPublishData: true,
      });
      if (input.agents && input.agents.length > 0) {
        at.roomConfig = new RoomConfiguration({
          agents: input.agents.map(
            (a) => new RoomAgentDispatch({ agentName: a.agentName, metadata: a.metadata }),
          ),
        });
      }
      const token = await at.toJwt();
      const { exp } = decodeJwt(token);
      return { token, expiresAt: new Date((exp ?? 0) * 1000) };
    },
  };
}

/** True for a Twirp `not_found` answer (HTTP 404). */
function isNotFound(err: unknown): boolean {
  return err instanceof ServerError && (err.status === 404 || err.code === 'not_found');
}

/**
 * Runs one SDK call: any error becomes {@link LiveKitUnavailableError}; when `notFound` is given,
 * a `not_found` answer resolves to it instead (the thing is already gone).
 */
async function guard<T>(call: () => Promise<T>, onMissing?: { notFound: T }): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (onMissing && isNotFound(err)) return onMissing.notFound;
    throw new LiveKitUnavailableError({ cause: err });
  }
}
