import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyringJson } from '../../functions/core/keyring.js';
import { type LocalServer, startLocalServer } from '../../functions/local.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { seedTenant, seedUser, signWebhookBody, TEST_LIVEKIT, uid } from '../support/fixtures.js';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { type LiveKitStandIn, startLiveKitStandIn } from '../support/livekit-standin.js';

/**
 * The whole product as `npm start` composes it (production timeouts and retry settings of
 * compose.ts / dynamo.ts / livekit.ts / auth.ts), served on a real loopback socket, with every
 * downstream reachable through something a test can break:
 * DynamoDB (dynalite) behind a {@link FaultProxy}, the JWKS server behind another, and the
 * LiveKit stand-in (its own `failNext`).
 */
export interface Stack {
  server: LocalServer;
  /** `http://localhost:<port>` of the local server. */
  url: string;
  /** dynalite itself (scans bypass the proxy). */
  db: TestDynamo;
  /** In front of dynalite; the server's `DYNAMODB_ENDPOINT`. */
  dynamoProxy: FaultProxy;
  jwks: JwksServer;
  /** In front of the JWKS server; the server's `AUTH_JWKS_URL`. */
  jwksProxy: FaultProxy;
  livekit: LiveKitStandIn;
  /** Keyring JSON the server seals dispatch metadata with (the worker fleet's). */
  dispatchKeysJson: string;
  storageKeysJson: string;
  /** An app user's JWT. */
  userToken(sub: string, tenantId: string): Promise<string>;
  /** A tenant admin's (or, without a tenant, a superadmin's) JWT. */
  adminToken(tenantId?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts a {@link Stack}; `env` adds to (or overrides) the server's environment. */
export async function startStack(env: Record<string, string> = {}): Promise<Stack> {
  const [db, jwks, livekit, dataDir] = await Promise.all([
    startDynalite(),
    startJwksServer(),
    startLiveKitStandIn(TEST_LIVEKIT),
    mkdtemp(join(tmpdir(), 'lkmcp-hardening-')),
  ]);
  const [dynamoProxy, jwksProxy] = await Promise.all([
    startFaultProxy(db.endpoint),
    startFaultProxy(new URL(jwks.jwksUrl).origin),
  ]);
  const dispatchKeysJson = JSON.stringify(generateKeyringJson('dispatch-hardening'));
  const storageKeysJson = JSON.stringify(generateKeyringJson('storage-hardening'));
  const server = await startLocalServer({
    // Config refuses PORT=0 (although local.ts handles it), so a free port is picked here.
    PORT: String(await freePort()),
    DATA_DIR: dataDir,
    LIVEKIT_URL: livekit.url,
    LIVEKIT_API_KEY: TEST_LIVEKIT.apiKey,
    LIVEKIT_API_SECRET: TEST_LIVEKIT.apiSecret,
    TABLE_NAME: db.tableName,
    DYNAMODB_ENDPOINT: dynamoProxy.url,
    DISPATCH_KEYS: dispatchKeysJson,
    STORAGE_KEYS: storageKeysJson,
    AUTH_JWKS_URL: `${jwksProxy.url}/.well-known/jwks.json`,
    AUTH_ISSUER: jwks.issuer,
    AUTH_AUDIENCE: jwks.audience,
    SESSION_RATE_LIMIT_PER_MINUTE: '1000',
    LOG_LEVEL: 'WARN',
    ...env,
  });
  return {
    server,
    url: server.url,
    db,
    dynamoProxy,
    jwks,
    jwksProxy,
    livekit,
    dispatchKeysJson,
    storageKeysJson,
    userToken: (sub, tenantId) => jwks.mint({ sub, tenant_id: tenantId }),
    adminToken: (tenantId) =>
      tenantId === undefined
        ? jwks.mint({ sub: 'ops', scope: 'dispatch:superadmin' })
        : jwks.mint({ sub: `admin-${tenantId}`, tenant_id: tenantId, scope: 'dispatch:admin' }),
    async stop() {
      await server.stop();
      await Promise.all([dynamoProxy.stop(), jwksProxy.stop(), db.stop(), jwks.stop(), livekit.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Items of kinds a request may leave behind, by partition-key prefix. */
export function itemsOfKind(items: Record<string, unknown>[], kind: string): Record<string, unknown>[] {
  return items.filter((i) => typeof i.pk === 'string' && i.pk.startsWith(`${kind}#`));
}

/** Posts JSON to the stack (a real HTTP request over loopback). */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string; ms: number }> {
  const started = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: left empty, the status says enough
  }
  return { status: res.status, json, text, ms: Date.now() - started };
}

/**
 * Seeds a tenant (`tenantSeed` on top of the fixture defaults) and one user of it with an MCP
 * URL and token, and mints the user's JWT.
 */
export async function seedUserWithJwt(s: Stack, tenantSeed: Parameters<typeof seedTenant>[2] = {}) {
  const { store, secretBox } = s.server.services;
  const tenant = await seedTenant(store, secretBox, tenantSeed);
  const user = await seedUser(store, secretBox, {
    tenant_id: tenant.tenant_id,
    mcp: { url: 'https://mcp.example.com/u', token: `tok-${uid('x')}` },
  });
  return { tenant, user, jwt: await s.userToken(user.user_id, tenant.tenant_id) };
}

/** `POST /v1/sessions` with an empty body as the holder of `jwt`. */
export function startSession(s: Stack, jwt: string, headers: Record<string, string> = {}) {
  return postJson(`${s.url}/v1/sessions`, {}, { ...headers, authorization: `Bearer ${jwt}` });
}

/** Delivers a signed webhook as LiveKit does. */
export function deliverWebhook(s: Stack, signed: { body: string; authorization: string }) {
  return postJson(`${s.url}/v1/livekit/webhook`, signed.body, {
    'content-type': 'application/webhook+json',
    authorization: signed.authorization,
  });
}

/** Signs `body` with the stand-in's LiveKit key and delivers it. */
export async function sendWebhook(s: Stack, body: string) {
  return deliverWebhook(s, await signWebhookBody(body, TEST_LIVEKIT));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
