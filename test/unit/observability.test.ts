import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLog } from '../../functions/adapters/logger.js';
import { createEmfMetrics, createLogMetrics } from '../../functions/adapters/metrics.js';
import { createServices } from '../../functions/compose.js';
import { loadConfig } from '../../functions/core/config.js';
import { LiveKitUnavailableError } from '../../functions/core/errors.js';
import { addLogContext, currentLogContext, runWithLogContext, silentLog } from '../../functions/core/log.js';
import type { MetricName, Metrics } from '../../functions/core/metrics.js';
import { requestContext } from '../../functions/http/request-context.js';

/** Everything written to stdout and stderr while a test runs (Powertools logs and EMF). */
let written: string[] = [];

beforeEach(() => {
  written = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
});

const lines = () =>
  written
    .join('')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Metrics that remember what was counted. */
function recordingMetrics(): Metrics & { counts: Partial<Record<MetricName, number>> } {
  const counts: Partial<Record<MetricName, number>> = {};
  return {
    counts,
    count(name, n = 1) {
      counts[name] = (counts[name] ?? 0) + n;
    },
  };
}

describe('log context', () => {
  it('puts the request id and the ids learned later on every line of the request', async () => {
    // Prepare
    const log = createLog({ service: 'test', level: 'INFO' });

    // Act
    await runWithLogContext({ request_id: 'req-1' }, async () => {
      log.info('first');
      await new Promise((r) => setTimeout(r, 1));
      addLogContext({ room: 'lk-mcp-acme-x', tenant_id: 'acme', dispatch_id: undefined });
      log.child({ event_id: 'EV_1' }).warn('second', { action: 'dispatched' });
    });
    log.info('outside');

    // Assess
    const [first, second, outside] = lines();
    expect(first).toMatchObject({ message: 'first', request_id: 'req-1' });
    expect(first).not.toHaveProperty('room');
    expect(second).toMatchObject({
      message: 'second',
      request_id: 'req-1',
      room: 'lk-mcp-acme-x',
      tenant_id: 'acme',
      event_id: 'EV_1',
      action: 'dispatched',
    });
    expect(second).not.toHaveProperty('dispatch_id');
    expect(outside).not.toHaveProperty('request_id');
  });

  it('keeps concurrent requests apart', async () => {
    // Prepare
    const log = createLog({ service: 'test', level: 'INFO' });
    const request = (id: string, room: string, delay: number) =>
      runWithLogContext({ request_id: id }, async () => {
        addLogContext({ room });
        await new Promise((r) => setTimeout(r, delay));
        log.info('done');
      });

    // Act
    await Promise.all([request('a', 'room-a', 5), request('b', 'room-b', 1)]);

    // Assess
    const byId = Object.fromEntries(lines().map((l) => [l.request_id, l.room]));
    expect(byId).toEqual({ a: 'room-a', b: 'room-b' });
  });

  it('redacts secret-named keys from the context and the line alike', async () => {
    // Prepare
    const log = createLog({ service: 'test', level: 'INFO' });

    // Act
    runWithLogContext({ request_id: 'r', api_token: 'tok-SECRET' }, () => {
      log.info('x', { authorization: 'Bearer tok-SECRET-2', headers: { a: 'b' }, room: 'r1' });
    });

    // Assess
    expect(written.join('')).not.toContain('tok-SECRET');
    expect(lines()[0]).toMatchObject({ api_token: '[redacted]', authorization: '[redacted]', room: 'r1' });
  });

  it('does nothing outside a request', () => {
    // Act
    addLogContext({ room: 'x' });

    // Assess
    expect(currentLogContext()).toBeUndefined();
  });
});

describe('requestContext middleware', () => {
  const appSeeing = () => {
    const seen: (Readonly<Record<string, unknown>> | undefined)[] = [];
    const app = new Hono();
    app.use('*', requestContext());
    app.get('/x', async (c) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(currentLogContext());
      return c.text('ok');
    });
    return { app, seen };
  };

  it("uses API Gateway's request id and the Lambda request id in AWS", async () => {
    // Prepare
    const { app, seen } = appSeeing();

    // Act
    await app.request(
      '/x',
      {},
      {
        event: { requestContext: { requestId: 'apigw-123' } },
        lambdaContext: { awsRequestId: 'lambda-456' },
      },
    );

    // Assess
    expect(seen[0]).toEqual({ request_id: 'apigw-123', lambda_request_id: 'lambda-456' });
  });

  it('takes a well-formed X-Request-Id locally, and makes one up otherwise', async () => {
    // Prepare
    const { app, seen } = appSeeing();

    // Act
    await app.request('/x', { headers: { 'x-request-id': 'abc-123' } });
    await app.request('/x', { headers: { 'x-request-id': 'bad id with spaces' } });

    // Assess
    expect(seen[0]).toEqual({ request_id: 'abc-123' });
    expect(seen[1]?.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('metrics adapters', () => {
  it('writes each count at once as CloudWatch EMF', () => {
    // Prepare
    const metrics = createEmfMetrics({ service: 'livekit-mcp-dispatch-session' });

    // Act
    metrics.count('SessionsStarted');
    metrics.count('QuotaRejections', 2);

    // Assess
    const emf = lines();
    expect(emf).toHaveLength(2);
    expect(emf[0]).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'LiveKitMcpDispatch',
            Dimensions: [['service']],
            Metrics: [{ Name: 'SessionsStarted', Unit: 'Count' }],
          },
        ],
      },
      service: 'livekit-mcp-dispatch-session',
      SessionsStarted: 1,
    });
    expect(emf[1]).toMatchObject({ QuotaRejections: 2 });
  });

  it('writes counts as debug lines locally', () => {
    // Prepare
    const log = createLog({ service: 'local', level: 'DEBUG' });

    // Act
    createLogMetrics(log).count('RateRejections');

    // Assess
    expect(lines()[0]).toMatchObject({ message: 'metric', metric: 'RateRejections', value: 1 });
  });
});

describe('createServices metrics wiring', () => {
  it('counts every failed LiveKit call, whichever app makes it', async () => {
    // Prepare: a LiveKit URL nobody listens on.
    const probe = createServer();
    await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
    const { port } = probe.address() as AddressInfo;
    await new Promise((ok) => probe.close(ok));
    const keyring = (kid: string) =>
      JSON.stringify({ current: kid, keys: { [kid]: randomBytes(32).toString('base64url') } });
    const config = loadConfig(
      {
        LIVEKIT_URL: `http://127.0.0.1:${port}`,
        LIVEKIT_API_KEY: 'key',
        LIVEKIT_API_SECRET: 'secret',
        STORAGE_KEYS: keyring('s1'),
        DISPATCH_KEYS: keyring('d1'),
        AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
        AUTH_ISSUER: 'https://issuer.example.com/',
        AUTH_AUDIENCE: 'livekit-mcp-dispatch',
      },
      'lambda',
    );
    const metrics = recordingMetrics();
    const services = createServices(config, silentLog, { metrics });

    // Act
    const created = services.livekit.createDispatch('room', 'agent', 'sealed');
    const deleted = services.livekit.deleteRoom('room');

    // Assess
    await expect(created).rejects.toBeInstanceOf(LiveKitUnavailableError);
    await expect(deleted).rejects.toBeInstanceOf(LiveKitUnavailableError);
    expect(metrics.counts).toEqual({ LiveKitFailures: 2 });
    expect(services.metrics).toBe(metrics);
  });
});
