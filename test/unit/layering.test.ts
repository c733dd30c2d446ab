import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const CHECKED = ['functions', 'worker/src', 'worker/scripts', 'worker/test', 'packages', 'infra'];

/**
 * Runs the layering check exactly as `npm run lint:layers` does (its default `err` output, whose
 * exit code is the number of errors), in `cwd`; returns the status and each `rule: from -> to`.
 */
function check(cwd: string, dirs: string[], known?: string) {
  const args = ['--config', CONFIG, ...(known ? ['--ignore-known', known] : []), ...dirs];
  const run = spawnSync(DEPCRUISE, args, {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  const violations = [...run.stdout.matchAll(/^\s*error ([\w-]+): (\S+) → (\S+)$/gm)].map(
    ([, rule, from, to]) => `${rule}: ${from} -> ${to}`,
  );
  return { status: run.status, violations, stdout: run.stdout };
}

function writeTree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

const fixtures: string[] = [];
afterAll(() => {
  for (const dir of fixtures) rmSync(dir, { recursive: true, force: true });
});

describe('layering check', () => {
  it('fails on a deliberate violation of every rule', () => {
    // Prepare: a small tree with the repository's folders, each file breaking one rule.
    const dir = mkdtempSync(join(tmpdir(), 'layering-'));
    fixtures.push(dir);
    writeTree(dir, {
      'tsconfig.json': JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' },
      }),
      'functions/adapters/store.ts': 'export const store = 1;\n',
      'functions/http/problem.ts': 'export const problem = 1;\n',
      'functions/core/config.ts': 'export const config = 1;\n',
      'functions/core/rooms.ts': 'export const rooms = 1;\n',
      'functions/core/uses-adapter.ts':
        "import { store } from '../adapters/store.js';\nexport const x = store;\n",
      'functions/core/uses-http.ts':
        "import { problem } from '../http/problem.js';\nexport const x = problem;\n",
      'functions/session/app.ts': "import { store } from '../adapters/store.js';\nexport const x = store;\n",
      'functions/core/uses-worker.ts':
        "import { open } from '../../worker/src/open.js';\nexport const x = open;\n",
      'worker/src/open.ts':
        "import { rooms } from '../../functions/core/rooms.js';\nexport const open = rooms;\n",
      'infra/stack.ts':
        "import { config } from '../functions/core/config.js';\nimport { rooms } from '../functions/core/rooms.js';\nexport const x = [config, rooms];\n",
      'packages/contract/src/index.ts':
        "import { store } from '../../../functions/adapters/store.js';\nexport const x = store;\n",
    });

    // Act
    const result = check(dir, ['functions', 'worker', 'infra', 'packages']);

    // Assess
    expect(result.status).not.toBe(0);
    const found = [...result.violations].sort();
    expect(found).toEqual(
      [
        'apps-reach-adapters-through-the-root: functions/session/app.ts -> functions/adapters/store.ts',
        'contract-is-self-contained: packages/contract/src/index.ts -> functions/adapters/store.ts',
        'core-is-the-domain: functions/core/uses-adapter.ts -> functions/adapters/store.ts',
        'core-is-the-domain: functions/core/uses-http.ts -> functions/http/problem.ts',
        'functions-do-not-import-the-worker: functions/core/uses-worker.ts -> worker/src/open.ts',
        'infra-uses-only-the-config-schema-of-core: infra/stack.ts -> functions/core/rooms.ts',
        'worker-does-not-import-the-server: worker/src/open.ts -> functions/core/rooms.ts',
      ].sort(),
    );
  });

  it('passes on this tree with no violation and no baseline', () => {
    // Act
    const result = check(ROOT, CHECKED);

    // Assess
    expect(result.status, result.stdout).toBe(0);
    expect(result.violations).toEqual([]);
  });
});
