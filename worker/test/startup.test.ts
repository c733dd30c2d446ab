import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startupProblems } from '../src/agent.js';
import { testKeyring } from './support/seal.js';

const workerDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const goodKeys = JSON.stringify(testKeyring());
const complete = {
  LIVEKIT_URL: 'ws://localhost:7880',
  LIVEKIT_API_KEY: 'devkey',
  LIVEKIT_API_SECRET: 'secret',
  DISPATCH_KEYS: goodKeys,
};

/** The repository's tsx (the worker's own scripts run with it, as the README says). */
function tsx(): string {
  for (const dir of [join(workerDir, 'node_modules'), join(workerDir, '..', 'node_modules')]) {
    const bin = join(dir, '.bin', 'tsx');
    if (existsSync(bin)) return bin;
  }
  throw new Error('tsx not found: run npm ci at the repository root');
}

/** Runs `tsx src/agent.ts <args>` with only the given environment (plus PATH and HOME). */
async function runWorker(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await promisify(execFile)(tsx(), ['src/agent.ts', ...args], {
      cwd: workerDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('startupProblems', () => {
  it('names every missing variable, never a value', () => {
    // Act
    const problems = startupProblems({ LIVEKIT_API_SECRET: 's3cret-value' });

    // Assess
    expect(problems).toEqual([
      "LIVEKIT_URL is not set (the LiveKit server; npm start's is ws://localhost:7880)",
      "LIVEKIT_API_KEY is not set (npm start's LiveKit: devkey)",
      expect.stringMatching(/^DISPATCH_KEYS is not set/),
    ]);
    expect(problems.join('\n')).not.toContain('s3cret-value');
  });

  it('refuses a keyring that does not parse, a URL that is no LiveKit URL and a bad worker option', () => {
    // Act
    const problems = startupProblems({
      ...complete,
      LIVEKIT_URL: 'localhost:7880',
      DISPATCH_KEYS: '{"current":"k1","keys":{"k1":"tooshort"}}',
      LKMCP_WORKER_LOAD: 'sometimes',
    });

    // Assess
    expect(problems).toEqual([
      'LIVEKIT_URL must be a ws(s):// or http(s):// URL',
      expect.stringMatching(/^DISPATCH_KEYS is not a valid keyring: /),
      'LKMCP_WORKER_LOAD must be "cpu" or "ignore"',
    ]);
    expect(problems.join('\n')).not.toContain('tooshort');
  });

  it('accepts a complete configuration, and the CLI flags in place of the variables', () => {
    expect(startupProblems(complete)).toEqual([]);
    expect(
      startupProblems({ DISPATCH_KEYS: goodKeys }, [
        'node',
        'agent.ts',
        'start',
        '--url=ws://127.0.0.1:7880',
        '--api-key',
        'devkey',
        '--api-secret',
        'secret',
      ]),
    ).toEqual([]);
  });
});

describe('src/agent.ts as a process', () => {
  it('exits 2 with one message, no stack trace, without LiveKit credentials and keyring', async () => {
    // Act
    const run = await runWorker(['start'], { LIVEKIT_URL: 'ws://127.0.0.1:9' });

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('livekit-mcp-dispatch worker not started:');
    expect(run.stderr).toContain('LIVEKIT_API_KEY is not set');
    expect(run.stderr).toContain('DISPATCH_KEYS is not set');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 for a bad keyring even when LiveKit is configured', async () => {
    // Act
    const run = await runWorker(['start'], { ...complete, DISPATCH_KEYS: '{' });

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DISPATCH_KEYS is not a valid keyring: not valid JSON');
  });
});
