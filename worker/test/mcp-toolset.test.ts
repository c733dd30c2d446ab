import { llm } from '@livekit/agents';
import type { McpServerGrant } from '@livekit-mcp-dispatch/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsafeWorkerUrlError } from '../src/address-guard.js';
import { createMcpToolset, McpConnectionError, type McpToolset } from '../src/mcp-toolset.js';
import { openDispatchMetadata } from '../src/open.js';
import { startTestMcpServer, type TestMcpServer, testToken } from './support/mcp-server.js';
import { sealForTest, testKeyring } from './support/seal.js';

const AGENT = 'mcp-agent';
const ROOM = 'lk-mcp-acme-room1';
const keyring = testKeyring();
const tokenA = testToken();
const tokenB = testToken();
const testOnly = { allowLoopbackForTests: true, timeoutMs: 5_000 } as const;

let mcp: TestMcpServer;

beforeAll(async () => {
  mcp = await startTestMcpServer({
    [tokenA]: { id: 'alice', notes: ['alice: buy milk', 'alice: call bob'] },
    [tokenB]: { id: 'bob', notes: ['bob: fix the roof'] },
  });
});

afterAll(async () => {
  await mcp?.close();
});

function grantServer(token: string, extra: Partial<McpServerGrant> = {}): McpServerGrant {
  return {
    name: 'notes',
    url: mcp.url,
    transport: 'streamable_http',
    headers: { Authorization: `Bearer ${token}` },
    ...extra,
  };
}

/** Opens a job's metadata the way a worker does and sets up its toolsets like the runtime. */
async function jobToolsets(userId: string, token: string, extra: Partial<McpServerGrant> = {}) {
  const metadata = await sealForTest(keyring, {
    agentName: AGENT,
    roomName: ROOM,
    userId,
    mcpServers: [grantServer(token, extra)],
  });
  const grant = await openDispatchMetadata(metadata, { keyring, agentName: AGENT, roomName: ROOM });
  const toolsets = grant.mcpServers.map((server) => createMcpToolset(server, testOnly));
  const pushed: unknown[][] = [];
  for (const toolset of toolsets) await toolset.setup({ updateTools: (tools) => pushed.push([...tools]) });
  return { grant, toolsets, pushed };
}

function functionTools(toolset: McpToolset): Record<string, llm.FunctionTool> {
  return new llm.ToolContext([toolset]).functionTools;
}

async function call(toolset: McpToolset, name: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const tool = functionTools(toolset)[name];
  if (!tool) throw new Error(`tool ${name} not exposed`);
  return tool.execute(args as never, { abortSignal: new AbortController().signal } as never);
}

describe('createMcpToolset with jobs for two users', () => {
  it('gives each job only its own user’s data through the bridged tools', async () => {
    // Prepare
    const a = await jobToolsets('alice', tokenA);
    const b = await jobToolsets('bob', tokenB);
    const [toolsetA] = a.toolsets as [McpToolset];
    const [toolsetB] = b.toolsets as [McpToolset];

    // Act
    const whoA = await call(toolsetA, 'whoami');
    const whoB = await call(toolsetB, 'whoami');
    const notesA = await call(toolsetA, 'notes_search', { query: '' });
    const notesB = await call(toolsetB, 'notes_search', { query: '' });

    // Assess
    expect(a.grant.userId).toBe('alice');
    expect(whoA).toBe('user:alice');
    expect(whoB).toBe('user:bob');
    expect(notesA).toBe('alice: buy milk\nalice: call bob');
    expect(notesB).toBe('bob: fix the roof');
    expect(mcp.seenTokens).toContain(`Bearer ${tokenA}`);
    expect(mcp.seenTokens).toContain(`Bearer ${tokenB}`);
    await Promise.all([...a.toolsets, ...b.toolsets].map((t) => t.aclose()));
  });

  it('passes each MCP tool’s JSON schema through and pushes the list to the runtime', async () => {
    // Prepare / Act
    const { toolsets, pushed } = await jobToolsets('alice', tokenA);
    const toolset = toolsets[0] as McpToolset;
    const search = functionTools(toolset).notes_search;

    // Assess
    expect(toolset.id).toBe('mcp_notes');
    expect(llm.isToolset(toolset)).toBe(true);
    expect(pushed).toHaveLength(1);
    expect(search?.description).toBe('Search the caller’s notes.');
    expect(search?.parameters).toMatchObject({
      type: 'object',
      properties: { query: { type: 'string' } },
      required: ['query'],
    });
    await toolset.aclose();
    expect(toolset.tools).toHaveLength(0);
  });

  it('returns an MCP tool error to the LLM as a ToolError with the server’s text', async () => {
    // Prepare
    const { toolsets } = await jobToolsets('alice', tokenA);
    const toolset = toolsets[0] as McpToolset;

    // Act
    const outcome = await call(toolset, 'always_fails').catch((error: unknown) => error);

    // Assess
    expect(outcome).toBeInstanceOf(llm.ToolError);
    expect((outcome as Error).message).toBe('quota exhausted for this user');
    await toolset.aclose();
  });

  it('exposes only allowed_tools when the grant lists them', async () => {
    // Prepare / Act
    const { toolsets } = await jobToolsets('alice', tokenA, { allowed_tools: ['whoami', 'notes_search'] });
    const toolset = toolsets[0] as McpToolset;

    // Assess
    expect(Object.keys(functionTools(toolset)).sort()).toEqual(['notes_search', 'whoami']);
    await toolset.aclose();
  });

  it('exposes every tool when allowed_tools is absent', async () => {
    const { toolsets } = await jobToolsets('bob', tokenB);
    const toolset = toolsets[0] as McpToolset;
    expect(Object.keys(functionTools(toolset)).sort()).toEqual([
      'always_fails',
      'delete_everything',
      'notes_search',
      'whoami',
    ]);
    await toolset.aclose();
  });

  it('prefixes the names the LLM sees when asked, and still calls the server by its own name', async () => {
    // Prepare
    const toolset = createMcpToolset(grantServer(tokenA, { allowed_tools: ['whoami'] }), {
      ...testOnly,
      toolNamePrefix: 'notes.v2_',
    });

    // Act
    await toolset.setup();
    const who = await call(toolset, 'notes_v2_whoami');

    // Assess
    expect(Object.keys(functionTools(toolset))).toEqual(['notes_v2_whoami']);
    expect(who).toBe('user:alice');
    await toolset.aclose();
  });

  it('works over the legacy SSE transport when the grant says so', async () => {
    // Prepare
    const toolset = createMcpToolset(grantServer(tokenB, { url: mcp.sseUrl, transport: 'sse' }), testOnly);

    // Act
    await toolset.setup();
    const who = await call(toolset, 'whoami');

    // Assess
    expect(who).toBe('user:bob');
    await toolset.aclose();
  });
});

