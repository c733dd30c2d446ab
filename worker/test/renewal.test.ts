import { llm } from '@livekit/agents';
import {
  type McpServerGrant,
  makeWorkerAssertion,
  parseKeyring,
  verifyWorkerAssertion,
  workerAssertionKey,
} from '@livekit-mcp-dispatch/contract';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertionVectors } from '../scripts/make-vectors.js';
import { prepareJob } from '../src/agent.js';
import { JobCredentials } from '../src/live.js';
import type { McpToolset } from '../src/mcp-toolset.js';
import { openDispatchMetadata } from '../src/open.js';
import {
  RenewalClient,
  RenewalRefusedError,
  RenewalUnavailableError,
  retryAfterMs,
  SessionEndedError,
} from '../src/renewal.js';
import { CredentialsStandIn } from './support/credentials-standin.js';
import { startTestMcpServer, type TestMcpServer, type TestMcpUser, testToken } from './support/mcp-server.js';
import { testKeyring } from './support/seal.js';

const AGENT = 'mcp-agent';
const ROOM = 'lk-mcp-acme-renewal';
const users: Record<string, TestMcpUser> = {};
const alice = (): TestMcpUser => ({ id: 'alice', notes: ['alice: buy milk'] });
let mcp: TestMcpServer;
let standIn: CredentialsStandIn;

beforeAll(async () => {
  mcp = await startTestMcpServer(users);
});
afterAll(async () => {
  await mcp?.close();
});
beforeEach(async () => {
  standIn = await new CredentialsStandIn(testKeyring('k1'), AGENT, ROOM).start();
});
afterEach(async () => {
  await standIn.close();
});

function issue(): string {
  const token = testToken();
  users[token] = alice();
  return token;
}

function server(
  name: string,
  token: string | undefined,
  extra: Partial<McpServerGrant> = {},
): McpServerGrant {
  return {
    name,
    url: mcp.url,
    transport: 'streamable_http',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    auth: 'oauth',
    ...extra,
  };
}

function client(waited: number[] = [], policy = {}): RenewalClient {
  return new RenewalClient({
    keyring: standIn.keyring,
    agentName: AGENT,
    allowInsecureForTests: true,
    policy,
    sleep: async (ms) => {
      waited.push(ms);
    },
  });
}

async function call(toolset: McpToolset, name: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const tool = new llm.ToolContext([toolset]).functionTools[name];
  if (!tool) throw new Error(`tool ${name} not exposed`);
  return tool.execute(args as never, { abortSignal: new AbortController().signal } as never);
}

const silent = { error: () => undefined, warn: () => undefined, info: () => undefined };

async function credentials(metadata: string, ended: string[], policy = {}) {
  const grant = await openDispatchMetadata(metadata, {
    keyring: standIn.keyring,
    agentName: AGENT,
    roomName: ROOM,
  });
  return new JobCredentials(metadata, grant, {
    keyring: standIn.keyring,
    client: client([], policy),
    logger: silent,
    onSessionEnded: (reason) => ended.push(reason),
    toolsetOptions: { allowLoopbackForTests: true, timeoutMs: 5_000 },
    minRenewalIntervalMs: 300,
  });
}

