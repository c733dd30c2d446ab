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
import { createServices, type ServiceOverrides, type Services } from './compose.js';
import { loadConfig, type RawEnv } from './core/config.js';
import { generateKeyringJson } from './core/keyring.js';
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

/** A running local server. */
export interface LocalServer {
  url: string;
  port: number;
  services: Services;
  /** Mints a dev token when the dev issuer is in use (AUTH_JWKS_URL unset). */
  mintToken?: (req: {
    user: string;
    tenant?: string;
    admin?: boolean;
    superadmin?: boolean;
  }) => Promise<string>;
  stop(): Promise<void>;
}

/** Reads `DATA_DIR/keys.json`, generating both keyrings on first run (only `npm start` ever does). */
async function loadOrCreateKeys(dataDir: string): Promise<{ dispatch: unknown; storage: unknown }> {
  const file = join(dataDir, 'keys.json');
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const keys = { dispatch: generateKeyringJson(), storage: generateKeyringJson() };
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
  const services = createServices(config, log, overrides);

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
  app.route('/', createAdminApp({ ...services, publicBaseUrl: env.PUBLIC_BASE_URL }));
  app.notFound(() => problem('not_found', 'No such resource.'));

  // Node's 16 KiB header limit would answer a long query a bare 431; the apps' own limits
  // (cursor length, 422) are what clients should meet, as behind API Gateway.
  const server = serve({
    fetch: app.fetch,
    port,
    hostname: env.HOST ?? '127.0.0.1',
    serverOptions: { maxHeaderSize: 64 * 1024 },
  });
  await new Promise<void>((ok, fail) => {
    server.once('listening', ok);
    server.once('error', fail);
  });
  const actualPort = (server.address() as AddressInfo).port;
  if (devIssuer && actualPort !== port) {
    // Port 0 (tests): the verifier uses the in-process key set, the URL is informational.
    services.config.auth.jwksUrl = `http://localhost:${actualPort}${DEV_JWKS_PATH}`;
  }
  return {
    url: `http://localhost:${actualPort}`,
    port: actualPort,
    services,
    ...(devIssuer ? { mintToken: (req) => devIssuer.mint(req) } : {}),
    async stop() {
      await new Promise<void>((ok) => server.close(() => ok()));
      dynamo.destroy();
      await embedded?.stop();
    },
  };
}

async function main(): Promise<void> {
  const local = await startLocalServer();
  const { config } = local.services;
  console.log(
    [
      `livekit-mcp-dispatch listening on ${local.url}`,
      `  POST ${local.url}/v1/sessions   POST ${local.url}/v1/livekit/webhook   ${local.url}/v1/admin/...`,
      `  LiveKit: ${config.livekit.wsUrl}   store: ${config.dynamodbEndpoint} (${config.tableName})   data: ${config.dataDir}`,
      local.mintToken
        ? `  dev issuer: ${config.auth.jwksUrl}  —  npm run dev:token -- --user alice --tenant acme [--admin|--superadmin]`
        : `  JWTs from ${config.auth.jwksUrl}`,
    ].join('\n'),
  );
  const shutdown = () => {
    local.stop().finally(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