describe('createMcpToolset refusals', () => {
  it('fails setup with a clear error, without the token, when the server refuses the token', async () => {
    // Prepare
    const wrong = testToken();
    const toolset = createMcpToolset(grantServer(wrong), testOnly);

    // Act
    const error = await toolset.setup().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(McpConnectionError);
    expect((error as McpConnectionError).status).toBe(401);
    expect((error as Error).message).toBe(
      'MCP server "notes" answered HTTP 401: it refused the credentials (check the user’s MCP token)',
    );
    expect(JSON.stringify(error)).not.toContain(wrong);
    expect(String((error as Error).stack)).not.toContain(wrong);
  });

  it('refuses a loopback MCP URL unless the test-only option is set', async () => {
    // Prepare
    const before = mcp.seenTokens.length;
    const toolset = createMcpToolset(grantServer(tokenA));

    // Act
    const error = await toolset.setup().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(UnsafeWorkerUrlError);
    expect((error as Error).message).toBe('MCP URL scheme http: is not allowed (https only)');
    expect(mcp.seenTokens.length).toBe(before);
    expect(toolset.tools).toHaveLength(0);
  });

  it('refuses an https loopback URL unless the test-only option is set', async () => {
    const toolset = createMcpToolset(grantServer(tokenA, { url: mcp.url.replace('http:', 'https:') }));
    const error = await toolset.setup().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeWorkerUrlError);
    expect((error as Error).message).toBe('MCP host 127.0.0.1 is a loopback address');
  });

  it('refuses an https URL whose host resolves to a private address', async () => {
    // Prepare
    const toolset = createMcpToolset(grantServer(tokenA, { url: 'https://mcp.example.com/mcp' }), {
      lookup: async () => [
        { address: '203.0.114.7', family: 4 },
        { address: '10.0.0.8', family: 4 },
      ],
    });

    // Act
    const error = await toolset.setup().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(UnsafeWorkerUrlError);
    expect((error as Error).message).toBe('MCP host mcp.example.com resolves to a private address');
  });

  it('does not follow a redirect to another origin', async () => {
    // Prepare
    const before = mcp.seenTokens.length;
    const toolset = createMcpToolset(grantServer(tokenA, { url: mcp.redirectUrl }), testOnly);

    // Act
    const error = await toolset.setup().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(McpConnectionError);
    expect((error as Error).message).toContain('redirect');
    expect(mcp.seenTokens.length).toBe(before);
  });
});

describe('createMcpToolset address re-check', () => {
  it('checks the address again on every request, so a name that turns private is refused', async () => {
    // Prepare: the first lookup (setup's URL check) says loopback, the request's own says private.
    const answers = [[{ address: '127.0.0.1', family: 4 }], [{ address: '10.0.0.7', family: 4 }]];
    const lookup = async () => answers.shift() ?? [{ address: '10.0.0.7', family: 4 }];
    const before = mcp.seenTokens.length;
    const url = mcp.url.replace('127.0.0.1', 'localhost');
    const toolset = createMcpToolset(grantServer(tokenA, { url }), { ...testOnly, lookup });

    // Act
    const error = await toolset.setup().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(UnsafeWorkerUrlError);
    expect((error as Error).message).toBe('MCP host localhost resolves to a private address');
    expect(mcp.seenTokens.length).toBe(before);
  });
});
