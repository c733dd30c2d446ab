import { createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { AccessToken, WebhookEvent } from 'livekit-server-sdk';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { createLiveKitGateway, type LiveKitGateway } from '../../functions/adapters/livekit.js';
import { generateKeyringJson, type Keyring, parseKeyring } from '../../functions/core/keyring.js';
import type { Log } from '../../functions/core/log.js';
import type {
  DispatchPolicy,
  Status,
  StoredMcp,
  TenantRecord,
  Transport,
  UserRecord,
} from '../../functions/core/model.js';
import type { Store } from '../../functions/core/ports.js';
import { originOf } from '../../functions/core/resolve.js';
import {
  createDispatchSealer,
  createSecretBox,
  type DispatchSealer,
  type SecretBox,
} from '../../functions/core/sealing.js';
import { startDynalite, type TestDynamo } from './dynalite.js';
import { type JwksServer, startJwksServer } from './jwks-server.js';
import { type LiveKitStandIn, startLiveKitStandIn } from './livekit-standin.js';

/** A fresh id per call, so tests that share a table never see each other's records. */
let seq = 0;
export function uid(prefix: string): string {
  seq += 1;
  return `${prefix}${seq}${randomUUID().replace(/-/g, '').slice(0, 8)}`;
}

/** A keyring with one fresh random key (`kid`), parsed. */
export function testKeyring(kid: string): Keyring {
  const { keyring } = parseKeyring(kid, generateKeyringJson(kid));
  return keyring!;
}

/** MCP settings to seed, in clear: the token and headers are sealed on the way in. */
export interface SeedMcp {
  url?: string;
  token?: string;
  headers?: Record<string, string>;
  transport?: Transport;
  allowed_tools?: string[];
  name?: string;
}

/** A tenant to seed; everything but the id has a default. */
export interface SeedTenant {
  tenant_id?: string;
  name?: string;
  agent_names?: string[];
  max_concurrent_sessions?: number;
  webhook_dispatch?: boolean;
  sip_trunk_ids?: string[];
  dispatch_policy?: DispatchPolicy;
  status?: Status;
  mcp?: SeedMcp;
}

/** A user to seed. */
export interface SeedUser {
  tenant_id: string;
  user_id?: string;
  phone_numbers?: string[];
  status?: Status;
  mcp?: SeedMcp;
}

/** Seals seed MCP settings as the admin API stores them (token/headers bound to their owner). */
export async function storedMcp(
  box: SecretBox,
  owner: { tenantId: string; userId: string },
  mcp: SeedMcp,
): Promise<StoredMcp> {
  const stored: StoredMcp = {};
  if (mcp.url !== undefined) stored.url = mcp.url;
  if (mcp.transport !== undefined) stored.transport = mcp.transport;
  if (mcp.allowed_tools !== undefined) stored.allowed_tools = mcp.allowed_tools;
  if (mcp.name !== undefined) stored.name = mcp.name;
  if (mcp.token !== undefined) {
    stored.token_sealed = await box.seal(mcp.token, { ...owner, field: 'token' });
    stored.token_fingerprint = box.fingerprint(mcp.token);
  }
  if (mcp.headers !== undefined) {
    stored.headers_sealed = await box.seal(JSON.stringify(mcp.headers), { ...owner, field: 'headers' });
    stored.header_names = Object.keys(mcp.headers);
  }
  const origin = originOf(mcp.url);
  if ((mcp.token !== undefined || mcp.headers !== undefined) && origin !== undefined) {
    stored.credentials_origin = origin;
  }
  return stored;
}

/** Creates a tenant through the store; returns the stored record. */
export async function seedTenant(store: Store, box: SecretBox, seed: SeedTenant = {}): Promise<TenantRecord> {
  const tenantId = seed.tenant_id ?? uid('t');
  const now = new Date().toISOString();
  const record: TenantRecord = {
    tenant_id: tenantId,
    name: seed.name ?? `Tenant ${tenantId}`,
    dispatch_policy: seed.dispatch_policy ?? 'per_room',
    agent_names: seed.agent_names ?? [],
    status: seed.status ?? 'active',
    webhook_dispatch: seed.webhook_dispatch ?? false,
    sip_trunk_ids: seed.sip_trunk_ids ?? [],
    version: 0,
    created_at: now,
    updated_at: now,
    ...(seed.max_concurrent_sessions === undefined
      ? {}
      : { max_concurrent_sessions: seed.max_concurrent_sessions }),
    ...(seed.mcp === undefined ? {} : { mcp: await storedMcp(box, { tenantId, userId: '' }, seed.mcp) }),
  };
  return store.createTenant(record);
}

/** Creates a user through the store; returns the stored record. */
export async function seedUser(store: Store, box: SecretBox, seed: SeedUser): Promise<UserRecord> {
  const userId = seed.user_id ?? uid('u');
  const now = new Date().toISOString();
  const record: UserRecord = {
    tenant_id: seed.tenant_id,
    user_id: userId,
    phone_numbers: seed.phone_numbers ?? [],
    status: seed.status ?? 'active',
    version: 0,
    created_at: now,
    updated_at: now,
    ...(seed.mcp === undefined
      ? {}
      : { mcp: await storedMcp(box, { tenantId: seed.tenant_id, userId }, seed.mcp) }),
  };
  return store.createUser(record);
}

/** LiveKit credentials of the test harness. */
export const TEST_LIVEKIT = {
  apiKey: 'APItestkey',
  apiSecret: 'test-secret-0123456789abcdef0123456789abcdef',
};

/** Real local servers and the adapters over them, as the functions are composed. */
export interface Harness {
  db: TestDynamo;
  livekitServer: LiveKitStandIn;
  jwks: JwksServer;
  store: DynamoStore;
  gateway: LiveKitGateway;
  dispatchKeys: Keyring;
  storageKeys: Keyring;
  sealer: DispatchSealer;
  secretBox: SecretBox;
  stop(): Promise<void>;
}

/**
 * Starts dynalite, the LiveKit stand-in and a JWKS server on loopback and builds the store,
 * gateway (1 s LiveKit timeout), sealer and secret box over them.
 */
export async function startHarness(options: { livekitTimeoutSeconds?: number } = {}): Promise<Harness> {
  const [db, livekitServer, jwks] = await Promise.all([
    startDynalite(),
    startLiveKitStandIn(TEST_LIVEKIT),
    startJwksServer(),
  ]);
  const store = new DynamoStore({ client: db.client, tableName: db.tableName });
  const gateway = createLiveKitGateway({
    httpUrl: livekitServer.url,
    ...TEST_LIVEKIT,
    requestTimeoutSeconds: options.livekitTimeoutSeconds ?? 1,
  });
  const dispatchKeys = testKeyring('dispatch-test');
  const storageKeys = testKeyring('storage-test');
  return {
    db,
    livekitServer,
    jwks,
    store,
    gateway,
    dispatchKeys,
    storageKeys,
    sealer: createDispatchSealer(dispatchKeys),
    secretBox: createSecretBox(storageKeys),
    async stop() {
      await Promise.all([db.stop(), livekitServer.stop(), jwks.stop()]);
    },
  };
}

/**
 * A store on the harness's table reached through `endpoint` (a hold proxy in front of dynalite):
 * one attempt, so a held request is never retried behind the test's back.
 */
export function storeOver(h: Harness, endpoint: string): DynamoStore {
  return new DynamoStore({
    client: createDynamoClient({ endpoint, requestTimeoutMs: 10_000, maxAttempts: 1 }),
    tableName: h.db.tableName,
  });
}

/** LiveKit API credentials a webhook is signed with. */
export interface WebhookCredentials {
  apiKey: string;
  apiSecret: string;
}

/** A webhook delivery as LiveKit sends it: the JSON body and its `Authorization` header. */
export interface SignedWebhook {
  body: string;
  authorization: string;
}

/** `ParticipantInfo.Kind` names as LiveKit writes them in webhook JSON. */
export type ParticipantKindName = 'STANDARD' | 'INGRESS' | 'EGRESS' | 'SIP' | 'AGENT' | 'CONNECTOR';

/**
 * Signs a body exactly as LiveKit's webhook notifier does: an access token from the API key
 * and secret whose `sha256` claim is the base64 SHA-256 of the body, sent as the bare
 * `Authorization` header (no `Bearer`), valid for 5 minutes.
 */
export async function signWebhookBody(body: string, credentials: WebhookCredentials): Promise<SignedWebhook> {
  const token = new AccessToken(credentials.apiKey, credentials.apiSecret, { ttl: '5m' });
  token.sha256 = createHash('sha256').update(body).digest('base64');
  return { body, authorization: await token.toJwt() };
}

/** Signs like {@link signWebhookBody} but with an `exp` already in the past. */
export async function signExpiredWebhookBody(
  body: string,
  credentials: WebhookCredentials,
): Promise<SignedWebhook> {
  const now = Math.floor(Date.now() / 1000);
  const authorization = await new SignJWT({ sha256: createHash('sha256').update(body).digest('base64') })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(credentials.apiKey)
    .setNotBefore(now - 3600)
    .setExpirationTime(now - 600)
    .sign(new TextEncoder().encode(credentials.apiSecret));
  return { body, authorization };
}

/** Options of {@link participantJoined}. */
export interface ParticipantJoinedOptions {
  id?: string;
  roomName: string;
  roomSid?: string;
  identity: string;
  kind?: ParticipantKindName;
  attributes?: Record<string, string>;
}

/** A `participant_joined` event body as LiveKit serialises it (protojson). */
export function participantJoined(options: ParticipantJoinedOptions): string {
  return eventJson({
    event: 'participant_joined',
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: options.roomSid ?? roomSidOf(options.roomName), name: options.roomName },
    participant: {
      sid: `PA_${randomUUID().slice(0, 12)}`,
      identity: options.identity,
      kind: options.kind ?? 'STANDARD',
      state: 'ACTIVE',
      attributes: options.attributes ?? {},
    },
  });
}

