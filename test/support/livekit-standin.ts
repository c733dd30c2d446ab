import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, type JWTPayload, jwtVerify } from 'jose';
import { AgentDispatch } from 'livekit-server-sdk';

/** One request the stand-in received. */
export interface Call {
  /** Request path, e.g. `/twirp/livekit.AgentDispatchService/CreateDispatch`. */
  path: string;
  /** `Service/Method`, e.g. `AgentDispatchService/CreateDispatch`, or `''` for other paths. */
  rpc: string;
  /** Parsed JSON body, or the raw text when it did not parse. */
  body: unknown;
  /** Whether the Bearer JWT verified and carried the grants this call needs. */
  authOk: boolean;
  /** Why authentication failed, when it did. */
  authReason?: string;
  /** The `video` grant of a verified token. */
  grants?: Record<string, unknown>;
  /** HTTP status answered; `0` when the stand-in hung or reset the connection. */
  status: number;
}

/** A dispatch as the stand-in holds it. */
export interface StandInDispatch {
  id: string;
  room: string;
  agentName: string;
  metadata: string;
  createdAt: Date;
}

/**
 * How the next calls fail: HTTP 503; no answer until stop; socket destroyed; 200 with a non-JSON
 * body; or `apply-then-hang`: the call takes effect (a dispatch is created) but no answer comes,
 * like a CreateDispatch that timed out on the client after LiveKit did it.
 */
export type FailMode = '503' | 'hang' | 'reset' | 'garbage' | 'apply-then-hang';

/** A running stand-in. */
export interface LiveKitStandIn {
  /** `http://127.0.0.1:<port>`, to pass as the LiveKit URL. */
  url: string;
  /** Every request so far, in order. */
  calls: Call[];
  /** Current dispatches, all rooms. */
  readonly dispatches: StandInDispatch[];
  /** Rooms that currently exist (created by a dispatch or {@link LiveKitStandIn.addRoom}). */
  readonly rooms: string[];
  /** Makes a room exist, as if a participant had joined it. */
  addRoom(room: string): void;
  /** The next `n` requests fail with `mode` (they are still recorded). */
  failNext(n: number, mode: FailMode): void;
  /** Forgets calls, dispatches, rooms and pending failures. */
  reset(): void;
  /** Closes the server and every connection, hung ones included. */
  stop(): Promise<void>;
}

const PREFIX = '/twirp/livekit.';

/** Twirp error codes LiveKit answers with, and their HTTP statuses. */
const TWIRP_STATUS: Record<string, number> = {
  invalid_argument: 400,
  malformed: 400,
  unauthenticated: 401,
  not_found: 404,
  bad_route: 404,
  internal: 500,
  unavailable: 503,
};

/** A non-Twirp answer (LiveKit's auth middleware writes plain text). */
class PlainFailure extends Error {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {
    super(text);
  }
}

