import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

let child: ChildProcess | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  if (child?.pid !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM');
    await exited;
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
  const { port } = probe.address() as AddressInfo;
  await new Promise((ok) => probe.close(ok));
  return port;
}

/** Runs functions/local.ts (what `npm start` runs) until its `ready:` line; returns its output. */
async function startUntilReady(env: Record<string, string>): Promise<string> {
  dataDir = mkdtempSync(join(tmpdir(), 'lkmcp-npm-start-'));
  child = spawn(join('node_modules', '.bin', 'tsx'), ['functions/local.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  while (!/^ready: /m.test(out)) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`no ready line: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

describe('npm start', () => {
  it('names an explicit LIVEKIT_URL that does not answer, and starts no LiveKit of its own', async () => {
    // Prepare
    const url = `ws://127.0.0.1:${await closedPort()}`;

    // Act
    const out = await startUntilReady({ LIVEKIT_URL: url });

    // Assess
    expect(out).toContain(
      `LiveKit: ${url} (LIVEKIT_URL) does not answer: sessions get 502 livekit_unavailable until it does`,
    );
    expect(out).not.toContain('starting livekit-server');
    expect(out).toMatch(/GET http:\/\/localhost:\d+\/healthz/);
    // No warning that reads as a failure (the AWS SDK's Node-version notice is switched off).
    expect(out).not.toContain('NodeVersionSupportWarning');
  });

  it('uses an explicit LIVEKIT_URL that answers as it is', async () => {
    // Prepare: anything that answers HTTP there.
    const server = createServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK'));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Act
    const out = await startUntilReady({ LIVEKIT_URL: url });
    server.close();

    // Assess
    expect(out).toContain(`LiveKit: ${url} (LIVEKIT_URL)\n`);
  });
});
