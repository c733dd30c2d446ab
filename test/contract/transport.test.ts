import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §7: bodies over 64 KiB (1 MiB for the webhook) are refused (413), chunked or not.
// A keep-alive client must be able to go on after a 413: the connection it was sent on closes
// cleanly (`Connection: close`) instead of failing the client's next request.

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack?.stop();
});

interface Exchange {
  status: number;
  connection: string | undefined;
  contentType: string | undefined;
  body: string;
}

function send(agent: Agent, method: string, path: string, body?: Buffer, chunked = false): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: stack.local.port,
        method,
        path,
        agent,
        headers: {
          'content-type': 'application/json',
          ...(body !== undefined && !chunked ? { 'content-length': String(body.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            contentType: res.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    // The server may close while the rest of a refused body is still being written.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    if (body !== undefined) {
      if (chunked) {
        req.write(body.subarray(0, 1024));
        req.write(body.subarray(1024));
      } else {
        req.write(body);
      }
    }
    req.end();
  });
}

describe('413 over a keep-alive connection', () => {
  const cases = [
    { path: '/v1/sessions', method: 'POST', size: 300 * 1024 },
    { path: '/v1/livekit/webhook', method: 'POST', size: 1024 * 1024 + 64 * 1024 },
    { path: '/v1/admin/tenants/acme', method: 'PUT', size: 300 * 1024 },
  ];
  for (const { path, method, size } of cases) {
    for (const chunked of [false, true]) {
      it(`${method} ${path} ${chunked ? 'chunked' : 'with Content-Length'}: 413, then the next request succeeds`, async () => {
        // Prepare
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });

        // Act
        const refused = await send(agent, method, path, Buffer.alloc(size, 0x20), chunked);
        const next = await send(agent, 'GET', '/healthz');
        agent.destroy();

        // Assess
        expect(refused.status).toBe(413);
        expect(refused.contentType).toBe('application/problem+json');
        expect(JSON.parse(refused.body)).toMatchObject({ status: 413, code: 'payload_too_large' });
        expect(refused.connection).toBe('close');
        expect(next.status).toBe(200);
      });
    }
  }

  it('fetch (undici, keep-alive) goes on after a refused webhook body', async () => {
    // Prepare
    const big = 'x'.repeat(1024 * 1024 + 1);

    // Act
    const refused = await fetch(`${stack.base}/v1/livekit/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/webhook+json', authorization: 'x' },
      body: big,
    });
    await refused.text();
    const after = await fetch(`${stack.base}/healthz`);

    // Assess
    expect(refused.status).toBe(413);
    expect(after.status).toBe(200);
  });
});
