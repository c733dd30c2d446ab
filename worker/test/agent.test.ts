import { initializeLogger, type JobContext, ServerOptions } from '@livekit/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import agent, {
  connectToolsets,
  type JobLike,
  type JobLogger,
  listeningServerOptions,
  openJob,
  prepareJob,
  serverOptions,
} from '../src/agent.js';
import { startTestMcpServer, type TestMcpServer, testToken } from './support/mcp-server.js';
import { sealForTest, testKeyring } from './support/seal.js';

const AGENT = 'mcp-agent';
const ROOM = 'lk-mcp-acme-room9';
const keyring = testKeyring();
const keyringText = JSON.stringify(keyring);
const token = testToken();
let mcp: TestMcpServer;

beforeAll(async () => {
  mcp = await startTestMcpServer({ [token]: { id: 'carol', notes: [] } });
});

afterAll(async () => {
  await mcp?.close();
});

function fakeJob(metadata: string, room = ROOM) {
  const shutdowns: string[] = [];
  const ctx = {
    job: { id: 'AJ_test', metadata, room: { name: room } },
    shutdown: (reason?: string) => shutdowns.push(reason ?? ''),
  } as unknown as JobLike;
  return { ctx, shutdowns };
}

function recordingLogger() {
  const lines: string[] = [];
  const logger: JobLogger = {
    error: (fields, message) => lines.push(`${message} ${JSON.stringify(fields)}`),
  };
  return { logger, lines };
}

describe('openJob', () => {
  it('returns the grant of metadata sealed for this agent and room', async () => {
    const metadata = await sealForTest(keyring, {
      agentName: AGENT,
      roomName: ROOM,
      userId: 'carol',
      mcpServers: [],
    });
    const { ctx } = fakeJob(metadata);
    const { logger, lines } = recordingLogger();

    const grant = await openJob(ctx, keyringText, AGENT, logger);

    expect(grant?.participantIdentity).toBe('carol');
    expect(lines).toEqual([]);
  });

  it('logs one line with the code only when the metadata is for another room', async () => {
    // Prepare
    const metadata = await sealForTest(keyring, {
      agentName: AGENT,
      roomName: 'lk-mcp-acme-other',
      userId: 'carol',
      mcpServers: [
        {
          name: 'n',
          url: mcp.url,
          transport: 'streamable_http',
          headers: { Authorization: `Bearer ${token}` },
        },
      ],
    });
    const { ctx } = fakeJob(metadata);
    const { logger, lines } = recordingLogger();

    // Act
    const grant = await openJob(ctx, keyringText, AGENT, logger);

    // Assess
    expect(grant).toBeUndefined();
    expect(lines).toEqual([
      'dispatch metadata refused: wrong_room; ending job AJ_test without serving anyone {"code":"wrong_room","jobId":"AJ_test"}',
    ]);
    expect(lines.join()).not.toContain(token);
    expect(lines.join()).not.toContain('carol');
  });
});

describe('agent entry', () => {
  it('ends a job whose metadata does not open, before connecting to the room', async () => {
    // Prepare
    initializeLogger({ pretty: false, level: 'silent' });
    const { ctx, shutdowns } = fakeJob('not-a-jwe');
    let connected = false;
    (ctx as unknown as { connect: () => Promise<void> }).connect = async () => {
      connected = true;
    };
    process.env.DISPATCH_KEYS = keyringText;

    // Act
    await agent.entry(ctx as JobContext);

    // Assess
    expect(shutdowns).toEqual(['dispatch metadata refused']);
    expect(connected).toBe(false);
  });
});

describe('connectToolsets', () => {
  it('connects the user’s server and leaves out one that refuses its token', async () => {
    // Prepare
    const { logger, lines } = recordingLogger();
    const servers = [
      {
        name: 'good',
        url: mcp.url,
        transport: 'streamable_http' as const,
        headers: { Authorization: `Bearer ${token}` },
      },
      {
        name: 'bad',
        url: mcp.url,
        transport: 'streamable_http' as const,
        headers: { Authorization: 'Bearer nope' },
      },
    ];

    // Act
    const toolsets = await connectToolsets(servers, logger, { allowLoopbackForTests: true });

    // Assess
    expect(toolsets.map((t) => t.id)).toEqual(['mcp_good']);
    expect(lines).toEqual([
      'MCP toolset mcp_bad unavailable: MCP server "bad" answered HTTP 401: it refused the credentials (check the user’s MCP token) {"toolset":"mcp_bad"}',
    ]);
    await Promise.all(toolsets.map((t) => t.aclose()));
  });
});

