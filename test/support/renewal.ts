import { randomBytes } from 'node:crypto';
import {
  createClaimsSealer,
  type DispatchClaims,
  makeWorkerAssertion,
  WORKER_ASSERTION_TYP,
  workerAssertionKey,
} from '@livekit-mcp-dispatch/contract';
import { SignJWT } from 'jose';
import { createDispatcher, type Dispatcher } from '../../functions/core/dispatcher.js';
import type { Keyring } from '../../functions/core/keyring.js';
import { silentLog } from '../../functions/core/log.js';
import { createMetadataOpener } from '../../functions/core/metadata-opener.js';
import type { SessionRecord } from '../../functions/core/model.js';
import type { Store } from '../../functions/core/ports.js';
import { newRoomName } from '../../functions/core/rooms.js';
import { createDispatchSealer } from '../../functions/core/sealing.js';
import { type CredentialsAppDeps, createCredentialsApp } from '../../functions/credentials/app.js';
import { type Harness, seedTenant, seedUser, uid } from './fixtures.js';

/** The public base URL renewal tests run under; the refresh_url is beneath it. */
export const TEST_BASE_URL = 'https://api.example.com';
export const TEST_REFRESH_URL = `${TEST_BASE_URL}/v1/worker/credentials`;
export const TEST_AGENT = 'mcp-agent';
export const TEST_MCP = { url: 'https://mcp.example.com/mcp', token: 'user-token-of-' };

/** A session app's dispatcher and the credentials app over one store, as the functions are composed. */
export interface RenewalRig {
  dispatcher: Dispatcher;
  app: ReturnType<typeof createCredentialsApp>;
  open: (metadata: string) => Promise<DispatchClaims>;
  forge: (claims: DispatchClaims) => Promise<string>;
}

/** Builds a {@link RenewalRig} over `store` (defaults: the harness store) with `clock`. */
export function renewalRig(
  h: Harness,
  options: {
    store?: Store;
    clock?: () => Date;
    metadataTtlSeconds?: number;
    credentialsRefreshSeconds?: number;
    /** The OAuth parts (docs/api.md §8): connections read and tokens refreshed as in the function. */
    oauth?: Pick<CredentialsAppDeps, 'connectionReader' | 'oauthTokens'>;
  } = {},
): RenewalRig {
  const clock = options.clock ?? (() => new Date());
  const store = options.store ?? h.store;
  const sealer = createDispatchSealer(h.dispatchKeys, clock);
  const config = {
    dispatchKeys: h.dispatchKeys,
    metadataTtlSeconds: options.metadataTtlSeconds ?? 7200,
    credentialsRefreshSeconds: options.credentialsRefreshSeconds ?? 900,
    publicBaseUrl: TEST_BASE_URL,
  };
  const dispatcher = createDispatcher({
    store,
    livekit: h.gateway,
    sealer,
    secretBox: h.secretBox,
    clock,
    log: silentLog,
    config: { ...config, defaultAgentName: TEST_AGENT, webhookRoomPrefix: 'lk-mcp-' },
  });
  const app = createCredentialsApp({
    store,
    sealer,
    secretBox: h.secretBox,
    config,
    clock,
    log: silentLog,
    ...options.oauth,
  });
  return {
    dispatcher,
    app,
    open: createMetadataOpener(h.dispatchKeys),
    forge: createClaimsSealer(h.dispatchKeys),
  };
}

/** A started session: its tenant, user, record and the metadata its dispatch carries. */
export interface Started {
  tenantId: string;
  userId: string;
  session: SessionRecord & { sid: string };
  metadata: string;
  claims: DispatchClaims;
}

/** Seeds a tenant and a user with an MCP token, then dispatches one session for them (api mode). */
export async function startSession(
  h: Harness,
  rig: RenewalRig,
  options: { maxConcurrentSessions?: number; tenantId?: string } = {},
): Promise<Started> {
  const tenantId =
    options.tenantId ??
    uid('t')
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
  const userId = uid('u');
  const tenant =
    options.tenantId === undefined
      ? await seedTenant(h.store, h.secretBox, {
          tenant_id: tenantId,
          ...(options.maxConcurrentSessions === undefined
            ? {}
            : { max_concurrent_sessions: options.maxConcurrentSessions }),
        })
      : (await h.store.getTenant(tenantId))!;
  await seedUser(h.store, h.secretBox, {
    tenant_id: tenantId,
    user_id: userId,
    mcp: { url: TEST_MCP.url, token: `${TEST_MCP.token}${userId}` },
  });
  const result = await rig.dispatcher.dispatch({
    tenant,
    userId,
    participantIdentity: userId,
    agentName: TEST_AGENT,
    roomName: newRoomName('lk-mcp-', tenantId, (n) => randomBytes(n)),
    perParticipant: false,
    freshRoom: true,
    mcpServers: [{ name: 'mcp', url: TEST_MCP.url, transport: 'streamable_http', headers: {} }],
    mode: 'api',
    origin: 'session',
  });
  if (result.status !== 'dispatched') throw new Error('not dispatched');
  const session = result.session as SessionRecord & { sid: string };
  return { tenantId, userId, session, metadata: result.metadata, claims: await rig.open(result.metadata) };
}

/** Options of one renewal call: the assertion's inputs and the body. */
export interface RenewOptions {
  sid: string;
  metadata: string;
  agent?: string;
  audience?: string;
  keyring?: Keyring;
  now?: number;
  jti?: string;
  rejected?: unknown[];
  /** A raw Authorization header instead of a made assertion. */
  authorization?: string;
  body?: unknown;
}

/** `POST /v1/worker/credentials` through the app, as a worker calls it. */
export async function renew(
  h: Harness,
  rig: RenewalRig,
  o: RenewOptions,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const assertion =
    o.authorization ??
    `Bearer ${await makeWorkerAssertion({
      keyring: o.keyring ?? h.dispatchKeys,
      agentName: o.agent ?? TEST_AGENT,
      refreshUrl: o.audience ?? TEST_REFRESH_URL,
      sid: o.sid,
      ...(o.now === undefined ? {} : { now: o.now }),
      ...(o.jti === undefined ? {} : { jti: o.jti }),
    })}`;
  const res = await rig.app.request('/v1/worker/credentials', {
    method: 'POST',
    headers: { authorization: assertion, 'content-type': 'application/json' },
    body: JSON.stringify(
      o.body ?? { metadata: o.metadata, ...(o.rejected === undefined ? {} : { rejected: o.rejected }) },
    ),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** A worker assertion whose lifetime is `lifetime` s (the maker refuses over 60). */
export async function longAssertion(keyring: Keyring, sid: string, lifetime: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: TEST_AGENT,
    aud: TEST_REFRESH_URL,
    sub: sid,
    iat: now,
    exp: now + lifetime,
    jti: randomBytes(16).toString('base64url'),
  })
    .setProtectedHeader({ alg: 'HS256', kid: keyring.current, typ: WORKER_ASSERTION_TYP })
    .sign(workerAssertionKey(keyring.keys.get(keyring.current)!));
}

/** The table's items by key, to tell what a request wrote. */
export async function snapshot(h: Harness): Promise<Map<string, string>> {
  const items = await h.db.scan();
  return new Map(items.map((i) => [`${i.pk}|${i.sk}`, JSON.stringify(i)]));
}

/** The keys (`pk|sk`) written or changed between two snapshots (deleted ones prefixed `-`). */
export function written(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) out.push(k);
  for (const k of before.keys()) if (!after.has(k)) out.push(`-${k}`);
  return out.sort();
}
