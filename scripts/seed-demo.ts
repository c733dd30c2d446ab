/**
 * `npm run seed:demo`: try the whole flow in a minute, next to a running `npm start`.
 *
 * Starts the demo MCP server (scripts/demo-mcp-server.ts) and the OAuth demo
 * (scripts/demo-oauth.ts: an authorization server, the OAuth-protected `notes` MCP server and a
 * return page), then, through the running server's admin API, creates or updates tenant `demo`
 * (MCP URL = the demo server; catalog: `notes` with `auth: oauth`; `oauth_return_urls`: the return
 * page) and user `demo-user` (their own MCP token, sealed by the server), checks `notes` with the
 * discovery dry run, and prints a user token and the next commands: a session, and connecting
 * `notes` in a browser. Talks to the API rather than the store: the embedded store belongs to the
 * running server, and the API seals, validates and audits as it would for anyone. Every URL is
 * loopback `http`, which only the dev switch `ALLOW_INSECURE_MCP_URLS` (npm start's default)
 * admits. Keeps running (the servers) until Ctrl-C; run it again any time, it updates what it made.
 *
 *   npm run seed:demo [-- --mcp-port 8788 --as-port 8789 --notes-port 8790 --return-port 8791
 *                         --tenant demo --user demo-user]
 *   env: LKMCP_URL (default http://localhost:8787), DATA_DIR (default .data, as for npm start)
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AdminClient, ApiError, tenantPath, UnreachableError, userPath } from '../cli/client.js';
import { DEV_JWKS_PATH, loadOrCreateDevIssuer } from '../functions/adapters/dev-issuer.js';
import { tokenFingerprint } from '../test/support/mcp-server.js';
import { type DemoMcpServer, MCP_TOOLS, startDemoMcpServer } from './demo-mcp-server.js';
import {
  type DemoOAuth,
  type DemoOAuthPorts,
  DemoPortInUseError,
  NOTES_SERVER,
  startDemoOAuth,
} from './demo-oauth.js';
import { cacheDir } from './e2e/livekit.js';

/** Options of {@link seedDemo}. */
export interface SeedDemoOptions {
  /** The running server, e.g. `http://localhost:8787`. */
  url: string;
  /** The server's `DATA_DIR` (its dev issuer key signs the tokens). */
  dataDir: string;
  /** Port of the demo MCP server; 0 picks a free one. */
  mcpPort: number;
  /** Ports of the OAuth demo's servers; each 0 (a free one) unless given. */
  oauthPorts?: Partial<DemoOAuthPorts>;
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
  /** The authorization server, the `notes` MCP server and the return page. */
  oauth: DemoOAuth;
  /** `POST /v1/connections/notes/authorize` with the return page as `return_to`. */
  authorizeCommand: string;
  /** The `notes` connection's status when seeding finished (`connected` from an earlier run, …). */
  notesStatus: string;
  /** Stops every server it started. */
  stop(): Promise<void>;
}

/** The command-line flag of each OAuth demo port. */
const PORT_FLAGS: Record<keyof DemoOAuthPorts, string> = {
  authorizationServer: '--as-port',
  mcp: '--notes-port',
  returnPage: '--return-port',
};

/** A problem the person running the demo can fix; printed without a stack. */
export class SeedError extends Error {}

