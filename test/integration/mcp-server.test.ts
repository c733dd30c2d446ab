import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMcpServer, startMcpServer, tokenFingerprint } from '../support/mcp-server.js';

const ALICE_TOKEN = 'tok-alice-0123456789';
const BOB_TOKEN = 'tok-bob-9876543210';

function bearer(token: string): RequestInit {
  return { headers: { Authorization: `Bearer ${token}` } };
}

async function connectStreamable(server: RunningMcpServer, token: string): Promise<Client> {
  const client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(server.url), { requestInit: bearer(token) }),
  );
  return client;
}

function textOf(result: Awaited<ReturnType<Client['callTool']>>): string {
  const content = result.content as { type: string; text?: string }[];
  return content.map((c) => c.text ?? '').join('');
}

describe('startMcpServer', () => {
  let server: RunningMcpServer;

  beforeAll(async () => {
    server = await startMcpServer({
      users: {
        [ALICE_TOKEN]: { userId: 'alice', data: { calendar: 'alice-cal' } },
        [BOB_TOKEN]: { userId: 'bob', data: { calendar: 'bob-cal' } },
      },
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('listens on loopback only', () => {
    // Assess
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
  });

  it('refuses a request without a bearer token with 401', async () => {
    // Prepare
    const client = new Client({ name: 'test', version: '1.0.0' });

    // Act
    const connecting = client.connect(new StreamableHTTPClientTransport(new URL(server.url)));

    // Assess
    await expect(connecting).rejects.toMatchObject({ code: 401 });
    expect(server.requests.at(-1)).toMatchObject({ tokenFingerprint: null, status: 401 });
  });

  it('refuses an unknown token with 401 over raw HTTP', async () => {
    // Act
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { Authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: '{}',
    });

    // Assess
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('lists whoami, echo and secret_tool', async () => {
    // Prepare
    const client = await connectStreamable(server, ALICE_TOKEN);

    // Act
    const { tools } = await client.listTools();
    await client.close();

    // Assess
    expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'secret_tool', 'whoami']);
  });

  it("answers whoami with each token's own data", async () => {
    // Prepare
    const alice = await connectStreamable(server, ALICE_TOKEN);
    const bob = await connectStreamable(server, BOB_TOKEN);

    // Act
    const aliceSays = JSON.parse(textOf(await alice.callTool({ name: 'whoami', arguments: {} })));
    const bobSays = JSON.parse(textOf(await bob.callTool({ name: 'whoami', arguments: {} })));
    await alice.close();
    await bob.close();

    // Assess
    expect(aliceSays).toEqual({ user_id: 'alice', data: { calendar: 'alice-cal' } });
    expect(bobSays).toEqual({ user_id: 'bob', data: { calendar: 'bob-cal' } });
  });

  it('records each call with the token fingerprint, never the token', async () => {
    // Prepare
    const before = server.calls.length;
    const bob = await connectStreamable(server, BOB_TOKEN);

    // Act
    const echoed = textOf(await bob.callTool({ name: 'echo', arguments: { text: 'hi' } }));
    await bob.callTool({ name: 'secret_tool', arguments: {} });
    await bob.close();

    // Assess
    expect(echoed).toBe('hi');
    const recorded = server.calls.slice(before);
    expect(recorded).toMatchObject([
      {
        tokenFingerprint: tokenFingerprint(BOB_TOKEN),
        userId: 'bob',
        tool: 'echo',
        transport: 'streamable_http',
      },
      { tokenFingerprint: tokenFingerprint(BOB_TOKEN), userId: 'bob', tool: 'secret_tool' },
    ]);
    expect(recorded[0]?.at).toBeInstanceOf(Date);
    expect(JSON.stringify([server.calls, server.requests])).not.toContain(BOB_TOKEN);
  });

  it('serves the same tools over legacy SSE, bound to the stream token', async () => {
    // Prepare
    const before = server.calls.length;
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new SSEClientTransport(new URL(server.sseUrl), {
        requestInit: bearer(ALICE_TOKEN),
        eventSourceInit: {
          fetch: (url, init) =>
            fetch(url, { ...init, headers: { ...init?.headers, Authorization: `Bearer ${ALICE_TOKEN}` } }),
        },
      }),
    );

    // Act
    const says = JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
    await client.close();

    // Assess
    expect(says.user_id).toBe('alice');
    expect(server.calls.slice(before)).toMatchObject([
      { tokenFingerprint: tokenFingerprint(ALICE_TOKEN), tool: 'whoami', transport: 'sse' },
    ]);
  });
});
