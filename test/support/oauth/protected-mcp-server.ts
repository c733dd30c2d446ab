import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';

/** Options of {@link startProtectedMcpServer}. */
export interface ProtectedMcpServerOptions {
  /** The authorization server's issuer (its JWKS is at `<issuer>/jwks`, oidc-provider's default). */
  issuer: () => string;
  scopes?: string[];
  /** Overrides the metadata document (hostile cases). */
  metadata?: (self: string) => Record<string, unknown>;
  /** Leave out the `resource_metadata` hint so clients use the well-known URI. */
  noChallengeHint?: boolean;
}

/** A running MCP server that accepts only access tokens issued for its own URL. */
export interface RunningProtectedMcpServer {
  url: string;
  metadataUrl: string;
  /** Subjects of the tokens it accepted, in order. */
  accepted: string[];
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
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const scopes = options.scopes ?? ['notes:read'];
  const accepted: string[] = [];
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
      const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      if (match?.[1] === undefined) {
        challenge(res);
        return;
      }
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
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      const mcp = new McpServer({ name: 'oauth-test-mcp', version: '1.0.0' });
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

  return { url, metadataUrl, accepted, stop: () => new Promise<void>((r) => server.close(() => r())) };
}
