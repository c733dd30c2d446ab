import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { createTable } from '../../functions/adapters/table.js';
import { scanTable, type TestDynamo } from './dynalite.js';

const CACHE = process.env.LKMCP_CACHE ?? join(homedir(), '.cache', 'livekit-mcp-dispatch');
const VENV_PYTHON = join(CACHE, 'validators-venv', 'bin', 'python');
const SETUP = join(import.meta.dirname, '..', '..', 'scripts', 'validators', 'setup-venv.sh');

/**
 * Makes sure the cached venv with moto's server (pinned in scripts/validators/requirements.txt)
 * exists: a no-op when it is up to date, a pip install (about a minute) the first time.
 */
function ensureVenv(): void {
  const built = spawnSync('bash', [SETUP], { stdio: 'inherit', timeout: 900_000 });
  if (built.status !== 0 || !existsSync(VENV_PYTHON))
    throw new Error('scripts/validators/setup-venv.sh failed');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto server exited with ${child.exitCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('moto server did not start in time');
}

/**
 * Starts moto's server (a second DynamoDB-compatible implementation, beside dynalite) on a
 * loopback port and creates the table, so the store suite also runs against what dynalite does not
 * model. Same shape as {@link startDynalite}'s result.
 */
export async function startMoto(options: { tableName?: string } = {}): Promise<TestDynamo> {
  ensureVenv();
  const port = await freePort();
  const child = spawn(VENV_PYTHON, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_DEFAULT_REGION: 'us-east-1',
    },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(`${endpoint}/moto-api/`, child, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  const client = createDynamoClient({ endpoint, requestTimeoutMs: 5000, maxAttempts: 2 });
  const tableName = options.tableName ?? `test-${randomUUID()}`;
  await createTable(client, tableName);
  return {
    endpoint,
    client,
    tableName,
    scan: () => scanTable(client, tableName),
    async stop() {
      client.destroy();
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
