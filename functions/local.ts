import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_JWKS_PATH, loadOrCreateDevIssuer } from './adapters/dev-issuer.js';
import { createDynamoClient } from './adapters/dynamo.js';
import { startEmbeddedDynalite } from './adapters/embedded-dynamo.js';
import { createLog } from './adapters/logger.js';
import { createLogMetrics } from './adapters/metrics.js';
import { createTable } from './adapters/table.js';
import { createAdminApp } from './admin/app.js';
import { type ConnectedServices, createServices, type ServiceOverrides, withConnections } from './compose.js';
import { loadConfig, type RawEnv } from './core/config.js';
import { generateKeyringJson } from './core/keyring.js';
import { generateClientKeyring } from './core/oauth/client-keys.js';
import { createCredentialsApp } from './credentials/app.js';
import { problem } from './http/problem.js';
import { createSessionApp } from './session/app.js';
import { createWebhookApp } from './webhook/app.js';

/** What `npm start` fills in when the environment leaves it unset (docs/api.md §2, local column). */
const LOCAL_DEFAULTS: RawEnv = {
  PORT: '8787',
  DATA_DIR: '.data',
  LIVEKIT_URL: 'ws://localhost:7880',
  LIVEKIT_API_KEY: 'devkey',
  LIVEKIT_API_SECRET: 'secret',
  ALLOW_INSECURE_MCP_URLS: 'true',
};

/** The OpenAPI document from the source tree (`npm run openapi` writes it), for `npm start` and tests. */
export const sourceOpenApiDocument = (): Promise<string> =>
  readFile(new URL('./openapi/openapi.json', import.meta.url), 'utf8');

/** A running local server. */
export interface LocalServer {
  url: string;
  port: number;
  /** The address it listens on (`HOST`, default 127.0.0.1). */
  host: string;
  services: ConnectedServices;
  /** Mints a dev token when the dev issuer is in use (AUTH_JWKS_URL unset). */
  mintToken?: (req: {
    user: string;
    tenant?: string;
    admin?: boolean;
    superadmin?: boolean;
  }) => Promise<string>;
  stop(): Promise<void>;
}

/**
 * Reads `DATA_DIR/keys.json`, generating the keyrings on first run (only `npm start` ever does):
 * dispatch and storage keyrings, and the OAuth client's ES256 keyring (`oauth_client`), added to an
 * older file that lacks it.
 */
