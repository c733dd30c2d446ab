import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { rpcCalls } from '../mcp-server.js';

/** Options of {@link startProtectedMcpServer}. */
export interface ProtectedMcpServerOptions {
  /** The authorization server's issuer (its JWKS is at `<issuer>/jwks`, oidc-provider's default). */
  issuer: () => string;
  scopes?: string[];
  /** Overrides the metadata document (hostile cases). */
  metadata?: (self: string) => Record<string, unknown>;
  /** Leave out the `resource_metadata` hint so clients use the well-known URI. */
  noChallengeHint?: boolean;
  /** 0 (default) picks a free port on 127.0.0.1. */
  port?: number;
  /** The name it announces in `initialize` (`oauth-test-mcp` unless given). */
  name?: string;
}

/** One HTTP request to `/mcp`, as the server answered it. The token itself is never kept. */
export interface ProtectedMcpRequest {
  method: string;
  status: number;
  /** `none` (no bearer token), `refused` (not a valid token for this resource) or `accepted`. */
  token: 'none' | 'refused' | 'accepted';
  /** The accepted token's claims that say whom and what it was issued for. */
  claims?: { sub: string; aud: string | string[]; iss: string; scope?: string };
  /** The JSON-RPC calls of a POST (`initialize`, `tools/list`, `tools/call` with its tool, …). */
  rpc: { method: string; tool?: string }[];
  at: Date;
}

/** A running MCP server that accepts only access tokens issued for its own URL. */
export interface RunningProtectedMcpServer {
  url: string;
  metadataUrl: string;
  /** Subjects of the tokens it accepted, in order. */
  accepted: string[];
  requests: ProtectedMcpRequest[];
  stop(): Promise<void>;
}

/**
 * A real MCP server (SDK, streamable HTTP) behind RFC 9728: serves its Protected Resource
 * Metadata, verifies each bearer JWT (signature via the AS's JWKS, `iss`, `aud` = its own URL,
 * expiry) and otherwise answers 401 with `WWW-Authenticate: Bearer resource_metadata=…`.
 */
export async function startProtectedMcpServer(
  options: ProtectedMcpServerOptions,
): Promise<RunningProtectedMcpServer> {
  const server: Server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const scopes = options.scopes ?? ['notes:read'];
  const accepted: string[] = [];
  const requests: ProtectedMcpRequest[] = [];
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  const challenge = (res: ServerResponse, error?: string) => {
    const hint = options.noChallengeHint ? '' : `resource_metadata="${metadataUrl}", `;
    res.writeHead(401, {
      'www-authenticate': `Bearer ${hint}scope="${scopes.join(' ')}"${error ? `, error="${error}"` : ''}`,
      'content-type': 'application/json',
    });
    res.end('{"error":"unauthorized"}');
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (
        req.method === 'GET' &&
        (path === '/.well-known/oauth-protected-resource/mcp' ||
          path === '/.well-known/oauth-protected-resource')
      ) {
        const doc = options.metadata?.(url) ?? {
          resource: url,
          authorization_servers: [options.issuer()],
          scopes_supported: scopes,
          bearer_methods_supported: ['header'],
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
        return;
      }
      if (path !== '/mcp') {
        res.writeHead(404).end();
        return;
      }
      const seen: ProtectedMcpRequest = {
        method: req.method ?? '',
        status: 0,
        token: 'none',
        rpc: [],
        at: new Date(),
      };
      res.once('finish', () => {
        seen.status = res.statusCode;
        requests.push(seen);
      });
      const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      if (match?.[1] === undefined) {
        challenge(res);
        return;
      }
      seen.token = 'refused';
      let payload: JWTPayload;
      try {
        jwks ??= createRemoteJWKSet(new URL(`${options.issuer()}/jwks`));
        ({ payload } = await jwtVerify(match[1], jwks, {
          issuer: options.issuer(),
          audience: url,
          typ: 'at+jwt',
        }));
      } catch {
        challenge(res, 'invalid_token');
        return;
      }
      accepted.push(String(payload.sub));
      seen.token = 'accepted';
      seen.claims = {
        sub: String(payload.sub),
        aud: payload.aud ?? [],
        iss: String(payload.iss),
        ...(typeof payload.scope === 'string' ? { scope: payload.scope } : {}),
      };
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      seen.rpc = rpcCalls(body);
      const mcp = new McpServer({ name: options.name ?? 'oauth-test-mcp', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'who the token is for' }, async () => ({
        content: [{ type: 'text', text: String(payload.sub) }],
      }));
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });

  return {
    url,
    metadataUrl,
    accepted,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