function fieldsOf(err: ApiError): string {
  return err.errors.length === 0 ? '' : ` [${err.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}]`;
}

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
  let oauth: DemoOAuth | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await oauth?.stop();
      await mcp.stop();
    })();
    return stopped;
  };
  try {
    oauth = await startDemoOAuth({
      apiUrl: url,
      userId,
      userToken: () => issuer.mint({ user: userId, tenant: tenantId, ttlSeconds: 300 }),
      ports: { authorizationServer: 0, mcp: 0, returnPage: 0, ...options.oauthPorts },
      stateDir: join(resolve(options.dataDir), 'seed-demo', 'authorization-server'),
    });
    const client = new AdminClient({
      baseUrl: url,
      token: await issuer.mint({ user: 'seed-demo', superadmin: true, ttlSeconds: 300 }),
    });
    await put(client, tenantPath(tenantId), {
      name: 'Demo',
      mcp: { url: mcp.url, transport: 'streamable_http', name: 'demo' },
      mcp_servers: [
        {
          name: NOTES_SERVER,
          display_name: 'Notes (OAuth demo)',
          description: 'Connected by each user in a browser; the agent gets their access token.',
          url: oauth.mcpUrl,
          transport: 'streamable_http',
          auth: { type: 'oauth' },
        },
      ],
      oauth_return_urls: [oauth.returnUrl],
      webhook_dispatch: true,
      status: 'active',
    });
    // The dry run of discovery (no writes): what authorize will do, checked before it is printed.
    await client.request('POST', `${tenantPath(tenantId)}/servers/${NOTES_SERVER}/discover`);
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
    const authorizeCommand = [
      `curl -sS -X POST ${url}/v1/connections/${NOTES_SERVER}/authorize \\`,
      `  -H "Authorization: Bearer ${userToken}" \\`,
      `  -H 'Content-Type: application/json' -d '${JSON.stringify({ return_to: oauth.returnUrl })}'`,
    ].join('\n');
    const notes = await new AdminClient({ baseUrl: url, token: userToken }).request<{ status?: string }>(
      'GET',
      `/v1/connections/${NOTES_SERVER}`,
    );
    const tokenFingerprint = String(
      (user.mcp as { token_fingerprint?: unknown } | null)?.token_fingerprint ?? '',
    );
    return {
      tenantId,
      userId,
      mcp,
      userToken,
      tokenFingerprint,
      nextCommand,
      oauth,
      authorizeCommand,
      notesStatus: String(notes.body.status),
      stop,
    };
  } catch (err) {
    await stop();
    if (err instanceof DemoPortInUseError) {
      throw new SeedError(
        `Port ${err.port} is taken (another seed:demo still running?): stop it, or pass -- ${PORT_FLAGS[err.which]} <port>.`,
      );
    }
    if (
      err instanceof ApiError &&
      (err.code === 'unsafe_mcp_url' || err.errors.some((e) => e.path.startsWith('oauth_return_urls')))
    ) {
      throw new SeedError(
        `The admin API refused the demo's loopback URLs: ${err.message}${fieldsOf(err)}. The demo's servers are http on 127.0.0.1, which only ALLOW_INSECURE_MCP_URLS=true admits (npm start's default: leave it unset or set it to true).`,
      );
    }
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
  const { oauth } = demo;
  return [
    `Demo MCP server: ${demo.mcp.url} (tools: ${MCP_TOOLS.join(', ')})`,
    `Tenant ${demo.tenantId} (MCP URL above) and user ${demo.userId} (own MCP token ${demo.tokenFingerprint}, sealed by the server).`,
    `OAuth demo: catalog server "${NOTES_SERVER}" ${oauth.mcpUrl} (accepts only access tokens issued for that URL),`,
    `  authorization server ${oauth.issuer} (oidc-provider), return page ${oauth.returnUrl}.`,
    '',
    `User token for ${demo.userId} (1 hour):`,
    demo.userToken,
    '',
    'Next, start a session (a room, a participant token, and the agent dispatched with the sealed MCP config):',
    demo.nextCommand,
    '',
    `Connect ${demo.userId}'s "${NOTES_SERVER}" server (OAuth, in a browser; now ${demo.notesStatus}):`,
    '1. Start the authorization:',
    demo.authorizeCommand,
    "2. Open the answer's authorization_url in a browser on this machine and sign in to the demo authorization",
    `   server with login ${oauth.account.login}, password ${oauth.account.password} (its one account); then Continue to allow.`,
    `3. The API's /v1/oauth/callback sends the browser to the return page, which completes the connection`,
    `   as ${demo.userId} (POST /v1/connections/${NOTES_SERVER}/complete) and shows "${NOTES_SERVER}: connected".`,
    `4. Start a session again (the curl above): its mcp_servers lists ${NOTES_SERVER} as ready.`,
    '',
    'Then a worker that opens it (worker/README.md; once: npm run e2e:install). The dispatch keyring is a dev',
    `secret that npm start generated into ${keys}; export it rather than pasting it:`,
    `  export DISPATCH_KEYS="$(node -p 'JSON.stringify(require(${JSON.stringify(keys)}).dispatch)')"`,
    '  ALLOW_INSECURE_MCP_URLS=true LIVEKIT_URL=ws://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \\',
    `    ${python} -m livekit.agents start worker/python/agent.py --dev`,
    'and join the room with the session\'s server_url and participant_token: https://meet.livekit.io (tab "Custom"),',
    `or LK_URL=<server_url> LK_TOKEN=<participant_token> ${python} scripts/e2e/join_room.py`,
    '',
    `Each MCP request the demo servers serve shows up below (method, tool, whose token), and each visit of the return page. Ctrl-C stops it.`,
  ].join('\n');
}

