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
import type { LiveKitGateway } from '../core/ports.js';

export type { DispatchInfo, LiveKitGateway } from '../core/ports.js';

/** Options of {@link createLiveKitGateway}. */
export interface LiveKitGatewayOptions {
  /** LiveKit server URL, `http(s)://` or `ws(s)://` (the SDK maps ws to http). */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  /**
   * Per-call timeout in SECONDS (the SDK's unit), default 4, at most 10. Failover is off, so one
   * HTTP call never takes longer than this. A session's worst case (CreateDispatch, then
   * ListRooms + ListDispatch + DeleteDispatch to clean up) is 4 × timeout: 16 s by default,
   * well inside API Gateway's 30 s.
   */
  requestTimeoutSeconds?: number;
}

/** Largest per-call timeout accepted, in seconds. */
export const MAX_LIVEKIT_TIMEOUT_SECONDS = 10;

/** Creates the production {@link LiveKitGateway} over livekit-server-sdk. */
export function createLiveKitGateway(options: LiveKitGatewayOptions): LiveKitGateway {
  const { httpUrl, apiKey, apiSecret } = options;
  const requestTimeout = options.requestTimeoutSeconds ?? 4;
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

  /**
   * Runs one SDK call: any error becomes {@link LiveKitUnavailableError}; when `onMissing` is
   * given, a `not_found` answer resolves to its value instead (the thing is already gone).
   */
  async function guard<T>(rpc: string, call: () => Promise<T>, onMissing?: { notFound: T }): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (onMissing && isNotFound(err)) return onMissing.notFound;
      throw new LiveKitUnavailableError({ cause: toCallError(rpc, err, requestTimeout) });
    }
  }

  return {
    async createDispatch(room, agentName, metadata) {
      const rpc = 'AgentDispatchService/CreateDispatch';
      const dispatch = await guard(rpc, () => dispatchClient.createDispatch(room, agentName, { metadata }));
      if (!dispatch.id) {
        throw new LiveKitUnavailableError({
          cause: new LiveKitCallError(rpc, 'answered without a dispatch id'),
        });
      }
      return { dispatchId: dispatch.id };
    },

    async listDispatches(room) {
      // LiveKit answers ListDispatch for a room it does not host with 503 "no response from
      // servers", after a 3 s wait; asking whether the room exists first is one fast call.
      const rooms = await guard('RoomService/ListRooms', () => roomClient.listRooms([room]));
      if (!rooms.some((r) => r.name === room)) return [];
      const list = () => dispatchClient.listDispatch(room);
      const dispatches = await guard('AgentDispatchService/ListDispatch', list, { notFound: [] });
      return dispatches.map((d) => ({ id: d.id, agentName: d.agentName, metadata: d.metadata }));
    },

    async deleteDispatch(dispatchId, room) {
      const remove = () => dispatchClient.deleteDispatch(dispatchId, room);
      await guard('AgentDispatchService/DeleteDispatch', remove, { notFound: undefined });
    },

    async deleteRoom(room) {
      await guard('RoomService/DeleteRoom', () => roomClient.deleteRoom(room), { notFound: undefined });
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

/**
 * What went wrong in one LiveKit call, safe to log: status, Twirp code and a message with any
 * JWT removed (LiveKit echoes a refused token in its 401 body).
 */
export class LiveKitCallError extends Error {
  /** The RPC, e.g. `AgentDispatchService/CreateDispatch`. */
  readonly rpc: string;
  /** HTTP status LiveKit answered, when it answered. */
  readonly status: number | undefined;
  /** Twirp error code, when LiveKit sent one. */
  readonly twirpCode: string | undefined;

  constructor(rpc: string, message: string, details: { status?: number; twirpCode?: string } = {}) {
    super(`${rpc}: ${message}`);
    this.name = 'LiveKitCallError';
    this.rpc = rpc;
    this.status = details.status;
    this.twirpCode = details.twirpCode;
  }
}

const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

function redact(text: string): string {
  return text.replace(JWT_LIKE, '[jwt]').slice(0, 300);
}

/** The SDK's error as a {@link LiveKitCallError}; the original is dropped because it may hold a token. */
function toCallError(rpc: string, err: unknown, timeoutSeconds: number): LiveKitCallError {
  if (err instanceof ServerError) {
    return new LiveKitCallError(
      rpc,
      `HTTP ${err.status}${err.code ? ` ${err.code}` : ''}: ${redact(err.message)}`,
      {
        status: err.status,
        twirpCode: err.code,
      },
    );
  }
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      return new LiveKitCallError(rpc, `no answer within ${timeoutSeconds} s`);
    }
    if (err instanceof SyntaxError) return new LiveKitCallError(rpc, 'the answer is not the expected JSON');
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    return new LiveKitCallError(
      rpc,
      `${err.name}: ${redact(err.message)}${typeof code === 'string' ? ` (${code})` : ''}`,
    );
  }
  return new LiveKitCallError(rpc, 'failed');
}

/** True for a Twirp `not_found` answer (HTTP 404). */
function isNotFound(err: unknown): boolean {
  return err instanceof ServerError && (err.status === 404 || err.code === 'not_found');
}
