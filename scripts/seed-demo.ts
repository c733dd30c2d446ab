/**
 * `npm run seed:demo`: try the whole flow in a minute, next to a running `npm start`.
 *
 * Starts the demo MCP server (scripts/demo-mcp-server.ts), then, through the running server's
 * admin API, creates or updates tenant `demo` (MCP URL = the demo server) and user `demo-user`
 * (their own MCP token, sealed by the server), and prints a user token and the next command.
 * Talks to the API rather than the store: the embedded store belongs to the running server, and
 * the API seals, validates and audits as it would for anyone. Keeps running (the MCP server)
 * until Ctrl-C; run it again any time, it updates what it made.
 *
 *   npm run seed:demo [-- --mcp-port 8788 --tenant demo --user demo-user]
 *   env: LKMCP_URL (default http://localhost:8787), DATA_DIR (default .data, as for npm start)
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AdminClient, ApiError, tenantPath, UnreachableError, userPath } from '../cli/client.js';
import { DEV_JWKS_PATH, loadOrCreateDevIssuer } from '../functions/adapters/dev-issuer.js';
import { tokenFingerprint } from '../test/support/mcp-server.js';
import { type DemoMcpServer, MCP_TOOLS, startDemoMcpServer } from './demo-mcp-server.js';
import { cacheDir } from './e2e/livekit.js';

/** Options of {@link seedDemo}. */
export interface SeedDemoOptions {
  /** The running server, e.g. `http://localhost:8787`. */
  url: string;
  /** The server's `DATA_DIR` (its dev issuer key signs the tokens). */
  dataDir: string;
  /** Port of the demo MCP server; 0 picks a free one. */
  mcpPort: number;
  tenantId?: string;
  userId?: string;
}

/** What {@link seedDemo} made. */
export interface SeededDemo {
  tenantId: string;
  userId: string;
  mcp: DemoMcpServer;
  /** A one-hour app-user token for `POST /v1/sessions`. */
  userToken: string;
  /** The user's MCP token fingerprint as the admin API shows it (`users get`), never the token. */
  tokenFingerprint: string;
  /** The command to run next. */
  nextCommand: string;
}

/** A problem the person running the demo can fix; printed without a stack. */
export class SeedError extends Error {}

/** Creates or updates the record at `path`; returns what the API answered. */
async function put(client: AdminClient, path: string, body: unknown): Promise<Record<string, unknown>> {
  try {
    const current = await client.request('GET', path);
    return (
      await client.request<Record<string, unknown>>('PUT', path, {
        body,
        ...(current.version ? { ifMatch: current.version } : {}),
      })
    ).body;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    return (await client.request<Record<string, unknown>>('PUT', path, { body, createOnly: true })).body;
  }
}

async function checkServer(url: string, kids: string[]): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${url}${DEV_JWKS_PATH}`, { signal: AbortSignal.timeout(5000) });
  } catch {
    throw new SeedError(
      `No server at ${url}: start it first with \`npm start\` (another terminal), or set LKMCP_URL.`,
    );
  }
  if (res.status === 404) {
    throw new SeedError(
      `The server at ${url} verifies JWTs from AUTH_JWKS_URL; the demo needs the local dev issuer (leave AUTH_JWKS_URL unset).`,
    );
  }
  const jwks = (await res.json().catch(() => ({}))) as { keys?: { kid?: string }[] };
  if (!(jwks.keys ?? []).some((k) => k.kid !== undefined && kids.includes(k.kid))) {
    throw new SeedError(
      `The server at ${url} signs with another dev key: run seed:demo with the same DATA_DIR as npm start.`,
    );
  }
}

/**
 * Starts the demo MCP server and seeds the demo tenant and user through the admin API of the
 * server at `options.url`. The caller stops `mcp` when done.
 */
export async function seedDemo(options: SeedDemoOptions): Promise<SeededDemo> {
  const tenantId = options.tenantId ?? 'demo';
  const userId = options.userId ?? 'demo-user';
  const url = options.url.replace(/\/+$/, '');
  const issuer = await loadOrCreateDevIssuer(options.dataDir, {
    tenantClaim: process.env.AUTH_TENANT_CLAIM || undefined,
  });
  await checkServer(
    url,
    issuer.jwks().keys.map((k) => k.kid ?? ''),
  );

  let mcp: DemoMcpServer;
  try {
    mcp = await startDemoMcpServer({ port: options.mcpPort, userId });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new SeedError(
        `Port ${options.mcpPort} is taken (another seed:demo still running?): stop it, or pass -- --mcp-port <port>.`,
      );
    }
    throw err;
  }
  try {
    const client = new AdminClient({
      baseUrl: url,
      token: await issuer.mint({ user: 'seed-demo', superadmin: true, ttlSeconds: 300 }),
    });
    await put(client, tenantPath(tenantId), {
      name: 'Demo',
      mcp: { url: mcp.url, transport: 'streamable_http', name: 'demo' },
      webhook_dispatch: true,
      status: 'active',
    });
    // The URL is the tenant's; the token is this user's own, bound to that URL's origin.
    const user = await put(client, userPath(tenantId, userId), {
      display_name: 'Demo User',
      mcp: { token: mcp.token },
      status: 'active',
    });
    const userToken = await issuer.mint({ user: userId, tenant: tenantId, ttlSeconds: 3600 });
    const nextCommand = [
      `curl -sS -X POST ${url}/v1/sessions \\`,
      `  -H "Authorization: Bearer ${userToken}" \\`,
      `  -H 'Content-Type: application/json' -d '{}'`,
    ].join('\n');
    const tokenFingerprint = String(
      (user.mcp as { token_fingerprint?: unknown } | null)?.token_fingerprint ?? '',
    );
    return { tenantId, userId, mcp, userToken, tokenFingerprint, nextCommand };
  } catch (err) {
    await mcp.stop();
    if (err instanceof ApiError) throw new SeedError(`The admin API refused the demo: ${err.message}`);
    if (err instanceof UnreachableError) throw new SeedError(`${err.message}: is npm start still running?`);
    throw err;
  }
}

