import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dirs: string[] = [];

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lkmcp-cache-lock-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes an executable shell script. */
function tool(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Start/end lines a stubbed slow step appended to `log`: [start, end] pairs of epoch ms. */
function intervals(log: string): { starts: number; ends: number; overlaps: boolean } {
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  let open = 0;
  let overlaps = false;
  for (const line of lines) {
    if (line.startsWith('start')) {
      open += 1;
      if (open > 1) overlaps = true;
    } else if (line.startsWith('end')) open -= 1;
  }
  return {
    starts: lines.filter((l) => l.startsWith('start')).length,
    ends: lines.filter((l) => l.startsWith('end')).length,
    overlaps,
  };
}

describe('worker/python/setup-venv.sh under a shared cache', () => {
  it('builds once when two runs start together; the other waits and reuses the venv', async () => {
    // Prepare: a python3 whose `-m venv` and `-m pip` are slow stand-ins (the real script,
    // unchanged, drives them); everything else (os.replace of the symlink) is the real python3.
    const dir = scratch();
    const cache = join(dir, 'cache');
    const log = join(dir, 'steps.log');
    const fake = tool(
      join(dir, 'python'),
      [
        `if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi`,
        `if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "start $$" >>${log}; sleep 1; echo "end $$" >>${log}; exit 0; fi`,
        'exec python3 "$@"',
      ].join('\n'),
    );
    const env = { ...process.env, LKMCP_CACHE: cache, PYTHON: fake };

    // Act
    const [a, b] = await Promise.all([
      run('bash', ['worker/python/setup-venv.sh'], { env }),
      run('bash', ['worker/python/setup-venv.sh'], { env }),
    ]);

    // Assess: one build (pip upgrade + install), never two at once; both runs succeed.
    const steps = intervals(log);
    expect(steps).toEqual({ starts: 2, ends: 2, overlaps: false });
    const outputs = `${a.stdout}${b.stdout}`;
    expect(outputs).toContain('worker/python: ready');
    expect(outputs).toContain('built by another process meanwhile');
    expect(`${a.stderr}${b.stderr}`).toContain('waiting for a build of the worker venv');
    const target = readlinkSync(join(cache, 'venv'));
    expect(target).toMatch(/^venv-[0-9a-f]{16}$/);
    expect(readFileSync(join(cache, 'venv', '.requirements-hash'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);

    // Act again: a third run reuses it without building.
    const c = await run('bash', ['worker/python/setup-venv.sh'], { env });
    expect(c.stdout).toContain('reusing');
    expect(intervals(log).starts).toBe(2);
  }, 60_000);

  it('replaces a venv directory an older script made with the symlinked one', async () => {
    // Prepare
    const dir = scratch();
    const cache = join(dir, 'cache');
    const fake = tool(
      join(dir, 'python'),
      [
        `if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi`,
        `if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi`,
        'exec python3 "$@"',
      ].join('\n'),
    );
    await run('mkdir', ['-p', join(cache, 'venv', 'bin')]);
    writeFileSync(join(cache, 'venv', '.requirements-hash'), 'stale\n');

    // Act
    await run('bash', ['worker/python/setup-venv.sh'], {
      env: { ...process.env, LKMCP_CACHE: cache, PYTHON: fake },
    });

    // Assess
    expect(readlinkSync(join(cache, 'venv'))).toMatch(/^venv-[0-9a-f]{16}$/);
  }, 30_000);
});

describe('scripts/e2e/install-livekit.sh under a shared cache', () => {
  it('builds once when two runs start together, and never leaves a half-written binary', async () => {
    // Prepare: a `go` whose install is slow and writes $GOBIN/server.
    const dir = scratch();
    const cache = join(dir, 'cache');
    const bin = join(dir, 'bin');
    const log = join(dir, 'steps.log');
    await run('mkdir', ['-p', bin]);
    tool(
      join(bin, 'go'),
      `echo "start $$" >>${log}; sleep 1; printf '#!/bin/sh\\necho fake\\n' >"$GOBIN/server"; chmod +x "$GOBIN/server"; echo "end $$" >>${log}`,
    );
    const env = { ...process.env, LKMCP_CACHE: cache, PATH: `${bin}:${process.env.PATH}` };

    // Act
    const [a, b] = await Promise.all([
      run('bash', ['scripts/e2e/install-livekit.sh'], { env }),
      run('bash', ['scripts/e2e/install-livekit.sh'], { env }),
    ]);

    // Assess
    expect(intervals(log)).toEqual({ starts: 1, ends: 1, overlaps: false });
    expect(a.stdout.trim()).toBe(join(cache, 'bin', 'livekit-server'));
    expect(b.stdout.trim()).toBe(join(cache, 'bin', 'livekit-server'));
    expect(`${a.stderr}${b.stderr}`).toContain('built by another checkout meanwhile');
    expect(readFileSync(join(cache, 'livekit-server.version'), 'utf8').trim()).toBe('v1.13.5');
  }, 60_000);

  it('says that Go is missing, and fails, when nothing is cached', async () => {
    // Prepare: a PATH with bash's tools but no go.
    const dir = scratch();
    const bin = join(dir, 'bin');
    await run('mkdir', ['-p', bin]);
    for (const name of ['cat', 'dirname', 'mkdir', 'date']) {
      const { stdout } = await run('sh', ['-c', `command -v ${name}`]);
      await run('ln', ['-s', stdout.trim(), join(bin, name)]);
    }

    // Act
    const attempt = run(
      process.env.SHELL?.endsWith('bash') ? process.env.SHELL : '/bin/bash',
      ['scripts/e2e/install-livekit.sh'],
      { env: { LKMCP_CACHE: join(dir, 'cache'), PATH: bin, HOME: dir } },
    );

    // Assess
    await expect(attempt).rejects.toMatchObject({ stderr: expect.stringContaining('go is required') });
  });
});
