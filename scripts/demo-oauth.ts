/**
 * The OAuth half of `npm run seed:demo`, on 127.0.0.1 only: a real authorization server
 * (oidc-provider, test/support/oauth/authorization-server.ts) with one demo account; the `notes`
 * MCP server (the real SDK server of test/support/oauth/protected-mcp-server.ts: RFC 9728 metadata,
 * a 401 challenge, and only access tokens that server issued for its own URL, checked for
 * signature, issuer, audience and expiry); and the page an app would name as `return_to`, which
 * completes the connection as the demo user. Dev-only: none of this is in a Lambda bundle.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminClient, ApiError, UnreachableError } from '../cli/client.js';
import {
  type Account,
  type RunningAuthorizationServer,
  startAuthorizationServer,
} from '../test/support/oauth/authorization-server.js';
import {
  type RunningProtectedMcpServer,
  startProtectedMcpServer,
} from '../test/support/oauth/protected-mcp-server.js';

/** The catalog name of the demo's OAuth server. */
export const NOTES_SERVER = 'notes';
/** The demo account's password (its login is the demo user's id, so tokens carry that `sub`). */
export const DEMO_PASSWORD = 'demo';
/** The return page's path on its port. */
export const RETURN_PATH = '/oauth/return';

/** Ports of the three servers; 0 picks a free one. */
export interface DemoOAuthPorts {
  authorizationServer: number;
  mcp: number;
  returnPage: number;
}

/** Options of {@link startDemoOAuth}. */
export interface DemoOAuthOptions {
  /** The running API, e.g. `http://localhost:8787`: the return page completes connections there. */
  apiUrl: string;
  userId: string;
  /** A fresh app-user JWT of `userId` for each completion. */
  userToken: () => Promise<string>;
  ports: DemoOAuthPorts;
  /** Where the authorization server keeps its key, clients and grants, one file per port. */
  stateDir: string;
}

/** What the return page did with one arrival: `connected`, or the error code it met. */
export interface DemoReturn {
  server: string;
  outcome: string;
  at: Date;
}

/** The running OAuth demo. */
export interface DemoOAuth {
  /** The authorization server's issuer, `http://127.0.0.1:<port>`. */
  issuer: string;
  /** The `notes` MCP server's URL: the catalog entry's `url` and the tokens' audience. */
  mcpUrl: string;
  /** The return page: the tenant's `oauth_return_urls` entry and the `return_to` to send. */
  returnUrl: string;
  /** The one account the login form takes. */
  account: Account;
  authorizationServer: RunningAuthorizationServer;
  mcp: RunningProtectedMcpServer;
  /** Each arrival at the return page, in order. */
  returns: DemoReturn[];
  stop(): Promise<void>;
}

/** Which of the three servers could not listen on its port (the caller names the flag). */
export class DemoPortInUseError extends Error {
  constructor(
    readonly which: keyof DemoOAuthPorts,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`port ${port} is taken`, options);
    this.name = 'DemoPortInUseError';
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, status: number, title: string, lines: string[]): void {
  // The one-time handle is used (or refused) now: drop it from the address bar and history.
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>
<h1 id="outcome">${escapeHtml(title)}</h1>
${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}
<script>history.replaceState(null, '', location.pathname)</script>
</body></html>`,
  );
}

/**
 * The return page: `?server=<name>&result=<handle>` is completed as the demo user
 * (`POST /v1/connections/{server}/complete`, server side: the page holds no token, and the API
 * needs no CORS origin); `?error=<code>` is shown as it came.
 */
function returnPage(options: DemoOAuthOptions, returns: DemoReturn[]) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://return.invalid');
    if (req.method !== 'GET' || url.pathname !== RETURN_PATH) {
      res.writeHead(404).end();
      return;
    }
    const server = url.searchParams.get('server') ?? '';
    const result = url.searchParams.get('result');
    const error = url.searchParams.get('error');
    if (!/^[a-z0-9_-]{1,32}$/.test(server) || (result === null && error === null)) {
      page(res, 400, 'Nothing to complete', [
        'This page is where the API sends the browser back after an authorization (with ?server and ?result).',
      ]);
      return;
    }
    const done = (outcome: string) => returns.push({ server, outcome, at: new Date() });
    if (error !== null) {
      done(error);
      page(res, 200, `${server}: not connected (${error})`, [
        'The authorization did not succeed; start a new one.',
      ]);
      return;
    }
    try {
      const client = new AdminClient({ baseUrl: options.apiUrl, token: await options.userToken() });
      const answer = await client.request<{ status?: string }>(
        'POST',
        `/v1/connections/${encodeURIComponent(server)}/complete`,
        { body: { result } },
      );
      done(String(answer.body.status));
      page(res, 200, `${server}: ${String(answer.body.status)}`, [
        `Connected as ${options.userId}: the grant is stored, sealed, by the server.`,
        `Next: start a session again; its mcp_servers lists ${server} as ready.`,
      ]);
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'unreachable';
      done(code);
      const why = err instanceof ApiError || err instanceof UnreachableError ? err.message : String(err);
      page(res, 502, `${server}: not connected (${code})`, [why]);
    }
  };
}

async function listen(server: Server, which: keyof DemoOAuthPorts, port: number): Promise<number> {
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', fail);
        ok();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new DemoPortInUseError(which, port);
    throw err;
  }
  return (server.address() as AddressInfo).port;
}

async function started<T>(which: keyof DemoOAuthPorts, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new DemoPortInUseError(which, port, { cause: err });
    throw err;
  }
}

/** Starts the authorization server, the `notes` MCP server and the return page. */
export async function startDemoOAuth(options: DemoOAuthOptions): Promise<DemoOAuth> {
  const account: Account = { login: options.userId, password: DEMO_PASSWORD, sub: options.userId };
  const returns: DemoReturn[] = [];
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s();
  };
  try {
    let issuer = '';
    const mcp = await started('mcp', options.ports.mcp, () =>
      startProtectedMcpServer({
        issuer: () => issuer,
        port: options.ports.mcp,
        name: 'demo-notes',
        scopes: ['notes:read'],
      }),
    );
    stops.push(mcp.stop);
    const authorizationServer = await started('authorizationServer', options.ports.authorizationServer, () =>
      startAuthorizationServer({
        resources: () => [mcp.url],
        resourceScopes: 'notes:read',
        account,
        loginHint: `Demo authorization server: sign in with login ${account.login}, password ${account.password} (its one account).`,
        port: options.ports.authorizationServer,
        stateDir: options.stateDir,
        // A day of consent: refresh tokens outlive a demo session (access tokens: 10 minutes).
        grantTtlSeconds: 24 * 3600,
      }),
    );
    issuer = authorizationServer.issuer;
    stops.push(authorizationServer.stop);
    const handle = returnPage(options, returns);
    const page = createServer((req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    const returnPort = await listen(page, 'returnPage', options.ports.returnPage);
    stops.push(
      () =>
        new Promise<void>((ok) => {
          page.close(() => ok());
          // A browser keeps its connection open; the demo is over.
          page.closeAllConnections();
        }),
    );
    return {
      issuer,
      mcpUrl: mcp.url,
      returnUrl: `http://127.0.0.1:${returnPort}${RETURN_PATH}`,
      account,
      authorizationServer,
      mcp,
      returns,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
