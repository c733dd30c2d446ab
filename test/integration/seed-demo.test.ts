import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
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

async function startSession(userToken: string) {
  const res = await fetch(`${base}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return { status: res.status, body: (await res.json()) as { room_name: string; dispatch_id: string } };
}

beforeAll(async () => {
  stack = await startLocalStack();
  ({ dataDir, livekit, base } = stack);
});

afterAll(async () => {
  for (const demo of running) await demo.mcp.stop();
  await stack?.stop();
});

describe('seedDemo', () => {
  it("seeds a user whose session's agent gets the demo MCP server and that user's token", async () => {
    // Act
    const demo = await seedDemo({ url: base, dataDir, mcpPort: 0 });
    running.push(demo);
    const session = await startSession(demo.userToken);

    // Assess
    expect(session.status).toBe(201);
    const grant = await grantOf(session.body.room_name);
    expect(grant).toMatchObject({ userId: 'demo-user', tenantId: 'demo' });
    expect(grant.mcpServers).toHaveLength(1);
    const server = grant.mcpServers[0]!;
    expect(server.url).toBe(demo.mcp.url);
    expect(await whoami(server.url, server.headers.Authorization!)).toMatchObject({ user_id: 'demo-user' });
  });

  it("logs each MCP request it serves: method, tool, and whose token by the API's fingerprint", async () => {
    // Prepare
    const demo = await seedDemo({ url: base, dataDir, mcpPort: 0 });
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
    const demo = await seedDemo({ url: base, dataDir, mcpPort: 0 });
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
    const again = await seedDemo({ url: base, dataDir, mcpPort: 0 });
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

describe('npm run seed:demo', () => {
  it('prints a user token and a curl command that starts a session', async () => {
    // Prepare
    let child: ChildProcess | undefined;
    try {
      child = spawn('npm', ['run', '--silent', 'seed:demo', '--', '--mcp-port', '0'], {
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

      // Assess
      expect(out).toMatch(/^User token for demo-user \(1 hour\):\n[\w-]+\.[\w-]+\.[\w-]+$/m);
      expect(JSON.parse(stdout)).toMatchObject({ room_name: expect.stringMatching(/^lk-mcp-demo-/) });
    } finally {
      if (child?.pid !== undefined && child.exitCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        process.kill(-child.pid, 'SIGTERM');
        await exited;
      }
    }
  });
});
