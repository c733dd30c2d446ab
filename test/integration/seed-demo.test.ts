import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoInstructions,
  mcpRequestLog,
  SeedError,
  type SeededDemo,
  seedDemo,
} from '../../scripts/seed-demo.js';
import type { LiveKitStandIn } from '../support/livekit-standin.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';
import { launchBrowser, signInAndAllow } from '../support/oauth/browser.js';

let dataDir: string;
let livekit: LiveKitStandIn;
let stack: LocalStack;
let base: string;
const running: SeededDemo[] = [];

/** Opens the sealed metadata of the stand-in's dispatch for `room` as a worker would. */
async function grantOf(room: string) {
  const dispatch = livekit.dispatches.find((d) => d.room === room);
  expect(dispatch).toBeDefined();
  const keys = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8'));
  return openDispatchMetadata(dispatch!.metadata, {
    keyring: keys.dispatch,
    agentName: dispatch!.agentName,
    roomName: room,
  });
}

async function whoami(url: string, authorization: string): Promise<unknown> {
  const client = new Client({ name: 'seed-demo-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization } } }),
  );
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return JSON.parse((result.content as { text: string }[])[0]!.text);
  } finally {
    await client.close();
  }
}

/** The `whoami` tool's text at `url`, called with `authorization` (the notes server answers the subject). */
async function whoamiText(url: string, authorization: string): Promise<string> {
  const client = new Client({ name: 'seed-demo-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization } } }),
  );
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

async function startSession(userToken: string) {
  const res = await fetch(`${base}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      room_name: string;
      dispatch_id: string;
      mcp_servers: { name: string; status: string }[];
    },
  };
}

const run = promisify(execFile);

/** Runs a printed command as written (`sh -c`); returns its stdout parsed as JSON. */
async function runPrinted(command: string) {
  return JSON.parse((await run('sh', ['-c', command])).stdout);
}

/** Every port of a seedDemo that picks free ones. */
const FREE = { mcpPort: 0, oauthPorts: { authorizationServer: 0, mcp: 0, returnPage: 0 } } as const;

beforeAll(async () => {
  stack = await startLocalStack();
  ({ dataDir, livekit, base } = stack);
});

afterAll(async () => {
  for (const demo of running) await demo.stop();
  await stack?.stop();
});

describe('seedDemo', () => {
  it("seeds a user whose session's agent gets the demo MCP server and that user's token", async () => {
    // Act
    const demo = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(demo);
    const session = await startSession(demo.userToken);

    // Assess
    expect(session.status).toBe(201);
    const grant = await grantOf(session.body.room_name);
    expect(grant).toMatchObject({ userId: 'demo-user', tenantId: 'demo' });
    // `notes` (OAuth) is not connected yet: only the static demo server is sealed.
    expect(session.body.mcp_servers).toEqual([
      { name: 'demo', status: 'ready' },
      { name: 'notes', status: 'not_connected' },
    ]);
    expect(grant.mcpServers).toHaveLength(1);
    const server = grant.mcpServers[0]!;
    expect(server.url).toBe(demo.mcp.url);
    expect(await whoami(server.url, server.headers.Authorization!)).toMatchObject({ user_id: 'demo-user' });
  });

  it("logs each MCP request it serves: method, tool, and whose token by the API's fingerprint", async () => {
    // Prepare
    const demo = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(demo);
    const log = mcpRequestLog(demo);
    const admin = await stack.token({ user: 'ops', superadmin: true });
    const shown = await stack.call('GET', '/v1/admin/tenants/demo/users/demo-user', { token: admin });

    // Act
    await whoami(demo.mcp.url, `Bearer ${demo.mcp.token}`);
    await fetch(demo.mcp.url, { method: 'POST', body: '{}' });
    const lines = log();

    // Assess
    const fingerprint = shown.json.mcp.token_fingerprint;
    expect(demo.tokenFingerprint).toBe(fingerprint);
    expect(lines).toContainEqual(
      expect.stringMatching(/\[mcp\] POST \/mcp initialize -> 200 \(demo-user's token /),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`POST /mcp tools/call whoami -> 200 \\(demo-user's token ${fingerprint}\\)$`),
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/POST \/mcp -> 401 \(no token\)$/));
    expect(lines.join('\n')).not.toContain(demo.mcp.token);
    expect(log()).toEqual([]);
  });

  it('prints the next commands: DISPATCH_KEYS exported from keys.json, never pasted', async () => {
    // Prepare
    const demo = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(demo);
    const keys = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8'));

    // Act
    const text = demoInstructions(demo, { dataDir });
    const exportLine = /^ {2}export DISPATCH_KEYS="\$\((.*)\)"$/m.exec(text)?.[1];
    const { stdout } = await promisify(execFile)('sh', ['-c', exportLine!]);

    // Assess
    expect(JSON.parse(stdout)).toEqual(keys.dispatch);
    expect(text).not.toContain(Object.values(keys.dispatch.keys as Record<string, string>)[0]);
    expect(text).toContain('-m livekit.agents start worker/python/agent.py');
    expect(text).toContain(demo.nextCommand);
  });

  it('runs again: the same tenant and user, now with the new MCP server and token', async () => {
    // Act
    const again = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(again);
    const session = await startSession(again.userToken);

    // Assess
    expect(session.status).toBe(201);
    const grant = await grantOf(session.body.room_name);
    expect(grant.mcpServers[0]!.url).toBe(again.mcp.url);
    expect(grant.mcpServers[0]!.headers.Authorization).toBe(`Bearer ${again.mcp.token}`);
  });

  it('says to start the server first when none is running', async () => {
    // Act
    const attempt = seedDemo({ url: 'http://127.0.0.1:1', dataDir, mcpPort: 0 });

    // Assess
    await expect(attempt).rejects.toThrow(SeedError);
    await expect(attempt).rejects.toThrow('start it first with `npm start`');
  });

  it('refuses a server that signs with another DATA_DIR', async () => {
    // Prepare
    const otherDir = mkdtempSync(join(tmpdir(), 'lkmcp-seed-other-'));

    // Act
    const attempt = seedDemo({ url: base, dataDir: otherDir, mcpPort: 0 });

    // Assess
    await expect(attempt).rejects.toThrow('same DATA_DIR as npm start');
    rmSync(otherDir, { recursive: true, force: true });
  });
});

