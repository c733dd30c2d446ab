import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { string } from 'zod/mini';

/** What the MCP server knows about one bearer token. */
export interface McpUser {
  userId: string;
  /** Returned verbatim (as JSON) by the `whoami` tool. */
  data: unknown;
}

/** One tool call, as the server saw it. The token itself is never kept. */
export interface McpCall {
  /** sha256 hex of the bearer token: compare with {@link tokenFingerprint}. */
  tokenFingerprint: string;
  userId: string;
  tool: string;
  /** The call's arguments (test data; the e2e agent echoes its room name to tie calls to jobs). */
  args: Record<string, unknown>;
  transport: 'streamable_http' | 'sse';
  at: Date;
}

/** One HTTP request to an MCP path, authenticated or not (to prove "no contact at all"). */
export interface McpRequest {
  /** null when no bearer token was sent. */
  tokenFingerprint: string | null;
  method: string;
  path: string;
  status: number;
  /** The JSON-RPC calls of a POST (`initialize`, `tools/list`, `tools/call` with its tool, …). */
  rpc: { method: string; tool?: string }[];
  at: Date;
}

/** The JSON-RPC method (and, for `tools/call`, the tool) of each message in a POST body. */
export function rpcCalls(body: unknown): { method: string; tool?: string }[] {
  const messages = Array.isArray(body) ? body : [body];
  return messages.flatMap((m) => {
    if (typeof m !== 'object' || m === null || typeof (m as { method?: unknown }).method !== 'string')
      return [];
    const { method, params } = m as { method: string; params?: { name?: unknown } };
    return [
      typeof params?.name === 'string' && method === 'tools/call'
        ? { method, tool: params.name }
        : { method },
    ];
  });
}

export interface McpServerOptions {
  /** bearer token -> user. Any other token (or none) gets 401. */
  users: Record<string, McpUser>;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
}

/** A running test MCP server. */
export interface RunningMcpServer {
  /** Streamable HTTP endpoint, e.g. `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** Legacy HTTP+SSE endpoint (GET opens the stream, POSTs go to the announced `/messages`). */
  sseUrl: string;
  calls: McpCall[];
  requests: McpRequest[];
  stop(): Promise<void>;
}

/** The tool names the server exposes. */
export const MCP_TOOLS = ['whoami', 'echo', 'secret_tool'] as const;

/** sha256 hex of a bearer token: how calls are recorded and compared, never the token. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

function buildServer(user: McpUser, fingerprint: string, transport: McpCall['transport'], calls: McpCall[]) {
  const server = new McpServer({ name: 'lk-mcp-test-server', version: '1.0.0' });
  const record = (tool: string, args: Record<string, unknown> = {}) => {
    calls.push({ tokenFingerprint: fingerprint, userId: user.userId, tool, args, transport, at: new Date() });
  };
  server.registerTool(
    'whoami',
    { description: 'Returns who the caller is, according to their bearer token.' },
    async () => {
      record('whoami');
      return {
        content: [{ type: 'text', text: JSON.stringify({ user_id: user.userId, data: user.data }) }],
      };
    },
  );
  server.registerTool(
    'echo',
    { description: 'Echoes the given text back.', inputSchema: { text: string() } },
    async ({ text }) => {
      record('echo', { text });
      return { content: [{ type: 'text', text }] };
    },
  );
  server.registerTool(
    'secret_tool',
    { description: 'A tool that allowed_tools filters should hide.' },
    async () => {
      record('secret_tool');
      return { content: [{ type: 'text', text: `secret for ${user.userId}` }] };
    },
  );
  return server;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1024 * 1024) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  return raw ? JSON.parse(raw) : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/**
 * Starts a real MCP server (`@modelcontextprotocol/sdk`) on loopback that requires
 * `Authorization: Bearer <token>` and answers per token.
 *
 * - `POST /mcp`: Streamable HTTP, stateless (a fresh server per request, JSON responses).
 * - `GET /sse` + `POST /messages?sessionId=…`: legacy HTTP+SSE; every POST must carry the
 *   same token as the stream it belongs to.
 *
 * Tools: `whoami` (the token's `data`), `echo` (`{text}`), `secret_tool`. Every tool call is
 * recorded in `calls` with the token's sha256 fingerprint.
 */