async function loadOrCreateKeys(
  dataDir: string,
): Promise<{ dispatch: unknown; storage: unknown; oauth_client: unknown }> {
  const file = join(dataDir, 'keys.json');
  let existing: { dispatch: unknown; storage: unknown; oauth_client?: unknown } | undefined;
  try {
    existing = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing?.oauth_client !== undefined) return existing as Awaited<ReturnType<typeof loadOrCreateKeys>>;
  if (existing !== undefined) {
    const keys = { ...existing, oauth_client: await generateClientKeyring('oauth-dev-1') };
    await writeFile(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
    return keys;
  }
  const keys = {
    dispatch: generateKeyringJson(),
    storage: generateKeyringJson(),
    oauth_client: await generateClientKeyring('oauth-dev-1'),
  };
  await writeFile(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch(
    async (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    },
  );
  await chmod(file, 0o600);
  return JSON.parse(await readFile(file, 'utf8'));
}

/**
 * Starts all three APIs on one port with the embedded store, dev keys and (when
 * `AUTH_JWKS_URL` is unset) the dev JWT issuer. Used by `npm start`, the e2e driver and the demo.
 */
export async function startLocalServer(envIn: RawEnv = process.env): Promise<LocalServer> {
  const env: RawEnv = { ...LOCAL_DEFAULTS };
  for (const [k, v] of Object.entries(envIn)) if (v !== undefined && v !== '') env[k] = v;
  const dataDir = resolve(env.DATA_DIR ?? '.data');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  if (!env.DISPATCH_KEYS || !env.STORAGE_KEYS) {
    const keys = await loadOrCreateKeys(dataDir);
    env.DISPATCH_KEYS ??= JSON.stringify(keys.dispatch);
    env.STORAGE_KEYS ??= JSON.stringify(keys.storage);
    env.OAUTH_CLIENT_KEYS ??= JSON.stringify(keys.oauth_client);
  }
  const port = Number(env.PORT);
  const devIssuer = env.AUTH_JWKS_URL
    ? undefined
    : await loadOrCreateDevIssuer(dataDir, { tenantClaim: env.AUTH_TENANT_CLAIM ?? 'tenant_id' });
  if (devIssuer) {
    env.AUTH_JWKS_URL = `http://localhost:${port}${DEV_JWKS_PATH}`;
    env.AUTH_ISSUER = DEV_ISSUER;
    env.AUTH_AUDIENCE = DEV_AUDIENCE;
  }

  const embedded = env.DYNAMODB_ENDPOINT ? undefined : await startEmbeddedDynalite(join(dataDir, 'dynamo'));
  if (embedded) env.DYNAMODB_ENDPOINT = embedded.endpoint;
  // PORT 0 (tests: any free port) is a listen option, not configuration.
  const config = loadConfig(port === 0 ? { ...env, PORT: undefined } : env, 'local');
  const log = createLog({ service: 'livekit-mcp-dispatch-local', level: config.logLevel });
  const dynamo = createDynamoClient({ endpoint: config.dynamodbEndpoint });
  await createTable(dynamo, config.tableName);

  const overrides: ServiceOverrides = { dynamo, metrics: createLogMetrics(log) };
  if (devIssuer) overrides.getKey = devIssuer.getKey;
  const services = withConnections(createServices(config, log, overrides));

  const app = new Hono();
  // A refused body is left unread: close the connection, as the 413 says, so that a keep-alive
  // client's next request does not meet the unread rest (or a reset) on the same socket.
  app.use('*', async (c, next) => {
    await next();
    if (c.res.status === 413) c.header('connection', 'close');
  });
  app.get('/healthz', (c) => c.json({ ok: true }));
  if (devIssuer) app.get(DEV_JWKS_PATH, (c) => c.json(devIssuer.jwks()));
  app.route('/', createSessionApp(services));
  app.route('/', createWebhookApp(services));
  app.route('/', createCredentialsApp(services));
  app.route(
    '/',
    createAdminApp({
      ...services,
      openApiDocument: sourceOpenApiDocument,
      publicBaseUrl: env.PUBLIC_BASE_URL,
    }),
  );
  app.notFound(() => problem('not_found', 'No such resource.'));

  // Node's 16 KiB header limit would answer a long query a bare 431; the apps' own limits
  // (cursor length, 422) are what clients should meet, as behind API Gateway.
  const host = env.HOST ?? '127.0.0.1';
  const server = serve({
    fetch: app.fetch,
    port,
    hostname: host,
    serverOptions: { maxHeaderSize: 64 * 1024 },
  });
  await new Promise<void>((ok, fail) => {
    server.once('listening', ok);
    server.once('error', fail);
  });
  const actualPort = (server.address() as AddressInfo).port;
  // Port 0 (tests): the OAuth callback and client metadata name the port actually listened on.
  if (!env.PUBLIC_BASE_URL) services.config.publicBaseUrl = `http://localhost:${actualPort}`;
  if (devIssuer && actualPort !== port) {
    // Port 0 (tests): the verifier uses the in-process key set, the URL is informational.
    services.config.auth.jwksUrl = `http://localhost:${actualPort}${DEV_JWKS_PATH}`;
  }
  // The sealed refresh_url names the port actually listened on (the apps read it per request).
  if (!env.PUBLIC_BASE_URL && actualPort !== port)
    services.config.publicBaseUrl = `http://localhost:${actualPort}`;
  return {
    url: `http://localhost:${actualPort}`,
    port: actualPort,
    host,
    services,
    ...(devIssuer ? { mintToken: (req) => devIssuer.mint(req) } : {}),
    async stop() {
      await new Promise<void>((ok) => server.close(() => ok()));
      dynamo.destroy();
      await embedded?.stop();
    },
  };
}

/** True when something answers HTTP at `httpUrl` within a second (LiveKit answers `/` with 200 OK). */
async function answers(httpUrl: string): Promise<boolean> {
  try {
    await fetch(httpUrl, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

/** A LiveKit dev server `npm start` started, or why there is none. */
interface DevLiveKit {
  line: string;
  stop?: () => Promise<void>;
}

/**
 * `npm start` reaches a real dispatch (CONTRACT §7): with LIVEKIT_URL left at its default and
 * nothing answering there, it starts the pinned `livekit-server --dev` on 127.0.0.1:7880
 * (scripts/e2e/livekit.ts, the e2e's own launcher; built once into the cache, with progress
 * lines); without Go it says so and goes on. An explicit LIVEKIT_URL is never second-guessed.
 */
async function devLiveKit(local: LocalServer, explicitUrl: boolean): Promise<DevLiveKit> {
  const { wsUrl, httpUrl, apiKey, apiSecret } = local.services.config.livekit;
  if (explicitUrl) {
    return (await answers(httpUrl))
      ? { line: `LiveKit: ${wsUrl} (LIVEKIT_URL)` }
      : {
          line: `LiveKit: ${wsUrl} (LIVEKIT_URL) does not answer: sessions get 502 livekit_unavailable until it does`,
        };
  }
  if (await answers(httpUrl)) return { line: `LiveKit: ${wsUrl} (already running there)` };
  const defaultUrl = new URL(LOCAL_DEFAULTS.LIVEKIT_URL ?? '');
  const { ensureLiveKitBinary, LiveKitInstallError, LIVEKIT_SERVER_VERSION, startLiveKitServer } =
    await import('../scripts/e2e/livekit.js');
  console.log(
    `LiveKit: nothing answers at ${wsUrl}; starting livekit-server ${LIVEKIT_SERVER_VERSION} --dev …`,
  );
  try {
    const binary = await ensureLiveKitBinary({ onProgress: (line) => console.log(`  ${line}`) });
    const webhookHost = ['127.0.0.1', '0.0.0.0', 'localhost'].includes(local.host) ? '127.0.0.1' : local.host;
    const webhookUrl = `http://${webhookHost}:${local.port}/v1/livekit/webhook`;
    const server = await startLiveKitServer({
      binary,
      httpPort: Number(defaultUrl.port),
      apiKey,
      apiSecret,
      webhookUrl,
      // Time to join the room by hand before LiveKit closes an empty one.
      emptyTimeoutSeconds: 300,
      verbose: process.env.LKMCP_LIVEKIT_VERBOSE === '1',
    });
    return {
      line: `LiveKit: ${wsUrl} = livekit-server ${LIVEKIT_SERVER_VERSION} --dev, started by npm start (127.0.0.1 only; API key ${apiKey}; webhooks -> ${webhookUrl}; its log: LKMCP_LIVEKIT_VERBOSE=1)`,
      stop: server.stop,
    };
  } catch (err) {
    const why = err instanceof LiveKitInstallError ? err.message : (err as Error).message.split('\n')[0];
    return {
      line: [
        `LiveKit: not started (${why}).`,
        `  Sessions get 502 livekit_unavailable until a LiveKit server answers at ${wsUrl}: install Go (https://go.dev/dl)`,
        '  and run npm start again, or run one yourself (livekit-server --dev), or set LIVEKIT_URL.',
      ].join('\n'),
    };
  }
}

async function main(): Promise<void> {
  // The SDK warns on Node < 22 at the first client; engines allows 20 for local use, and the
  // Lambda functions run Node 22 (infra/README.md). Its documented switch, for npm start only.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const explicitUrl = Boolean(process.env.LIVEKIT_URL);
  const local = await startLocalServer();
  const { config } = local.services;
  const jwtLine = local.mintToken
    ? `  dev issuer: ${config.auth.jwksUrl}  —  npm run dev:token -- --user alice --tenant acme [--admin|--superadmin] [--ttl 3600]`
    : `  JWTs from ${config.auth.jwksUrl}`;
  console.log(
    [
      `livekit-mcp-dispatch listening on ${local.url}`,
      `  POST ${local.url}/v1/sessions   POST ${local.url}/v1/livekit/webhook   ${local.url}/v1/admin/...`,
      `  POST ${local.url}/v1/worker/credentials (agent workers renew credentials)`,
      `  GET ${local.url}/healthz   GET ${local.url}/openapi.json`,
      `  store: ${config.dynamodbEndpoint} (${config.tableName})   data: ${config.dataDir}`,
      jwtLine,
    ].join('\n'),
  );
  let livekit: DevLiveKit | undefined;
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    Promise.allSettled([livekit?.stop?.(), local.stop()]).finally(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  livekit = await devLiveKit(local, explicitUrl);
  console.log(livekit.line);
  console.log(
    `ready: next, in another terminal: npm run seed:demo   (Ctrl-C stops ${livekit.stop ? 'both' : 'the server'})`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