describe('worker assertions, both libraries', () => {
  it('makes the shared vectors and the known answer the Python suite asserts', async () => {
    // Prepare: the same key and inputs as worker/python/tests/test_assertion.py
    const { keyring } = parseKeyring('', {
      current: 'k-kat',
      keys: { 'k-kat': Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64url') },
    });

    // Act
    const token = await makeWorkerAssertion({
      keyring: keyring!,
      agentName: AGENT,
      refreshUrl: 'https://dispatch.example.com/v1/worker/credentials',
      sid: 'sid-kat',
      now: 1_800_000_000,
      jti: 'jti-kat',
    });

    // Assess
    expect(Buffer.from(workerAssertionKey(keyring!.keys.get('k-kat')!)).toString('hex')).toBe(
      '4ea893b24c89733cbc786bf5e2bfefce6ee1c4fb8c924ab333ef2d66dc76ae27',
    );
    expect(token).toBe(
      'eyJhbGciOiJIUzI1NiIsImtpZCI6Imsta2F0IiwidHlwIjoibGstbWNwLXdvcmtlcitqd3QifQ' +
        '.eyJpc3MiOiJtY3AtYWdlbnQiLCJhdWQiOiJodHRwczovL2Rpc3BhdGNoLmV4YW1wbGUuY29tL3YxL3dvcmtlci9jcmVkZW50aWFscyIsInN1YiI6InNpZC1rYXQiLCJpYXQiOjE4MDAwMDAwMDAsImV4cCI6MTgwMDAwMDA2MCwianRpIjoianRpLWthdCJ9' +
        '.-c5Y3S85mzBCurctKebSXaobyvZb8D_6kxXEDH2CL8I',
    );
    for (const vector of await assertionVectors()) {
      const ring = parseKeyring('', vector.keyring).keyring!;
      const claims = await verifyWorkerAssertion(vector.token, {
        keyring: ring,
        audience: vector.refresh_url,
        now: Math.floor(vector.now) + 1,
      });
      expect([claims.iss, claims.sub, claims.jti], vector.name).toEqual([
        vector.agent_name,
        vector.sid,
        vector.jti,
      ]);
    }
  });
});

describe('RenewalClient against the stand-in endpoint', () => {
  it('gets new metadata for a verified assertion and sends the rejected servers', async () => {
    standIn.servers = [server('notes', 'tok-new')];
    standIn.unavailable = [{ name: 'crm', status: 409, code: 'mcp_reauth_required' }];
    const answer = await client().renew(await standIn.metadata(), standIn.url, standIn.sid, [
      { name: 'notes', status: 403, scope: 'notes:write' },
    ]);
    const grant = await openDispatchMetadata(answer.metadata, {
      keyring: standIn.keyring,
      agentName: AGENT,
      roomName: ROOM,
    });
    expect(grant.mcpServers[0]?.headers).toEqual({ Authorization: 'Bearer tok-new' });
    expect(answer.unavailable).toEqual([{ name: 'crm', status: 409, code: 'mcp_reauth_required' }]);
    const [request] = standIn.requests;
    expect(request?.claims).toMatchObject({ iss: AGENT, aud: standIn.url, sub: standIn.sid });
    expect(request?.body.rejected).toEqual([{ name: 'notes', status: 403, scope: 'notes:write' }]);
  });

  it.each([
    [503, 'store_unavailable'],
    [429, 'rate_limited'],
  ])('retries a %i honouring Retry-After, with a fresh jti each time', async (status, code) => {
    standIn.script = [
      { status, code, headers: { 'retry-after': '2' } },
      { status, code, headers: { 'retry-after': '2' } },
    ];
    const waited: number[] = [];
    await client(waited).renew(await standIn.metadata(), standIn.url, standIn.sid);
    expect(standIn.requests).toHaveLength(3);
    expect(new Set(standIn.requests.map((r) => r.claims?.jti)).size).toBe(3);
    expect(waited).toEqual([2000, 2000]);
  });

  it('backs off with jitter and gives up after its attempts', async () => {
    standIn.script = Array.from({ length: 3 }, () => ({ status: 502, code: 'bad_gateway' }));
    const waited: number[] = [];
    const renewal = client(waited, { attempts: 3, baseDelayMs: 100, maxDelayMs: 150 }).renew(
      await standIn.metadata(),
      standIn.url,
      standIn.sid,
    );
    await expect(renewal).rejects.toMatchObject({
      name: 'RenewalUnavailableError',
      status: 502,
      code: 'bad_gateway',
    });
    expect(standIn.requests).toHaveLength(3);
    expect(waited).toHaveLength(2);
    expect(waited[0]).toBeLessThanOrEqual(100);
    expect(waited[1]).toBeLessThanOrEqual(150);
  });

  it('ends on session_ended and never retries another 4xx', async () => {
    standIn.script = [{ status: 403, code: 'session_ended' }];
    await expect(client().renew(await standIn.metadata(), standIn.url, standIn.sid)).rejects.toBeInstanceOf(
      SessionEndedError,
    );
    for (const [status, code] of [
      [401, 'invalid_metadata'],
      [401, 'invalid_worker_assertion'],
      [400, 'validation_failed'],
      [403, 'forbidden'],
    ] as const) {
      standIn.requests.length = 0;
      standIn.script = [{ status, code, headers: { 'retry-after': '1' } }];
      const error = await client()
        .renew(await standIn.metadata(), standIn.url, standIn.sid)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RenewalRefusedError);
      expect(error).toMatchObject({ status, code });
      expect(standIn.requests).toHaveLength(1);
    }
  });

  it('is refused by the stand-in with another keyring, and reaches no http URL outside tests', async () => {
    const stranger = new RenewalClient({
      keyring: testKeyring('k1'),
      agentName: AGENT,
      allowInsecureForTests: true,
    });
    await expect(stranger.renew(await standIn.metadata(), standIn.url, standIn.sid)).rejects.toMatchObject({
      status: 401,
      code: 'invalid_worker_assertion',
    });
    const strict = new RenewalClient({ keyring: standIn.keyring, agentName: AGENT });
    standIn.requests.length = 0;
    await expect(strict.renew(await standIn.metadata(), standIn.url, standIn.sid)).rejects.toMatchObject({
      code: 'unsafe_refresh_url',
    });
    expect(standIn.requests).toEqual([]);
  });

  it('times out a slow endpoint and retries an unreachable one', async () => {
    standIn.delayMs = 1_000;
    const started = Date.now();
    await expect(
      client([], { attempts: 2, timeoutMs: 200 }).renew(await standIn.metadata(), standIn.url, standIn.sid),
    ).rejects.toBeInstanceOf(RenewalUnavailableError);
    expect(Date.now() - started).toBeLessThan(900);
    await expect(
      client([], { attempts: 2 }).renew('x', 'http://127.0.0.1:9/v1/worker/credentials', 'sid'),
    ).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('5')).toBe(5000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:50 GMT'))).toBe(
      10_000,
    );
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('JobCredentials with the real MCP server', () => {
  it('renews at start and offers only the renewed tokens (token mode too)', async () => {
    const old = issue();
    delete users[old];
    const fresh = issue();
    const sealed = await standIn.metadata([server('notes', old), server('more', undefined)]);
    standIn.servers = [server('notes', fresh), server('more', fresh)];
    const ended: string[] = [];
    const job = await credentials(sealed, ended);
    const toolsets = await job.start();
    try {
      expect(toolsets?.map((t) => t.id).sort()).toEqual(['mcp_more', 'mcp_notes']);
      for (const toolset of toolsets ?? [])
        expect(await call(toolset, `${toolset.serverName}_whoami`)).toBe('user:alice');
      expect(standIn.requests).toHaveLength(1);
      expect(ended).toEqual([]);
    } finally {
      await job.aclose();
    }
  });

  it('says how long the start renewal and the sealed connect took, and what the renewal added', async () => {
    // Prepare: a slow renewal endpoint; the sealed server connects meanwhile
    const token = issue();
    const sealed = await standIn.metadata([server('notes', token)]);
    standIn.servers = [server('notes', token)];
    standIn.delayMs = 400;
    const job = await credentials(sealed, []);

    // Act
    try {
      expect(await job.start()).toHaveLength(1);
    } finally {
      standIn.delayMs = 0;
      await job.aclose();
    }

    // Assess: offered only after the renewal; what it added is ready minus the sealed connect
    const t = job.startTimings;
    expect(t?.renewal).toBeGreaterThanOrEqual(400);
    expect(t!.ready).toBeGreaterThanOrEqual(t!.renewal!);
    expect(t!.renewalAdded).toBe(t!.ready - t!.sealedConnected);
    expect(t!.renewalAdded).toBeGreaterThanOrEqual(0);
  });

  it('offers nothing and ends the job on session_ended or a refused start renewal', async () => {
    for (const [step, reason] of [
      [{ status: 403, code: 'session_ended' }, 'session ended'],
      [{ status: 401, code: 'invalid_metadata' }, 'credentials renewal refused'],
    ] as const) {
      standIn.script = [step];
      const ended: string[] = [];
      const job = await credentials(await standIn.metadata([server('notes', issue())]), ended);
      expect(await job.start()).toBeUndefined();
      expect(job.toolsets.size).toBe(0);
      expect(ended).toEqual([reason]);
    }
  });

  it('uses the sealed credentials until their expires_at when the start renewal stays unavailable', async () => {
    standIn.script = Array.from({ length: 2 }, () => ({ status: 503, code: 'store_unavailable' }));
    const token = issue();
    const now = Date.now() / 1000;
    const sealed = await standIn.metadata([
      server('notes', token, { expires_at: now + 600 }),
      server('stale', token, { expires_at: now - 1 }),
    ]);
    const job = await credentials(sealed, [], { attempts: 2 });
    const toolsets = await job.start();
    try {
      expect(toolsets?.map((t) => t.id)).toEqual(['mcp_notes']);
      expect(await call(toolsets![0]!, 'notes_whoami')).toBe('user:alice');
    } finally {
      await job.aclose();
    }
  });

  it.each([
    ['revoke', 'streamable_http'],
    ['scope', 'streamable_http'],
    ['revoke', 'sse'],
  ] as const)(
    'a token refused (%s, %s) renews, swaps the headers in place and retries the call once',
    async (refusal, transport) => {
      const first = issue();
      const second = issue();
      const grantFor = (token: string) =>
        server('notes', token, transport === 'sse' ? { transport, url: mcp.sseUrl } : {});
      standIn.servers = [grantFor(first)];
      const job = await credentials(await standIn.metadata(), []);
      const [toolset] = (await job.start()) ?? [];
      try {
        if (refusal === 'revoke') delete users[first];
        else users[first]!.insufficientScope = 'notes:read notes:write';
        standIn.servers = [grantFor(second)];
        const seen = mcp.seenTokens.length;

        expect(await call(toolset!, 'notes_search', { query: 'milk' })).toBe('alice: buy milk');

        expect(job.toolsets.get('notes')).toBe(toolset);
        expect(toolset?.server.headers).toEqual({ Authorization: `Bearer ${second}` });
        expect(mcp.seenTokens.slice(seen)).toEqual([`Bearer ${first}`, `Bearer ${second}`]);
        expect(standIn.requests).toHaveLength(2);
        expect(standIn.requests[1]?.body.rejected).toEqual([
          refusal === 'revoke'
            ? { name: 'notes', status: 401 }
            : { name: 'notes', status: 403, scope: 'notes:read notes:write' },
        ]);
      } finally {
        await job.aclose();
      }
    },
  );

  it('renews once for calls refused at the same time, and retries each', async () => {
    const first = issue();
    const second = issue();
    standIn.servers = [server('notes', first)];
    const job = await credentials(await standIn.metadata(), []);
    const [toolset] = (await job.start()) ?? [];
    try {
      delete users[first];
      standIn.servers = [server('notes', second)];
      standIn.delayMs = 200;
      const answers = await Promise.all(Array.from({ length: 4 }, () => call(toolset!, 'whoami')));
      expect(answers).toEqual(Array(4).fill('user:alice'));
      expect(standIn.requests).toHaveLength(2);
    } finally {
      await job.aclose();
    }
  });

  it('fails a call still refused after the renewal, without a second retry', async () => {
    const token = issue();
    standIn.servers = [server('notes', token)];
    const job = await credentials(await standIn.metadata(), []);
    const [toolset] = (await job.start()) ?? [];
    try {
      delete users[token];
      const error = await call(toolset!, 'whoami').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(llm.ToolError);
      expect(String((error as Error).message)).not.toContain(token);
      expect(standIn.requests).toHaveLength(2);
    } finally {
      await job.aclose();
    }
  });

  it('renews at refresh_at, closes servers that disappeared, and ends the job on session_ended', async () => {
    const token = issue();
    standIn.servers = [server('notes', token), server('legacy', token)];
    standIn.refreshInSeconds = 1;
    const ended: string[] = [];
    const job = await credentials(await standIn.metadata(), ended);
    const toolsets = (await job.start()) ?? [];
    const legacy = job.toolsets.get('legacy');
    expect(toolsets).toHaveLength(2);
    standIn.servers = [server('notes', token)];
    await expect.poll(() => job.renewals, { timeout: 6_000, interval: 100 }).toBeGreaterThanOrEqual(2);
    expect([...job.toolsets.keys()]).toEqual(['notes']);
    expect(legacy?.connected).toBe(false);
    standIn.script = [{ status: 403, code: 'session_ended' }];
    await expect.poll(() => ended, { timeout: 6_000, interval: 100 }).toEqual(['session ended']);
    expect(job.toolsets.size).toBe(0);
    expect(job.toolsets.get('notes')).toBeUndefined();
    await job.aclose();
  });

  it('runs one renewal for callers that arrive while it runs', async () => {
    standIn.delayMs = 300;
    const job = await credentials(await standIn.metadata([]), []);
    await job.start();
    expect(await Promise.all(Array.from({ length: 5 }, () => job.renew()))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(standIn.requests).toHaveLength(2);
    await job.aclose();
  });
});

describe('prepareJob renews', () => {
  it('serves the job with the renewed tokens and ends it on session_ended', async () => {
    const token = issue();
    standIn.servers = [server('notes', token)];
    const env = {
      DISPATCH_KEYS: JSON.stringify(standIn.keyring),
      LKMCP_AGENT_NAME: AGENT,
      ALLOW_INSECURE_MCP_URLS: 'true',
    };
    const job = async (metadata: string) => {
      const shutdowns: string[] = [];
      const callbacks: (() => Promise<void>)[] = [];
      const ctx = {
        job: { id: 'AJ_1', metadata, room: { name: ROOM } },
        shutdown: (reason?: string) => shutdowns.push(reason ?? ''),
        addShutdownCallback: (cb: () => Promise<void>) => callbacks.push(cb),
      };
      const prepared = await prepareJob(ctx as never, silent, env);
      const names = (prepared?.toolsets ?? []).flatMap((t) =>
        t.tools.map((tool) => String((tool as { name?: string }).name)),
      );
      for (const cb of callbacks) await cb();
      return { prepared, shutdowns, names };
    };

    const served = await job(await standIn.metadata([server('notes', undefined)]));
    expect(served.prepared?.grant.sid).toBe(standIn.sid);
    expect(served.names).toContain('whoami');
    expect(served.shutdowns).toEqual([]);

    standIn.script = [{ status: 403, code: 'session_ended' }];
    const ended = await job(await standIn.metadata());
    expect(ended.prepared).toBeUndefined();
    expect(ended.shutdowns).toEqual(['session ended']);
  });
});