/** A `room_finished` event body. */
export function roomFinished(options: { id?: string; roomName: string; roomSid?: string }): string {
  return eventJson({
    event: 'room_finished',
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: options.roomSid ?? roomSidOf(options.roomName), name: options.roomName },
  });
}

/** Any other event, e.g. `track_published`. */
export function otherEvent(event: string, options: { id?: string; roomName: string }): string {
  return eventJson({
    event,
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: roomSidOf(options.roomName), name: options.roomName },
  });
}

/** A stable room sid for a room name, as tests do not care which. */
export function roomSidOf(roomName: string): string {
  return `RM_${createHash('sha256').update(roomName).digest('hex').slice(0, 12)}`;
}

function eventJson(json: Record<string, unknown>): string {
  // Round-trips through the SDK's event type so the body is what LiveKit's protojson writes.
  const event = WebhookEvent.fromJson(
    { ...json, createdAt: String(Math.floor(Date.now() / 1000)) } as never,
    { ignoreUnknownFields: false },
  );
  return event.toJsonString();
}

/** A log that keeps every line (message and metadata), to assert that no secret is ever logged. */
export function recordingLog(): { log: Log; lines: string[] } {
  const lines: string[] = [];
  const make = (keys: Record<string, unknown>): Log => {
    const write = (level: string) => (message: string, meta?: Record<string, unknown>) => {
      lines.push(JSON.stringify({ level, message, ...keys, ...meta }));
    };
    return {
      debug: write('debug'),
      info: write('info'),
      warn: write('warn'),
      error: write('error'),
      child: (more) => make({ ...keys, ...more }),
    };
  };
  return { log: make({}), lines };
}

/** A log that keeps only its error lines (message and metadata) in `lines`. */
export function errorLinesLog(lines: string[]): Log {
  const log: Log = {
    debug() {},
    info() {},
    warn() {},
    error(message, meta) {
      lines.push(JSON.stringify({ message, ...meta }));
    },
    child() {
      return log;
    },
  };
  return log;
}
