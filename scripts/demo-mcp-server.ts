/**
 * The small local MCP server of the demo: the real `@modelcontextprotocol/sdk` server the tests
 * use (test/support/mcp-server.ts), answering one bearer token. Tools: `whoami`, `echo`,
 * `secret_tool`. Standalone: `npx tsx test/support/mcp-server.ts --token TOKEN=USER`.
 */
import { randomBytes } from 'node:crypto';
import { type RunningMcpServer, startMcpServer } from '../test/support/mcp-server.js';

export { MCP_TOOLS } from '../test/support/mcp-server.js';

/** A running demo MCP server and the one token it accepts. */
export interface DemoMcpServer {
  /** `http://127.0.0.1:<port>/mcp`: a loopback URL, which only the dev switch `ALLOW_INSECURE_MCP_URLS` allows. */
  url: string;
  /** The bearer token it accepts (a secret: stored sealed, never printed). */
  token: string;
  server: RunningMcpServer;
  stop(): Promise<void>;
}

/** Starts the demo MCP server on 127.0.0.1 (`port` 0 picks a free one) for `userId`. */
export async function startDemoMcpServer(options: { port: number; userId: string }): Promise<DemoMcpServer> {
  const token = `demo-${randomBytes(24).toString('base64url')}`;
  const server = await startMcpServer({
    users: {
      [token]: {
        userId: options.userId,
        data: { user_id: options.userId, note: 'Hello from the demo MCP server.' },
      },
    },
    port: options.port,
    host: '127.0.0.1',
  });
  const port = new URL(server.url).port;
  return { url: `http://127.0.0.1:${port}/mcp`, token, server, stop: () => server.stop() };
}