/** The printed authorize curl, and the login the printed steps name. */
function printedOAuthSteps(demo: SeededDemo) {
  const text = demoInstructions(demo, { dataDir });
  const authorize = /^(curl \S+ -X POST \S+\/v1\/connections\/notes\/authorize [\s\S]*?\}')$/m.exec(
    text,
  )?.[1];
  const login = /with login (\S+), password (\S+) /.exec(text);
  expect(authorize).toBeDefined();
  expect(login).not.toBeNull();
  return { text, authorize: authorize!, account: { login: login![1]!, password: login![2]!, sub: '' } };
}

/** The printed steps 1-3: authorize (the printed curl), consent in chromium, the return page. */
async function connectInBrowser(browser: Browser, demo: SeededDemo) {
  const steps = printedOAuthSteps(demo);
  const started = await runPrinted(steps.authorize);
  expect(started.authorization_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth\?/);
  expect(new URL(started.authorization_url).origin).toBe(demo.oauth.issuer);
  const landed = await signInAndAllow(browser, started.authorization_url, {
    account: steps.account,
    landing: demo.oauth.returnUrl,
  });
  return { steps, landed };
}

describe('seedDemo: the OAuth server end to end (npm start defaults, real browser)', () => {
  let browser: Browser;
  let demo: SeededDemo;

  beforeAll(async () => {
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('seeds the catalog entry and return URL, with nothing but npm start’s own defaults', async () => {
    // Act
    demo = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(demo);
    const admin = await stack.token({ user: 'ops', superadmin: true });
    const tenant = await stack.call('GET', '/v1/admin/tenants/demo', { token: admin });

    // Assess
    expect(stack.local.services.config.allowInsecureMcpUrls).toBe(true);
    expect(stack.local.services.config.mcpAllowedPorts).toEqual([]);
    expect(tenant.json.mcp_servers).toEqual([
      expect.objectContaining({
        name: 'notes',
        url: demo.oauth.mcpUrl,
        auth: expect.objectContaining({ type: 'oauth' }),
      }),
    ]);
    expect(tenant.json.oauth_return_urls).toEqual([demo.oauth.returnUrl]);
    expect(demo.notesStatus).toBe('not_connected');
    expect(demo.oauth.mcpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(demo.oauth.returnUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/return$/);
  });

  it('authorize → sign in and allow in chromium → callback → return page completes → session: notes ready', async () => {
    // Act
    const { landed } = await connectInBrowser(browser, demo);
    const connection = await stack.call('GET', '/v1/connections/notes', { token: demo.userToken });
    const session = await startSession(demo.userToken);

    // Assess: the return page got a one-time handle (never a token) and completed it as demo-user.
    const query = new URL(landed.url).searchParams;
    expect(query.get('server')).toBe('notes');
    expect(query.get('error')).toBeNull();
    expect(query.get('result')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(landed.text).toContain('notes: connected');
    expect(demo.oauth.returns.at(-1)).toMatchObject({ server: 'notes', outcome: 'connected' });
    expect(connection.json).toMatchObject({ server: 'notes', auth: 'oauth', status: 'connected' });
    expect(connection.json.authorization_host).toBe(new URL(demo.oauth.issuer).host);
    // The handle was used: completing it again is refused.
    const replay = await stack.call('POST', '/v1/connections/notes/complete', {
      token: demo.userToken,
      body: { result: query.get('result') },
    });
    expect(replay.json.code).toBe('result_expired');

    expect(session.status).toBe(201);
    expect(session.body.mcp_servers).toEqual([
      { name: 'demo', status: 'ready' },
      { name: 'notes', status: 'ready' },
    ]);
  });

  it('the sealed notes credential is an access token for demo-user, bound to the notes URL, that the MCP server accepts', async () => {
    // Prepare
    const session = await startSession(demo.userToken);
    const grant = await grantOf(session.body.room_name);
    const notes = grant.mcpServers.find((server) => server.url === demo.oauth.mcpUrl);
    expect(notes).toBeDefined();
    const token = /^Bearer (\S+)$/.exec(notes!.headers.Authorization ?? '')?.[1];
    const before = demo.oauth.mcp.requests.length;

    // Act: what the worker does with it, and the API's own check.
    const subject = await whoamiText(notes!.url, notes!.headers.Authorization!);
    const test = await stack.call('POST', '/v1/connections/notes/test', { token: demo.userToken });
    const refused = await fetch(demo.oauth.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.mcp.token}`, 'content-type': 'application/json' },
      body: '{}',
    });

    // Assess
    expect(decodeJwt(token!)).toMatchObject({
      sub: 'demo-user',
      aud: demo.oauth.mcpUrl,
      iss: demo.oauth.issuer,
    });
    expect(subject).toBe('demo-user');
    expect(test.json).toEqual({ ok: true, tools: 1 });
    const seen = demo.oauth.mcp.requests.slice(before);
    expect(seen.filter((r) => r.token === 'accepted').length).toBeGreaterThanOrEqual(4);
    for (const r of seen.filter((x) => x.token === 'accepted')) {
      expect(r.claims).toMatchObject({ sub: 'demo-user', aud: demo.oauth.mcpUrl, iss: demo.oauth.issuer });
    }
    // Another bearer token (the static demo server's) is refused with the RFC 9728 challenge.
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain(
      `resource_metadata="${new URL(demo.oauth.mcpUrl).origin}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  it("logs the notes server's requests by the access token's subject and audience, and the return page's visits", async () => {
    // Prepare
    const log = mcpRequestLog(demo);

    // Act
    const lines = log();

    // Assess
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `\\[notes\\] POST /mcp tools/call whoami -> 200 \\(access token for demo-user, aud ${demo.oauth.mcpUrl}\\)$`,
        ),
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/\[return page\] notes: connected$/));
    expect(lines).toContainEqual(
      expect.stringMatching(/\[notes\] POST \/mcp -> 401 \(a token it refused\)$/),
    );
  });

  it('runs again on the same ports: the connection still works, and a new consent uses the client it registered', async () => {
    // Prepare
    const ports = {
      authorizationServer: Number(new URL(demo.oauth.issuer).port),
      mcp: Number(new URL(demo.oauth.mcpUrl).port),
      returnPage: Number(new URL(demo.oauth.returnUrl).port),
    };
    const registered = await demo.oauth.authorizationServer.provider.Client.find(
      new URL((await runPrinted(printedOAuthSteps(demo).authorize)).authorization_url).searchParams.get(
        'client_id',
      )!,
    );
    expect(registered).toBeDefined();
    await demo.stop();

    // Act
    const again = await seedDemo({ url: base, dataDir, mcpPort: 0, oauthPorts: ports });
    running.push(again);
    const kept = await startSession(again.userToken);
    const { landed } = await connectInBrowser(browser, again);
    const reconnected = await startSession(again.userToken);

    // Assess
    expect(again.oauth.issuer).toBe(demo.oauth.issuer);
    expect(again.notesStatus).toBe('connected');
    expect(kept.body.mcp_servers).toContainEqual({ name: 'notes', status: 'ready' });
    // The access token sealed before the restart still verifies: the signing key was kept.
    const keptNotes = (await grantOf(kept.body.room_name)).mcpServers.find(
      (x) => x.url === again.oauth.mcpUrl,
    )!;
    expect(await whoamiText(keptNotes.url, keptNotes.headers.Authorization!)).toBe('demo-user');
    expect(landed.text).toContain('notes: connected');
    expect(reconnected.body.mcp_servers).toContainEqual({ name: 'notes', status: 'ready' });
    const grant = await grantOf(reconnected.body.room_name);
    const notes = grant.mcpServers.find((server) => server.url === again.oauth.mcpUrl)!;
    expect(await whoamiText(notes.url, notes.headers.Authorization!)).toBe('demo-user');
    expect(await again.oauth.authorizationServer.provider.Client.find(registered!.clientId)).toBeDefined();
  });
});

describe("the README's OAuth demo steps", () => {
  it('show the authorize command and the login seed:demo prints (default URLs, token placeholder)', async () => {
    // Prepare
    const demo = await seedDemo({ url: base, dataDir, ...FREE });
    running.push(demo);
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('### Connect the OAuth demo server `notes`'));
    const shown = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

    // Act
    const printed = printedOAuthSteps(demo);
    const asDocumented = demo.authorizeCommand
      .replaceAll(demo.userToken, '<the printed user token>')
      .replace(base, 'http://localhost:8787')
      .replace(demo.oauth.returnUrl, 'http://127.0.0.1:8791/oauth/return');

    // Assess
    expect(shown.split('\n').map((l) => l.trim())).toEqual(
      `${asDocumented}\n`.split('\n').map((l) => l.trim()),
    );
    expect(section).toContain(
      `sign in with login **\`${printed.account.login}\`**, password **\`${printed.account.password}\`**`,
    );
  });
});

