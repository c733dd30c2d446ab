import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhookBody, TEST_LIVEKIT } from '../support/fixtures.js';
import { type Stack, seedUserWithJwt, startStack } from './stack.js';

const KIB = 1024;

let s: Stack;
let tenantId: string;
let userId: string;
let userJwt: string;
let adminJwt: string;

beforeAll(async () => {
  s = await startStack();
  const { tenant, user, jwt } = await seedUserWithJwt(s);
  tenantId = tenant.tenant_id;
  userId = user.user_id;
  userJwt = jwt;
  adminJwt = await s.adminToken(tenantId);
});
afterAll(async () => {
  await s?.stop();
});

/** One body-bearing route: where it is, its limit, and valid credentials for a given body. */
interface Route {
  name: string;
  method: string;
  path: () => string;
  limit: number;
  headers: (body: string) => Promise<Record<string, string>>;
}

const ROUTES: Route[] = [
  {
    name: 'POST /v1/sessions',
    method: 'POST',
    path: () => '/v1/sessions',
    limit: 64 * KIB,
    headers: async () => ({ authorization: `Bearer ${userJwt}`, 'content-type': 'application/json' }),
  },
  {
    name: 'POST /v1/livekit/webhook',
    method: 'POST',
    path: () => '/v1/livekit/webhook',
    limit: 1024 * KIB,
    headers: async (body) => ({
      authorization: (await signWebhookBody(body, TEST_LIVEKIT)).authorization,
      'content-type': 'application/webhook+json',
    }),
  },
  {
    name: 'PUT /v1/admin/tenants/{id}',
    method: 'PUT',
    path: () => `/v1/admin/tenants/${tenantId}`,
    limit: 64 * KIB,
    headers: async () => ({
      authorization: `Bearer ${adminJwt}`,
      'content-type': 'application/json',
      'if-match': '"1"',
    }),
  },
  {
    name: 'PUT /v1/admin/tenants/{id}/users/{id}',
    method: 'PUT',
    path: () => `/v1/admin/tenants/${tenantId}/users/${userId}`,
    limit: 64 * KIB,
    headers: async () => ({
      authorization: `Bearer ${adminJwt}`,
      'content-type': 'application/json',
      'if-match': '"1"',
    }),
  },
  {
    name: 'POST /v1/admin/tenants/{id}/users/{id}/revoke',
    method: 'POST',
    path: () => `/v1/admin/tenants/${tenantId}/users/${userId}/revoke`,
    limit: 64 * KIB,
    headers: async () => ({ authorization: `Bearer ${adminJwt}`, 'content-type': 'application/json' }),
  },
];

/** A JSON object of exactly `bytes` bytes, which every route would otherwise parse. */
function jsonOfSize(bytes: number): string {
  const head = '{"participant_name":"';
  const tail = '"}';
  return `${head}${'a'.repeat(bytes - head.length - tail.length)}${tail}`;
}

interface RawAnswer {
  /** Status of the first response, or 0 when the connection closed without one. */
  status: number;
  raw: string;
}

/**
 * Writes `head` and then `chunks` (pausing between them) on a fresh loopback socket, and reads
 * until the server closes the connection or 5 s pass. Write errors after the server has answered
 * and closed are expected and ignored.
 */
function rawExchange(head: string, chunks: Buffer[]): Promise<RawAnswer> {
  const { port } = new URL(s.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let raw = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      resolve({ status: match ? Number(match[1]) : 0, raw });
    };
    const timer = setTimeout(done, 5000);
    socket.on('data', (d) => {
      raw += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', done);
    socket.on('connect', async () => {
      socket.write(head);
      for (const chunk of chunks) {
        if (socket.destroyed) break;
        socket.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

function headOf(route: Route, headers: Record<string, string>): string {
  const lines = [`${route.method} ${route.path()} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function chunked(body: string, size: number): Buffer[] {
  const out: Buffer[] = [];
  const bytes = Buffer.from(body);
  for (let i = 0; i < bytes.length; i += size) {
    const part = bytes.subarray(i, i + size);
    out.push(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return out;
}

describe.each(ROUTES)('body limits over a real socket: $name', (route) => {
  it('Content-Length one byte over the limit → 413 payload_too_large, nothing written', async () => {
    // Prepare
    const body = jsonOfSize(route.limit + 1);
    const before = await s.db.scan();

    // Act
    const res = await rawExchange(
      headOf(route, { ...(await route.headers(body)), 'content-length': String(body.length) }),
      [Buffer.from(body)],
    );

    // Assess
    expect(res.status, res.raw.slice(0, 300)).toBe(413);
    expect(res.raw).toContain('payload_too_large');
    expect(await s.db.scan()).toEqual(before);
  });

  it('chunked, no Content-Length, over the limit → 413 before the end is read, nothing written', async () => {
    // Prepare
    const body = jsonOfSize(route.limit + 16 * KIB);
    const before = await s.db.scan();

    // Act
    const res = await rawExchange(
      headOf(route, { ...(await route.headers(body)), 'transfer-encoding': 'chunked' }),
      chunked(body, 8 * KIB),
    );

    // Assess
    expect(res.status, res.raw.slice(0, 300)).toBe(413);
    expect(res.raw).toContain('payload_too_large');
    expect(await s.db.scan()).toEqual(before);
  });

  it('chunked at exactly the limit is let through to the parser (the limit is not off by one)', async () => {
    // Prepare
    const body = jsonOfSize(route.limit);

    // Act
    const res = await rawExchange(
      headOf(route, { ...(await route.headers(body)), 'transfer-encoding': 'chunked' }),
      chunked(body, 16 * KIB),
    );

    // Assess
    expect(res.status, res.raw.slice(0, 300)).not.toBe(413);
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(500);
  });

  it('lying Content-Length, larger than the limit, with a tiny body → 413 without waiting for it', async () => {
    // Prepare
    const body = '{}';
    const before = await s.db.scan();

    // Act
    const started = Date.now();
    const res = await rawExchange(
      headOf(route, { ...(await route.headers(body)), 'content-length': String(route.limit * 4) }),
      [Buffer.from(body)],
    );

    // Assess
    expect(res.status, res.raw.slice(0, 300)).toBe(413);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await s.db.scan()).toEqual(before);
  });

  it('lying Content-Length, smaller than what is sent → only that many bytes are read; no 2xx, no 5xx', async () => {
    // Prepare
    const body = jsonOfSize(route.limit * 2);
    const before = await s.db.scan();

    // Act
    const res = await rawExchange(headOf(route, { ...(await route.headers(body)), 'content-length': '24' }), [
      Buffer.from(body),
    ]);

    // Assess
    expect(res.status, res.raw.slice(0, 300)).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await s.db.scan()).toEqual(before);
  });

  it('Content-Length and Transfer-Encoding together (smuggling shape) → refused, nothing written', async () => {
    // Prepare
    const body = jsonOfSize(route.limit + 16 * KIB);
    const before = await s.db.scan();

    // Act
    const res = await rawExchange(
      headOf(route, {
        ...(await route.headers(body)),
        'content-length': '16',
        'transfer-encoding': 'chunked',
      }),
      chunked(body, 8 * KIB),
    );

    // Assess
    expect([400, 413]).toContain(res.status);
    expect(await s.db.scan()).toEqual(before);
  });
});