describe('serverOptions', () => {
  it('leaves the library defaults when nothing is set', () => {
    expect(serverOptions({})).toEqual({});
  });

  it('reports no load with LKMCP_WORKER_LOAD=ignore and places the health server', async () => {
    // Prepare
    const env = {
      LKMCP_WORKER_LOAD: 'ignore',
      LKMCP_HEALTH_HOST: '127.0.0.1',
      LKMCP_HEALTH_PORT: '0',
      LKMCP_IDLE_PROCESSES: '1',
    };

    // Act
    const options = serverOptions(env);

    // Assess
    await expect(options.loadFunc?.()).resolves.toBe(0);
    expect({ ...options, loadFunc: undefined }).toEqual({
      loadFunc: undefined,
      host: '127.0.0.1',
      port: 0,
      numIdleProcesses: 1,
    });
  });

  it('turns a health port of 0 into a free one, which the library keeps in start mode', async () => {
    // Prepare: the library reads 0 as its default (8081 in production), as cli's start re-creates it
    const env = { LKMCP_HEALTH_HOST: '127.0.0.1', LKMCP_HEALTH_PORT: '0' };
    const asStarted = (port: number | undefined) => {
      const { production: _, ...opts } = new ServerOptions({ agent: '/agent.js', host: '127.0.0.1', port });
      return new ServerOptions({ ...opts, production: true }).port;
    };

    // Act
    const options = await listeningServerOptions(env);
    const other = await listeningServerOptions(env);

    // Assess
    expect(asStarted(0)).toBe(8081);
    expect(options.port).toBeGreaterThan(0);
    expect(asStarted(options.port)).toBe(options.port);
    expect(other.port).toBeGreaterThan(0);
    expect((await listeningServerOptions({ LKMCP_HEALTH_PORT: '9100' })).port).toBe(9100);
    expect((await listeningServerOptions({})).port).toBeUndefined();
  });

  it('names every bad value in one error, like python/agent.py', () => {
    expect(() =>
      serverOptions({ LKMCP_WORKER_LOAD: 'none', LKMCP_HEALTH_PORT: '80a', LKMCP_IDLE_PROCESSES: '-1' }),
    ).toThrow(
      'LKMCP_WORKER_LOAD must be "cpu" or "ignore"; LKMCP_HEALTH_PORT must be a whole number from 0 to 65535; LKMCP_IDLE_PROCESSES must be a whole number from 0 to 64',
    );
  });
});

describe('prepareJob', () => {
  it('opens the grant, connects its toolsets with the dev switch, and closes them at shutdown', async () => {
    // Prepare
    const metadata = await sealForTest(keyring, {
      agentName: AGENT,
      roomName: ROOM,
      userId: 'carol',
      mcpServers: [
        {
          name: 'n',
          url: mcp.url,
          transport: 'streamable_http',
          headers: { Authorization: `Bearer ${token}` },
        },
      ],
    });
    const { ctx, shutdowns } = fakeJob(metadata);
    const callbacks: (() => Promise<void>)[] = [];
    const job = Object.assign(ctx, { addShutdownCallback: (cb: () => Promise<void>) => callbacks.push(cb) });
    const { logger, lines } = recordingLogger();
    const env = { DISPATCH_KEYS: keyringText, LKMCP_AGENT_NAME: AGENT, ALLOW_INSECURE_MCP_URLS: 'true' };

    // Act
    const prepared = await prepareJob(job, logger, env);

    // Assess
    expect(prepared?.grant.participantIdentity).toBe('carol');
    expect(prepared?.toolsets.map((t) => t.id)).toEqual(['mcp_n']);
    expect(shutdowns).toEqual([]);
    expect(lines).toEqual([]);
    expect(callbacks).toHaveLength(1);
    await callbacks[0]?.();
  });

  it('refuses a loopback MCP URL without ALLOW_INSECURE_MCP_URLS', async () => {
    const metadata = await sealForTest(keyring, {
      agentName: AGENT,
      roomName: ROOM,
      userId: 'carol',
      mcpServers: [
        {
          name: 'n',
          url: mcp.url,
          transport: 'streamable_http',
          headers: { Authorization: `Bearer ${token}` },
        },
      ],
    });
    const { ctx } = fakeJob(metadata);
    const job = Object.assign(ctx, { addShutdownCallback: () => undefined });
    const { logger, lines } = recordingLogger();

    const prepared = await prepareJob(job, logger, { DISPATCH_KEYS: keyringText, LKMCP_AGENT_NAME: AGENT });

    expect(prepared?.toolsets).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^MCP toolset mcp_n unavailable: /);
  });
});
