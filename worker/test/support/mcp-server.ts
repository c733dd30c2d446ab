import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { string } from 'zod/mini';

/** A user the test MCP server knows, found by bearer token. */
export interface TestMcpUser {
  id: string;
  notes: string[];
  /** When set, every request with this user's token is answered 403 `insufficient_scope` naming it. */
  insufficientScope?: string;
}

/** A running test MCP server on 127.0.0.1. */
export interface TestMcpServer {
  /** Streamable HTTP endpoint. */
  url: string;
  /** Legacy SSE endpoint (GET opens the stream). */
  sseUrl: string;
  /** Answers 307 to the same path on another origin (127.0.0.2). */
  redirectUrl: string;
  /** Authorization header values seen, in order (for asserting which token was sent). */
  seenTokens: string[];
  close(): Promise<void>;
}

function buildServer(user: TestMcpUser): McpServer {
  const server = new McpServer({ name: 'worker-test-mcp', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the bearer token belongs to.' }, async () => ({
    content: [{ type: 'text', text: `user:${user.id}` }],
  }));
  server.registerTool(
    'notes_search',
    { description: 'Search the caller\u2019s notes.', inputSchema: { query: string() } },
    async ({ query }) => ({
      content: user.notes.filter((n) => n.includes(query)).map((text) => ({ type: 'text' as const, text })),
    }),
  );
  server.registerTool('always_fails', { description: 'Returns an MCP tool error.' }, async () => ({
    isError: true,
    content: [{ type: 'text', text: 'quota exhausted for this user' }],
  }));
  server.registerTool(
    'delete_everything',
    { description: 'Must never be exposed when not allowed.' },
    async () => ({
      content: [{ type: 'text', text: 'deleted' }],
    }),
  );
  return server;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

/**
 * Starts an MCP server (the official SDK's `McpServer`) that requires `Authorization: Bearer
 * <token>` and answers per token: `whoami` returns `user:<id>`, `notes_search` searches only
 * that user's notes. `users` is read on every request: a test revokes a token by deleting it. Streamable HTTP (stateless) at `/mcp`, SSE at `/sse` + `/messages`.
 */
export async function startTestMcpServer(users: Record<string, TestMcpUser>): Promise<TestMcpServer> {
  const seenTokens: string[] = [];
  const sse = new Map<string, SSEServerTransport>();
  let port = 0;

  const authenticate = (req: IncomingMessage, res: ServerResponse): TestMcpUser | undefined => {
    const header = req.headers.authorization ?? '';
    seenTokens.push(header);
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    const user = Object.hasOwn(users, token) ? users[token] : undefined;
    if (!user) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ error: 'invalid_token' }));
      return undefined;
    }
    if (user.insufficientScope !== undefined) {
      res.writeHead(403, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="insufficient_scope", scope="${user.insufficientScope}"`,
      });
      res.end(JSON.stringify({ error: 'insufficient_scope' }));
      return undefined;
    }
    return user;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path === '/redirect') {
      res.writeHead(307, { location: `http://127.0.0.2:${port}/mcp` });
      res.end();
      return;
    }
    if (path === '/mcp') {
      const user = authenticate(req, res);
      if (!user) return;
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      const server = buildServer(user);
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.method === 'POST' ? await readJson(req) : undefined);
      return;
    }
    if (path === '/sse' && req.method === 'GET') {
      const user = authenticate(req, res);
      if (!user) return;
      const transport = new SSEServerTransport('/messages', res);
      sse.set(transport.sessionId, transport);
      res.on('close', () => sse.delete(transport.sessionId));
      await buildServer(user).connect(transport);
      return;
    }
    if (path === '/messages' && req.method === 'POST') {
      if (!authenticate(req, res)) return;
      const id = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('sessionId') ?? '';
      const transport = sse.get(id);
      if (!transport) {
        res.writeHead(404).end();
        return;
      }
      await transport.handlePostMessage(req, res, await readJson(req));
      return;
    }
    res.writeHead(404).end();
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  port = (http.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/mcp`,
    sseUrl: `${base}/sse`,
    redirectUrl: `${base}/redirect`,
    seenTokens,
    close: async () => {
      for (const transport of sse.values()) await transport.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** A random bearer token for a test user. */
export function testToken(): string {
  return `tok_${randomUUID()}`;
}
