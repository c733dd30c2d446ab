/**
 * Runs the worker tests' MCP server (test/support/mcp-server.ts) for the Python tests: prints
 * one JSON line `{"url","sseUrl","redirectUrl","tokens":{"alice","bob"}}` and serves until
 * stdin closes or SIGTERM. Loopback only.
 *
 * Usage (from the repository root): npx tsx worker/scripts/serve-test-mcp.ts
 */
import { startTestMcpServer, testToken } from '../test/support/mcp-server.js';

const tokens = { alice: testToken(), bob: testToken() };
const server = await startTestMcpServer({
  [tokens.alice]: { id: 'alice', notes: ['alice: buy milk', 'alice: call bob'] },
  [tokens.bob]: { id: 'bob', notes: ['bob: fix the roof'] },
});
process.stdout.write(
  `${JSON.stringify({ url: server.url, sseUrl: server.sseUrl, redirectUrl: server.redirectUrl, tokens })}\n`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
