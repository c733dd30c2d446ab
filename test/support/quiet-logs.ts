/**
 * Vitest setup (vitest.config.ts `setupFiles`): the functions' JSON log lines (Powertools Logger
 * writes them to process.stdout/stderr) are held per test instead of printed, and printed only
 * when that test fails, so a green run shows no `"level":"ERROR"` line for the errors the tests
 * provoke on purpose. Tests read what was logged with {@link heldLogLines}. `LKMCP_TEST_LOGS=1`
 * prints every line as it comes.
 */
import { beforeEach } from 'vitest';

// The AWS SDK warns on Node < 22 at its first client. package.json `engines` allows Node 20 for
// local runs and tests, the functions run on Node 22 in Lambda; this is the SDK's documented switch.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const LOG_LINE = /^\{"level":"(DEBUG|INFO|WARN|ERROR|CRITICAL)"/;
const held: string[] = [];
const passThrough = process.env.LKMCP_TEST_LOGS === '1';

type Write = typeof process.stdout.write;

function hold(stream: NodeJS.WriteStream): Write {
  const write = stream.write.bind(stream) as Write;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (passThrough || !LOG_LINE.test(text)) return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    held.push(text);
    // Console passes a callback; a held line is "written".
    const done = rest.find((r): r is () => void => typeof r === 'function');
    if (done) queueMicrotask(done);
    return true;
  }) as Write;
  return write;
}

const out = hold(process.stdout);
hold(process.stderr);

/** The JSON log lines the functions wrote during the current test, parsed. */
export function heldLogLines(): Record<string, unknown>[] {
  return held.flatMap((chunk) =>
    chunk
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

beforeEach(({ onTestFailed }) => {
  held.length = 0;
  onTestFailed(() => {
    if (held.length > 0) out(`--- log lines of the failed test ---\n${held.join('')}`);
  });
});
