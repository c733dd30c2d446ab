/**
 * Runs the worker tests' MCP server (test/support/mcp-server.ts) for the Python tests: prints
 * one JSON line `{"url","sseUrl","redirectUrl","tokens":{"alice","bob"}}` and serves until
 * stdin closes or SIGTERM. Loopback only.
 *
 * Each further stdin line is a JSON command, answered by one JSON line on stdout (the renewal
 * tests rotate tokens with them): `{"op":"issue","user":"alice"}` → `{"token"}` (a new token
 * for that user); `{"op":"revoke","token"}` → `{"ok":true}` (answered 401 from now on);
 * `{"op":"scope","token","scope"}` → `{"ok":true}` (answered 403 `insufficient_scope`).
 *
 * Usage (from the repository root): npx tsx worker/scripts/serve-test-mcp.ts
 */
import { createInterface } from 'node:readline';
import { startTestMcpServer, type TestMcpUser, testToken } from '../test/support/mcp-server.js';

const tokens = { alice: testToken(), bob: testToken() };
const people: Record<string, TestMcpUser> = {
  alice: { id: 'alice', notes: ['alice: buy milk', 'alice: call bob'] },
  bob: { id: 'bob', notes: ['bob: fix the roof'] },
};
const users: Record<string, TestMcpUser> = { [tokens.alice]: people.alice!, [tokens.bob]: people.bob! };
const server = await startTestMcpServer(users);
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

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let answer: unknown = { error: 'bad command' };
  try {
    const command = JSON.parse(line) as { op?: string; user?: string; token?: string; scope?: string };
    if (command.op === 'issue' && command.user && people[command.user]) {
      const token = testToken();
      users[token] = { ...people[command.user]! };
      answer = { token };
    } else if (command.op === 'revoke' && command.token) {
      delete users[command.token];
      answer = { ok: true };
    } else if (command.op === 'scope' && command.token && users[command.token] && command.scope) {
      users[command.token]!.insufficientScope = command.scope;
      answer = { ok: true };
    }
  } catch {
    // answered as a bad command
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
lines.on('close', stop);