const time = (at: Date) => at.toISOString().slice(11, 19);
const rpcText = (rpc: { method: string; tool?: string }[]) =>
  rpc.map((c) => (c.tool === undefined ? c.method : `${c.method} ${c.tool}`)).join(', ');

/**
 * Turns the demo servers' new requests into log lines, in time order: for each MCP request the
 * time, HTTP method and path, the JSON-RPC method (and tool), the status, and whose token it was
 * (the demo server: the admin API's fingerprint; `notes`: the access token's subject and
 * audience); for each visit of the return page, what it did. Each call returns the lines since
 * the previous one.
 */
export function mcpRequestLog(demo: SeededDemo): () => string[] {
  const demoToken = tokenFingerprint(demo.mcp.token);
  let seen = 0;
  let seenNotes = 0;
  let seenReturns = 0;
  return () => {
    const { requests } = demo.mcp.server;
    const fresh = requests.slice(seen);
    seen = requests.length;
    const notes = demo.oauth.mcp.requests.slice(seenNotes);
    seenNotes = demo.oauth.mcp.requests.length;
    const returns = demo.oauth.returns.slice(seenReturns);
    seenReturns = demo.oauth.returns.length;
    const lines: { at: Date; line: string }[] = fresh.map((r) => {
      const who =
        r.tokenFingerprint === null
          ? 'no token'
          : r.tokenFingerprint === demoToken
            ? `${demo.userId}'s token ${demo.tokenFingerprint}`
            : 'an unknown token';
      const rpc = rpcText(r.rpc);
      return {
        at: r.at,
        line: `${time(r.at)} [mcp] ${r.method} ${r.path}${rpc ? ` ${rpc}` : ''} -> ${r.status} (${who})`,
      };
    });
    for (const r of notes) {
      const who =
        r.token === 'accepted'
          ? `access token for ${r.claims?.sub}, aud ${[r.claims?.aud ?? []].flat().join(' ')}`
          : r.token === 'refused'
            ? 'a token it refused'
            : 'no token';
      const rpc = rpcText(r.rpc);
      lines.push({
        at: r.at,
        line: `${time(r.at)} [${NOTES_SERVER}] ${r.method} /mcp${rpc ? ` ${rpc}` : ''} -> ${r.status} (${who})`,
      });
    }
    for (const r of returns) {
      lines.push({ at: r.at, line: `${time(r.at)} [return page] ${r.server}: ${r.outcome}` });
    }
    return lines.sort((a, b) => a.at.getTime() - b.at.getTime()).map((l) => l.line);
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'mcp-port': { type: 'string', default: '8788' },
      'as-port': { type: 'string', default: '8789' },
      'notes-port': { type: 'string', default: '8790' },
      'return-port': { type: 'string', default: '8791' },
      tenant: { type: 'string', default: 'demo' },
      user: { type: 'string', default: 'demo-user' },
    },
    strict: true,
  });
  const port = (flag: 'mcp-port' | 'as-port' | 'notes-port' | 'return-port') => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new SeedError(`--${flag}: 0-65535`);
    return n;
  };
  const demo = await seedDemo({
    url: process.env.LKMCP_URL || 'http://localhost:8787',
    dataDir: process.env.DATA_DIR || '.data',
    mcpPort: port('mcp-port'),
    oauthPorts: {
      authorizationServer: port('as-port'),
      mcp: port('notes-port'),
      returnPage: port('return-port'),
    },
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
    void demo.stop().then(() => process.exit(0));
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
