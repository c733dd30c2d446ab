import { spawn } from 'node:child_process';

/**
 * Runs `script` (ES module source) in a fresh `node` process with `env` and extra node `flags`,
 * and resolves with its stdout once it exits 0; rejects with the tail of its output otherwise.
 * The bench's fresh-process measurements (cold start, first request) all start this way.
 */
export function runNodeScript(
  script: string,
  env: NodeJS.ProcessEnv,
  flags: string[] = [],
  what = 'bench child',
): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [...flags, '--input-type=module', '-e', script], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', fail);
    child.on('close', (code) => {
      if (code !== 0) fail(new Error(`${what} failed (${code}): ${(err || out).slice(-1500)}`));
      else ok(out);
    });
  });
}
