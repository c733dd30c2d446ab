import { type AddressInfo, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeededDemo, seedDemo } from '../../scripts/seed-demo.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';
import { heldLogLines } from '../support/quiet-logs.js';

let stack: LocalStack;
let demo: SeededDemo;
let livekitUrl: string;

/** A loopback port that was just free: nothing answers there. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
  const { port } = probe.address() as AddressInfo;
  await new Promise((ok) => probe.close(ok));
  return port;
}

beforeAll(async () => {
  livekitUrl = `ws://127.0.0.1:${await closedPort()}`;
  stack = await startLocalStack({ LIVEKIT_URL: livekitUrl, LOG_LEVEL: 'info' });
  demo = await seedDemo({ url: stack.base, dataDir: stack.dataDir, mcpPort: 0 });
});

afterAll(async () => {
  await demo?.stop();
  await stack?.stop();
});

describe('a LIVEKIT_URL where nothing answers', () => {
  it('answers 502 livekit_unavailable naming the URL (and no secret), logging the failure', async () => {
    // Act
    const res = await stack.call('POST', '/v1/sessions', { token: demo.userToken, body: {} });

    // Assess
    expect(res.status).toBe(502);
    expect(res.json.code).toBe('livekit_unavailable');
    expect(res.json.detail).toBe(`LiveKit at ${livekitUrl} did not answer in time or failed; retry later.`);
    expect(res.text).not.toContain('secret');
    expect(res.text).not.toContain(stack.local.services.config.livekit.apiSecret);
    // The expected error is logged, held by the test setup rather than printed.
    const failures = heldLogLines().filter((l) => l.level === 'ERROR');
    expect(failures).toContainEqual(
      expect.objectContaining({ message: 'request failed', code: 'livekit_unavailable' }),
    );
  });
});