describe('seedDemo without ALLOW_INSECURE_MCP_URLS', () => {
  it('is refused, naming the switch: nothing else admits its loopback http URLs', async () => {
    // Prepare
    const strict = await startLocalStack({ ALLOW_INSECURE_MCP_URLS: 'false' });
    try {
      // Act
      const attempt = seedDemo({ url: strict.base, dataDir: strict.dataDir, ...FREE });

      // Assess
      await expect(attempt).rejects.toThrow(SeedError);
      await expect(attempt).rejects.toThrow('only ALLOW_INSECURE_MCP_URLS=true admits');
      const admin = await strict.token({ user: 'ops', superadmin: true });
      expect((await strict.call('GET', '/v1/admin/tenants/demo', { token: admin })).status).toBe(404);
    } finally {
      await strict.stop();
    }
  });
});

describe('npm run seed:demo', () => {
  it('prints a user token and a curl command that starts a session', async () => {
    // Prepare
    let child: ChildProcess | undefined;
    try {
      const ports = ['--mcp-port', '--as-port', '--notes-port', '--return-port'].flatMap((f) => [f, '0']);
      child = spawn('npm', ['run', '--silent', 'seed:demo', '--', ...ports], {
        env: { ...process.env, LKMCP_URL: base, DATA_DIR: dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: npm does not pass SIGTERM on to tsx, so the group is signalled.
        detached: true,
      });
      let out = '';
      let err = '';
      child.stderr!.on('data', (d) => {
        err += d;
      });

      // Act
      await new Promise<void>((resolve, reject) => {
        child!.stdout!.on('data', (d) => {
          out += d;
          if (out.includes('Ctrl-C')) resolve();
        });
        child!.once('exit', (code) => reject(new Error(`seed:demo exited ${code}: ${err}`)));
      });
      const command = /^(curl [\s\S]*?-d '\{\}')$/m.exec(out)?.[1];
      expect(command).toBeDefined();
      const { stdout } = await promisify(execFile)('sh', ['-c', command!]);
      const authorize = /^(curl \S+ -X POST \S+\/v1\/connections\/notes\/authorize [\s\S]*?\}')$/m.exec(
        out,
      )?.[1];
      expect(authorize).toBeDefined();
      const started = await runPrinted(authorize!);

      // Assess
      expect(out).toMatch(/^User token for demo-user \(1 hour\):\n[\w-]+\.[\w-]+\.[\w-]+$/m);
      expect(JSON.parse(stdout)).toMatchObject({ room_name: expect.stringMatching(/^lk-mcp-demo-/) });
      const issuer = /authorization server (http:\/\/127\.0\.0\.1:\d+) \(oidc-provider\)/.exec(out)?.[1];
      expect(started.authorization_url).toMatch(new RegExp(`^${issuer}/auth\\?`));
      // The authorization server keeps its state in DATA_DIR, not oidc-provider's memory adapter.
      expect(err).not.toContain('in-memory adapter');
    } finally {
      if (child?.pid !== undefined && child.exitCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        process.kill(-child.pid, 'SIGTERM');
        await exited;
      }
    }
  });
});
