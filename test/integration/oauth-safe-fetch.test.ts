import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch, SafeFetchError } from '../../functions/adapters/safe-fetch.js';
import { dialToLoopback, PUBLIC_ADDRESS, ScriptedResolver } from '../support/oauth/hosts.js';
import { makeCertificate } from '../support/oauth/tls.js';

const NAME = 'rebind.example.com';
const tls = makeCertificate([NAME]);
let contacted = 0;

function routes(req: IncomingMessage, res: ServerResponse): void {
  contacted += 1;
  const path = req.url ?? '/';
  if (path === '/redirect') {
    res.writeHead(302, { location: 'http://127.0.0.1/' }).end();
  } else if (path === '/slow') {
    setTimeout(() => res.writeHead(200).end('late'), 1_500).unref();
  } else if (path === '/big') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('x'.repeat(300 * 1024));
  } else if (path === '/big-chunked') {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < 40; i += 1) res.write('y'.repeat(8 * 1024));
    res.end();
  } else {
    const servername = (req.socket as TLSSocket & { servername?: string }).servername ?? null;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ host: req.headers.host, servername, method: req.method }));
  }
}

const httpsServer = createHttpsServer({ cert: tls.cert, key: tls.key }, routes);
const httpServer = createHttpServer(routes);
let httpsPort = 0;
let httpPort = 0;

beforeAll(async () => {
  await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  httpsPort = (httpsServer.address() as AddressInfo).port;
  httpPort = (httpServer.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => httpsServer.close(r));
  await new Promise((r) => httpServer.close(r));
});

function hostileFetch(resolver: ScriptedResolver, extra: { timeoutMs?: number } = {}) {
  return createSafeFetch({
    allowedPorts: [httpsPort],
    allowInsecure: false,
    resolve: resolver.resolve,
    ca: tls.cert,
    dialAddress: dialToLoopback(),
    ...extra,
  });
}

async function refusal(promise: Promise<unknown>): Promise<SafeFetchError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeFetchError);
  return error as SafeFetchError;
}

describe('safe fetch: address pinning', () => {
  it('connects to the address it checked, never resolving twice (public at check, private after)', async () => {
    // Prepare: the name answers public once, then loopback and a private address (rebinding).
    const resolver = new ScriptedResolver({ [NAME]: [[PUBLIC_ADDRESS], ['127.0.0.1'], ['10.0.0.7']] });
    const fetch = hostileFetch(resolver);

    // Act
    const response = await fetch(`https://${NAME}:${httpsPort}/echo`, { method: 'POST', body: 'a=1' });

    // Assess: one resolution, TLS name and Host kept, the answer came from the pinned dial.
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ host: `${NAME}:${httpsPort}`, servername: NAME, method: 'POST' });
    expect(resolver.count(NAME)).toBe(1);
  });

  it('refuses a name that resolves private at check time, with no contact', async () => {
    const resolver = new ScriptedResolver({ [NAME]: [['10.0.0.7']] });
    const before = contacted;
    const error = await refusal(hostileFetch(resolver)(`https://${NAME}:${httpsPort}/echo`));
    expect(error.reason).toBe('unsafe_url');
    expect(contacted).toBe(before);
  });

  it.each([
    ['loopback literal', `https://127.0.0.1:${443}/`],
    ['IPv4-mapped IPv6', 'https://[::ffff:127.0.0.1]/'],
    ['metadata address', 'https://169.254.169.254/latest/meta-data'],
    ['hex spelling of loopback', 'https://0x7f000001/'],
    ['userinfo', `https://user:pw@${NAME}/`],
    ['plain http', `http://${NAME}/`],
    ['port not allowed', `https://${NAME}:8443/`],
    ['localhost', 'https://localhost/'],
  ])('refuses %s with the dev flag off', async (_label, url) => {
    const resolver = new ScriptedResolver({ [NAME]: [[PUBLIC_ADDRESS]] });
    const error = await refusal(hostileFetch(resolver)(url));
    expect(error.reason).toBe('unsafe_url');
    expect(error.message).not.toContain('pw');
  });

  it('admits http://localhost and loopback only with the dev flag', async () => {
    const resolver = new ScriptedResolver({ localhost: [['127.0.0.1']], [NAME]: [['127.0.0.1']] });
    const dev = createSafeFetch({ allowedPorts: [], allowInsecure: true, resolve: resolver.resolve });
    expect((await dev(`http://127.0.0.1:${httpPort}/x`)).status).toBe(200);
    expect((await dev(`http://localhost:${httpPort}/x`)).status).toBe(200);
    // The dev flag admits loopback, not other names that resolve to it.
    expect((await refusal(dev(`http://${NAME}:${httpPort}/x`))).reason).toBe('unsafe_url');
    const strict = createSafeFetch({ allowedPorts: [], allowInsecure: false, resolve: resolver.resolve });
    expect((await refusal(strict(`http://127.0.0.1:${httpPort}/x`))).reason).toBe('unsafe_url');
  });

  it('refuses dev localhost when it resolves off loopback', async () => {
    const resolver = new ScriptedResolver({ localhost: [[PUBLIC_ADDRESS]] });
    const dev = createSafeFetch({ allowedPorts: [], allowInsecure: true, resolve: resolver.resolve });
    expect((await refusal(dev(`http://localhost:${httpPort}/x`))).reason).toBe('unsafe_url');
  });
});

describe('safe fetch: answers', () => {
  const resolver = () => new ScriptedResolver({ [NAME]: [[PUBLIC_ADDRESS]] });

  it('returns a redirect as an error and does not follow it', async () => {
    const error = await refusal(hostileFetch(resolver())(`https://${NAME}:${httpsPort}/redirect`));
    expect(error.reason).toBe('redirect');
  });

  it('times out a slow server', async () => {
    const started = Date.now();
    const error = await refusal(
      hostileFetch(resolver(), { timeoutMs: 300 })(`https://${NAME}:${httpsPort}/slow`),
    );
    expect(error.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_400);
  });

  it('refuses a body over 256 KiB, declared or streamed', async () => {
    const fetch = hostileFetch(resolver());
    expect((await refusal(fetch(`https://${NAME}:${httpsPort}/big`))).reason).toBe('too_large');
    expect((await refusal(fetch(`https://${NAME}:${httpsPort}/big-chunked`))).reason).toBe('too_large');
  });

  it('defaults to a 5 s deadline and 256 KiB', async () => {
    const { SAFE_FETCH_MAX_BYTES, SAFE_FETCH_TIMEOUT_MS } = await import(
      '../../functions/adapters/safe-fetch.js'
    );
    expect(SAFE_FETCH_TIMEOUT_MS).toBe(5_000);
    expect(SAFE_FETCH_MAX_BYTES).toBe(262_144);
  });
});