export async function startMcpServer(options: McpServerOptions): Promise<RunningMcpServer> {
  const calls: McpCall[] = [];
  const requests: McpRequest[] = [];
  const sseSessions = new Map<string, { transport: SSEServerTransport; fingerprint: string }>();
  const users = new Map(Object.entries(options.users));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const token = bearerToken(req);
    const fingerprint = token === null ? null : tokenFingerprint(token);
    let rpc: McpRequest['rpc'] = [];
    res.on('finish', () => {
      requests.push({
        tokenFingerprint: fingerprint,
        method: req.method ?? '',
        path: url.pathname,
        status: res.statusCode,
        rpc,
        at: new Date(),
      });
    });

    if (url.pathname === '/healthz') return sendJson(res, 200, { ok: true });
    if (!['/mcp', '/sse', '/messages'].includes(url.pathname)) {
      return sendJson(res, 404, { error: 'not_found' });
    }
    const user = token === null ? undefined : users.get(token);
    if (!user || fingerprint === null) {
      return sendJson(
        res,
        401,
        { error: 'unauthenticated' },
        { 'www-authenticate': 'Bearer realm="lk-mcp-test-server"' },
      );
    }

    if (url.pathname === '/mcp') {
      if (req.method !== 'POST') {
        // Stateless: no standalone GET stream and no sessions to DELETE.
        return sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
      }
      const body = await readJson(req);
      rpc = rpcCalls(body);
      const server = buildServer(user, fingerprint, 'streamable_http', calls);
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }

    if (url.pathname === '/sse' && req.method === 'GET') {
      const transport = new SSEServerTransport('/messages', res);
      sseSessions.set(transport.sessionId, { transport, fingerprint });
      res.on('close', () => sseSessions.delete(transport.sessionId));
      await buildServer(user, fingerprint, 'sse', calls).connect(transport);
      return;
    }

    if (url.pathname === '/messages' && req.method === 'POST') {
      const session = sseSessions.get(url.searchParams.get('sessionId') ?? '');
      // A stream opened with one token cannot be driven with another.
      if (!session || session.fingerprint !== fingerprint) {
        return sendJson(res, 404, { error: 'unknown_session' });
      }
      const body = await readJson(req);
      rpc = rpcCalls(body);
      await session.transport.handlePostMessage(req, res, body);
      return;
    }
    return sendJson(res, 405, { error: 'method_not_allowed' });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
      else res.end();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://${host}:${port}`;

  return {
    url: `${base}/mcp`,
    sseUrl: `${base}/sse`,
    calls,
    requests,
    async stop() {
      for (const { transport } of sseSessions.values()) await transport.close();
      sseSessions.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Parses `--token TOKEN=USER` pairs (repeatable) into users whose `whoami` data is
 * `{ user_id, note }`.
 */
export function usersFromTokenArgs(pairs: string[]): Record<string, McpUser> {
  const users: Record<string, McpUser> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new Error(`--token expects TOKEN=USER, got "${pair}"`);
    const token = pair.slice(0, eq);
    const userId = pair.slice(eq + 1);
    users[token] = { userId, data: { user_id: userId, note: `MCP data for ${userId}` } };
  }
  return users;
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8788' },
      host: { type: 'string', default: '127.0.0.1' },
      token: { type: 'string', multiple: true, default: [] },
    },
  });
  const users = usersFromTokenArgs(values.token);
  if (Object.keys(users).length === 0) users[`demo-${randomUUID()}`] = { userId: 'demo', data: {} };
  const running = await startMcpServer({ users, port: Number(values.port), host: values.host });
  console.log(`MCP server (streamable HTTP) on ${running.url}, SSE on ${running.sseUrl}`);
  console.log(
    `users: ${Object.values(users)
      .map((u) => u.userId)
      .join(', ')}`,
  );
  const log = setInterval(() => {
    for (const call of running.calls.splice(0)) {
      console.log(
        `${call.at.toISOString()} ${call.userId} ${call.tool} ${call.tokenFingerprint.slice(0, 12)}`,
      );
    }
  }, 500);
  const shutdown = () => {
    clearInterval(log);
    void running.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