/**
 * What seed:demo prints: what it made and the exact next commands (the session, the worker with
 * DISPATCH_KEYS exported from DATA_DIR/keys.json, and a client to join the room with).
 */
export function demoInstructions(demo: SeededDemo, options: { dataDir: string }): string {
  const keys = join(options.dataDir, 'keys.json');
  const python = join(cacheDir(), 'venv', 'bin', 'python');
  return [
    `Demo MCP server: ${demo.mcp.url} (tools: ${MCP_TOOLS.join(', ')})`,
    `Tenant ${demo.tenantId} (MCP URL above) and user ${demo.userId} (own MCP token ${demo.tokenFingerprint}, sealed by the server).`,
    '',
    `User token for ${demo.userId} (1 hour):`,
    demo.userToken,
    '',
    'Next, start a session (a room, a participant token, and the agent dispatched with the sealed MCP config):',
    demo.nextCommand,
    '',
    'Then a worker that opens it (worker/README.md; once: npm run e2e:install). The dispatch keyring is a dev',
    `secret that npm start generated into ${keys}; export it rather than pasting it:`,
    `  export DISPATCH_KEYS="$(node -p 'JSON.stringify(require(${JSON.stringify(keys)}).dispatch)')"`,
    '  ALLOW_INSECURE_MCP_URLS=true LIVEKIT_URL=ws://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \\',
    `    ${python} -m livekit.agents start worker/python/agent.py --dev`,
    'and join the room with the session\'s server_url and participant_token: https://meet.livekit.io (tab "Custom"),',
    `or LK_URL=<server_url> LK_TOKEN=<participant_token> ${python} scripts/e2e/join_room.py`,
    '',
    `Each MCP request the demo server serves shows up below (method, tool, whose token by fingerprint). Ctrl-C stops it.`,
  ].join('\n');
}

/**
 * Turns the demo MCP server's new requests into log lines: time, HTTP method and path, the
 * JSON-RPC method (and tool), the status, and whose token it was (the admin API's fingerprint).
 * Each call returns the lines since the previous one.
 */
export function mcpRequestLog(demo: SeededDemo): () => string[] {
  const demoToken = tokenFingerprint(demo.mcp.token);
  let seen = 0;
  return () => {
    const { requests } = demo.mcp.server;
    const fresh = requests.slice(seen);
    seen = requests.length;
    return fresh.map((r) => {
      const who =
        r.tokenFingerprint === null
          ? 'no token'
          : r.tokenFingerprint === demoToken
            ? `${demo.userId}'s token ${demo.tokenFingerprint}`
            : 'an unknown token';
      const rpc = r.rpc.map((c) => (c.tool === undefined ? c.method : `${c.method} ${c.tool}`)).join(', ');
      return `${r.at.toISOString().slice(11, 19)} [mcp] ${r.method} ${r.path}${rpc ? ` ${rpc}` : ''} -> ${r.status} (${who})`;
    });
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'mcp-port': { type: 'string', default: '8788' },
      tenant: { type: 'string', default: 'demo' },
      user: { type: 'string', default: 'demo-user' },
    },
    strict: true,
  });
  const mcpPort = Number(values['mcp-port']);
  if (!Number.isInteger(mcpPort) || mcpPort < 0 || mcpPort > 65535)
    throw new SeedError('--mcp-port: 0-65535');
  const demo = await seedDemo({
    url: process.env.LKMCP_URL || 'http://localhost:8787',
    dataDir: process.env.DATA_DIR || '.data',
    mcpPort,
    tenantId: values.tenant,
    userId: values.user,
  });
  console.log(demoInstructions(demo, { dataDir: resolve(process.env.DATA_DIR || '.data') }));
  const log = mcpRequestLog(demo);
  const timer = setInterval(() => {
    for (const line of log()) console.log(line);
  }, 250);
  const stop = () => {
    clearInterval(timer);
    void demo.mcp.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof SeedError ? err.message : err);
    process.exit(1);
  });
}
