/**
 * `npm run newcomer` (CI, after `npm test`): replays the README's newcomer path on a fresh clone.
 *
 * Clones HEAD into a temporary directory and runs, there, the README's own commands: the fenced
 * blocks marked `<!-- newcomer: NAME -->` are taken from the clone's README.md, so the README and
 * this replay cannot drift apart. `servers` (npm install, npm start with its LiveKit dev server,
 * npm run seed:demo), `session` (the curl, with the printed user token in place of its
 * placeholder: a 201 and a dispatch that the LiveKit server lists), `cli` (the admin CLI examples,
 * as one bash script). `npm test`, the README's second command, is CI's own step, not repeated here.
 *
 * Loopback only (npm install aside, which talks to the npm registry); every wait has a timeout;
 * whatever it started is stopped at the end, by process group id.
 *
 *   npm run newcomer            LKMCP_NEWCOMER_KEEP=1 keeps the clone for a look afterwards
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AgentDispatchClient } from 'livekit-server-sdk';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The ports the README's commands use as written. */
const PORTS = { api: 8787, livekit: 7880, mcp: 8788, oauthAs: 8789, oauthMcp: 8790, oauthReturn: 8791 };
/** Long-running README commands, and the line that says each is ready. */
const SERVERS: Record<string, { ready: RegExp; timeoutMs: number }> = {
  // The first run builds livekit-server (minutes); a cached one starts in seconds.
  'npm start': { ready: /^ready: /m, timeoutMs: 15 * 60_000 },
  'npm run seed:demo': { ready: /Ctrl-C stops it\./, timeoutMs: 120_000 },
};
const STEP_TIMEOUT_MS = 10 * 60_000;

const say = (line: string) => process.stdout.write(`[newcomer] ${line}\n`);

/** The fenced block after `<!-- newcomer: name -->`, one command per line (`\` continues one). */
export function readmeBlock(readme: string, name: string): string {
  const marker = `<!-- newcomer: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker} block`);
  const fence = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at + marker.length));
  if (!fence?.[1]) throw new Error(`no fenced block after ${marker}`);
  return fence[1];
}

/** The commands of a block: continuation lines joined, trailing `# comments` dropped. */
export function commandsOf(block: string): string[] {
  return block
    .replace(/\s*\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The environment a newcomer has: none of this project's variables, so the README's defaults apply. */
function newcomerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [
    'PATH',
    'HOME',
    'USER',
    'LANG',
    'TMPDIR',
    'LKMCP_CACHE',
    'GOPATH',
    'GOCACHE',
    'GOMODCACHE',
  ]) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return {
    ...env,
    CI: 'true',
    NO_PROXY: '127.0.0.1,localhost',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A README command started in the background, with its output. */
interface Background {
  command: string;
  child: ChildProcess;
  output(): string;
}

const started: Background[] = [];

function startBackground(command: string, cwd: string): Background {
  let out = '';
  // Its own process group, so that stopping it reaches npm's children (tsx, livekit-server).
  const child = spawn('bash', ['-c', command], { cwd, env: newcomerEnv(), detached: true });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const bg = { command, child, output: () => out };
  started.push(bg);
  return bg;
}

async function waitFor(bg: Background, ready: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(bg.output())) {
    if (bg.child.exitCode !== null)
      throw new Error(`${bg.command} exited ${bg.child.exitCode}:\n${bg.output()}`);
    if (Date.now() > deadline)
      throw new Error(`${bg.command}: no ${ready} within ${timeoutMs / 1000} s:\n${bg.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopAll(): Promise<void> {
  for (const bg of started.reverse()) {
    const { child } = bg;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      continue;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs a README command (or a whole block, as one bash script) to completion; returns stdout. */
function runToEnd(script: string, cwd: string): string {
  return execFileSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    env: newcomerEnv(),
    timeout: STEP_TIMEOUT_MS,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  for (const [what, port] of Object.entries(PORTS)) {
    if (!(await portFree(port)))
      throw new Error(`port ${port} (${what}) is taken: the README's commands use it as written`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'lkmcp-newcomer-'));
  const clone = join(dir, 'livekit-mcp-dispatch');
  try {
    say(`git clone of HEAD into ${clone}`);
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', repoRoot, clone], {
      stdio: 'inherit',
      timeout: 120_000,
    });
    const readme = readFileSync(join(clone, 'README.md'), 'utf8');

    for (const command of commandsOf(readmeBlock(readme, 'servers'))) {
      const server = SERVERS[command];
      if (server === undefined) {
        say(`$ ${command}`);
        runToEnd(command, clone);
        continue;
      }
      say(`$ ${command}   (in the background, until it says it is ready)`);
      await waitFor(startBackground(command, clone), server.ready, server.timeoutMs);
    }
    const [npmStart, seed] = started;
    if (!npmStart || !seed) throw new Error('the servers block no longer starts npm start and seed:demo');
    say(
      npmStart
        .output()
        .split('\n')
        .filter((l) => l.startsWith('LiveKit:'))
        .join('\n'),
    );
    if (!/^LiveKit: ws:\/\/localhost:7880 = livekit-server/m.test(npmStart.output())) {
      throw new Error(`npm start did not start its LiveKit dev server:\n${npmStart.output()}`);
    }

    const userToken = /^User token for demo-user \(1 hour\):\n(\S+)$/m.exec(seed.output())?.[1];
    if (!userToken) throw new Error(`seed:demo printed no user token:\n${seed.output()}`);
    const curl = readmeBlock(readme, 'session');
    if (!curl.includes('<the printed user token>'))
      throw new Error('the session block lost its token placeholder');
    say('$ curl -sS -X POST http://localhost:8787/v1/sessions … (README block, with the printed token)');
    const answer = JSON.parse(runToEnd(curl.replace('<the printed user token>', userToken), clone)) as {
      room_name?: string;
      dispatch_id?: string;
      agent_name?: string;
      code?: string;
    };
    if (!answer.room_name || !answer.dispatch_id) {
      throw new Error(`the session was not created: ${JSON.stringify(answer)}`);
    }
    const livekit = new AgentDispatchClient(`http://127.0.0.1:${PORTS.livekit}`, 'devkey', 'secret', {
      requestTimeout: 5,
    });
    const listed = await livekit.listDispatch(answer.room_name);
    const dispatch = listed.find((d) => d.id === answer.dispatch_id);
    if (!dispatch || dispatch.agentName !== answer.agent_name) {
      throw new Error(
        `LiveKit does not list dispatch ${answer.dispatch_id} in ${answer.room_name}: ${JSON.stringify(listed)}`,
      );
    }
    say(`201: room ${answer.room_name}, LiveKit lists dispatch ${dispatch.id} for ${dispatch.agentName}`);

    say('$ the Admin CLI block, as one bash script');
    const cli = runToEnd(readmeBlock(readme, 'cli'), clone);
    for (const expected of ['created tenant', 'created user', 'revoked bob', 'deleted tenant acme']) {
      if (!cli.includes(expected)) throw new Error(`the CLI block did not print "${expected}":\n${cli}`);
    }
    say(
      `done in ${Math.round((Date.now() - t0) / 1000)} s: the README's newcomer path works on a fresh clone`,
    );
  } finally {
    await stopAll();
    if (process.env.LKMCP_NEWCOMER_KEEP === '1') say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(async (error: unknown) => {
    await stopAll();
    console.error(`[newcomer] FAILED: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