class TwirpFailure extends Error {
  constructor(
    readonly twirpCode: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts a LiveKit stand-in on 127.0.0.1 (random port) that speaks the Twirp JSON of
 * `AgentDispatchService` (CreateDispatch, ListDispatch, DeleteDispatch) and `RoomService`
 * (DeleteRoom, ListRooms) as livekit-server-sdk sends it, and verifies each Bearer JWT like
 * LiveKit: HS256 with the API secret, `iss` = API key, not expired, and the call's grants
 * (`roomAdmin` + `room` for dispatch calls, `roomCreate` for DeleteRoom, `roomList` for
 * ListRooms). Answers, errors included, are shaped as livekit-server v1.13.5 writes them
 * (checked against it): protojson with proto field names and default values; 401 "permissions
 * denied" for a missing grant; a text/plain 401 echoing a token that does not verify; 503
 * "no response from servers" for dispatch calls on a room that does not exist; 404 `not_found`
 * for an unknown dispatch id or room. Unlike LiveKit it adds no automatic dispatch (agent
 * name "") to a new room and never closes empty rooms.
 */
export async function startLiveKitStandIn(options: {
  apiKey: string;
  apiSecret: string;
}): Promise<LiveKitStandIn> {
  const secret = new TextEncoder().encode(options.apiSecret);
  const calls: Call[] = [];
  let dispatches: StandInDispatch[] = [];
  let rooms = new Set<string>();
  let failures: { left: number; mode: FailMode } = { left: 0, mode: '503' };

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const rpc = path.startsWith(PREFIX) ? path.slice(PREFIX.length).replace('.', '/') : '';
    const text = await readBody(req);
    let body: unknown = text;
    try {
      body = text.length > 0 ? JSON.parse(text) : {};
    } catch {
      // kept as text; answered below as malformed
    }
    const call: Call = { path, rpc, body, authOk: false, status: 0 };
    calls.push(call);

    let answer = true;
    if (failures.left > 0) {
      failures.left -= 1;
      switch (failures.mode) {
        case 'apply-then-hang':
          answer = false;
          break;
        case 'hang':
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'garbage':
          call.status = 200;
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html>upstream gateway</html>');
          return;
        case '503':
          sendError(res, call, 'unavailable', 'service unavailable');
          return;
      }
    }

    try {
      if (req.method !== 'POST' || rpc === '') throw new TwirpFailure('bad_route', `no handler for ${path}`);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new TwirpFailure('malformed', 'the body is not a JSON object');
      }
      const input = body as Record<string, unknown>;
      const video = await authenticate(req.headers.authorization, call);
      const result = route(rpc, input, video, call);
      if (!answer) return;
      call.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
    } catch (err) {
      if (!answer) return;
      if (err instanceof TwirpFailure) sendError(res, call, err.twirpCode, err.message);
      else if (err instanceof PlainFailure) {
        call.status = err.status;
        res.writeHead(err.status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${err.text}\n`);
      } else sendError(res, call, 'internal', String(err));
    }
  }

  // Answers as livekit-server v1.13.5 does: a token that fails to verify gets a text/plain 401
  // echoing the token (which the gateway must keep out of its errors); a missing header or
  // grant gets a Twirp "permissions denied".
  async function authenticate(header: string | undefined, call: Call): Promise<Record<string, unknown>> {
    const match = /^Bearer (\S+)$/.exec(header ?? '');
    if (!match) throw authFailure(call, 'permissions denied');
    const token = match[1]!;
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      // left to jwtVerify below
    }
    if (typeof iss === 'string' && iss !== options.apiKey) {
      call.authReason = 'unknown API key';
      throw new PlainFailure(401, `invalid API key: ${iss}`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, secret, {
        issuer: options.apiKey,
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
        clockTolerance: 10,
      }));
    } catch (err) {
      call.authReason = `invalid token: ${(err as Error).message}`;
      throw new PlainFailure(401, `invalid token: ${token}, error: ${(err as Error).message}`);
    }
    const video = payload.video;
    return typeof video === 'object' && video !== null ? (video as Record<string, unknown>) : {};
  }

  function authFailure(call: Call, reason: string): TwirpFailure {
    call.authReason = reason;
    return new TwirpFailure('unauthenticated', 'permissions denied');
  }

  function requireGrant(call: Call, ok: boolean, what: string): void {
    if (!ok) throw authFailure(call, `permissions denied: needs ${what}`);
  }

  // LiveKit reaches a room's dispatches through the node hosting the room; for a room no node
  // hosts, the RPC finds no server.
  function requireHostedRoom(room: string): void {
    if (!rooms.has(room))
      throw new TwirpFailure('unavailable', 'twirp error unknown: no response from servers');
  }

  function route(
    rpc: string,
    input: Record<string, unknown>,
    video: Record<string, unknown>,
    call: Call,
  ): unknown {
    const room = field(input, 'room', 'room');
    switch (rpc) {
      case 'AgentDispatchService/CreateDispatch': {
        requireGrant(call, video.roomAdmin === true && video.room === room, 'roomAdmin for this room');
        passAuth(call, video);
        if (!room) throw new TwirpFailure('invalid_argument', 'room is required');
        const dispatch: StandInDispatch = {
          id: `AD_${randomBytes(9).toString('base64url')}`,
          room,
          agentName: field(input, 'agentName', 'agent_name'),
          metadata: field(input, 'metadata', 'metadata'),
          createdAt: new Date(),
        };
        rooms.add(room);
        dispatches.push(dispatch);
        return toProtoJson(dispatch);
      }
      case 'AgentDispatchService/ListDispatch': {
        requireGrant(call, video.roomAdmin === true && video.room === room, 'roomAdmin for this room');
        passAuth(call, video);
        requireHostedRoom(room);
        const id = field(input, 'dispatchId', 'dispatch_id');
        const found = dispatches.filter((d) => d.room === room && (id === '' || d.id === id));
        return { agent_dispatches: found.map(toProtoJson) };
      }
      case 'AgentDispatchService/DeleteDispatch': {
        requireGrant(call, video.roomAdmin === true && video.room === room, 'roomAdmin for this room');
        passAuth(call, video);
        requireHostedRoom(room);
        const id = field(input, 'dispatchId', 'dispatch_id');
        const found = dispatches.find((d) => d.room === room && d.id === id);
        if (!found) throw new TwirpFailure('not_found', 'twirp error unknown: dispatch ID not found');
        dispatches = dispatches.filter((d) => d !== found);
        return toProtoJson(found);
      }
      case 'RoomService/DeleteRoom': {
        requireGrant(call, video.roomCreate === true, 'roomCreate');
        passAuth(call, video);
        if (!rooms.has(room))
          throw new TwirpFailure('not_found', 'twirp error unknown: requested room does not exist');
        rooms.delete(room);
        dispatches = dispatches.filter((d) => d.room !== room);
        return {};
      }
      case 'RoomService/ListRooms': {
        requireGrant(call, video.roomList === true, 'roomList');
        passAuth(call, video);
        const names = Array.isArray(input.names) ? (input.names as string[]) : [];
        const listed = [...rooms].filter((r) => names.length === 0 || names.includes(r));
        return { rooms: listed.map((name) => ({ sid: `RM_${name}`, name })) };
      }
      default:
        throw new TwirpFailure('bad_route', `no handler for ${rpc}`);
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    get dispatches() {
      return dispatches.map((d) => ({ ...d }));
    },
    get rooms() {
      return [...rooms];
    },
    addRoom(room) {
      rooms.add(room);
    },
    failNext(n, mode) {
      failures = { left: n, mode };
    },
    reset() {
      calls.length = 0;
      dispatches = [];
      rooms = new Set();
      failures = { left: 0, mode: '503' };
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function passAuth(call: Call, video: Record<string, unknown>): void {
  call.authOk = true;
  call.grants = video;
}

/** Reads a string field that protojson accepts under its JSON name or its proto name. */
function field(input: Record<string, unknown>, jsonName: string, protoName: string): string {
  const v = input[jsonName] ?? input[protoName];
  return typeof v === 'string' ? v : '';
}

function toProtoJson(d: StandInDispatch): unknown {
  return new AgentDispatch({
    id: d.id,
    agentName: d.agentName,
    room: d.room,
    metadata: d.metadata,
    state: { createdAt: BigInt(d.createdAt.getTime()) * 1_000_000n, jobs: [] },
  }).toJson({ useProtoFieldName: true, emitDefaultValues: true });
}

function sendError(res: ServerResponse, call: Call, code: string, msg: string): void {
  const status = TWIRP_STATUS[code] ?? 500;
  call.status = status;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code, msg }));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
