import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  participantJoined,
  roomFinished,
  signExpiredWebhookBody,
  signWebhookBody,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';
import { type Stack, startStack } from './stack.js';

// Secrets the scenario writes; none may show up in a log line, an answer (but the one participant
// token each started session hands out), the table in clear, or a LiveKit request.
const TENANT_TOKEN = `tok-TENANT-${uid('s')}`;
const USER_TOKEN = `tok-USER-${uid('s')}`;
const USER_TOKEN_2 = `tok-USER2-${uid('s')}`;
const HOOK_USER_TOKEN = `tok-HOOK-${uid('s')}`;
const HEADER_VALUE = `hv-SECRET-${uid('s')}`;
const TENANT_HEADER_VALUE = `hv-TENANT-${uid('s')}`;
const REFUSED_TOKEN = `tok with spaces ${uid('s')}`;
const REFUSED_HEADER_VALUE = `hv-REFUSED-${uid('s')}`;
const MCP_SECRETS = [
  TENANT_TOKEN,
  USER_TOKEN,
  USER_TOKEN_2,
  HOOK_USER_TOKEN,
  HEADER_VALUE,
  TENANT_HEADER_VALUE,
  REFUSED_TOKEN,
  REFUSED_HEADER_VALUE,
];
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;
const JWE = /eyJ[A-Za-z0-9_-]{8,}\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;

let s: Stack;
const logs: string[] = [];
const answers: { what: string; status: number; headers: string; text: string }[] = [];
let restore: () => void = () => {};

/** Every write to stdout/stderr (Powertools writes JSON lines to process.stdout) while it runs. */
function captureOutput(): () => void {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const grab =
    (original: typeof out) =>
    (chunk: unknown, ...rest: unknown[]): boolean => {
      logs.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
  process.stdout.write = grab(out) as typeof process.stdout.write;
  process.stderr.write = grab(err) as typeof process.stderr.write;
  return () => {
    process.stdout.write = out;
    process.stderr.write = err;
  };
}

async function call(
  what: string,
  method: string,
  path: string,
  options: { jwt?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.jwt !== undefined) headers.authorization = `Bearer ${options.jwt}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${s.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  answers.push({ what, status: res.status, headers: JSON.stringify([...res.headers]), text });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, text, etag: res.headers.get('etag') };
}

async function hook(what: string, body: string, signed?: { authorization: string }) {
  const auth = signed ?? (await signWebhookBody(body, TEST_LIVEKIT));
  return call(what, 'POST', '/v1/livekit/webhook', {
    raw: body,
    headers: { authorization: auth.authorization, 'content-type': 'application/webhook+json' },
  });
}

beforeAll(async () => {
  s = await startStack({ LOG_LEVEL: 'DEBUG' });
  restore = captureOutput();
});
afterAll(async () => {
  restore();
  await s?.stop();
});

describe('secrets never leak: a full scenario', () => {
  const tenantId = `sec-${uid('t').toLowerCase()}`;
  const userId = uid('alice');
  const hookUserId = uid('bob');
  const jwts: string[] = [];
  const participantTokens: string[] = [];
  const sealed: string[] = [];

  it('runs: admin writes, sessions, webhooks, failures', async () => {
    const superJwt = await s.adminToken();
    const adminJwt = await s.adminToken(tenantId);
    const userJwt = await s.userToken(userId, tenantId);
    const otherTenantAdmin = await s.adminToken('someone-else');
    const expiredJwt = await s.jwks.mint({ sub: userId, tenant_id: tenantId }, { expiresIn: -600 });
    const foreignJwt = await s.jwks.mint({ sub: userId, tenant_id: tenantId }, { signWithForeignKey: true });
    jwts.push(superJwt, adminJwt, userJwt, otherTenantAdmin, expiredJwt, foreignJwt);

    // Admin writes: tenant with a token and headers, users with their own.
    const tenant = await call('create tenant', 'PUT', `/v1/admin/tenants/${tenantId}`, {
      jwt: superJwt,
      headers: { 'if-none-match': '*' },
      body: {
        name: 'Secret Corp',
        mcp: {
          url: 'http://localhost:9/mcp',
          token: TENANT_TOKEN,
          headers: { 'X-Tenant': TENANT_HEADER_VALUE },
        },
        webhook_dispatch: true,
        max_concurrent_sessions: 3,
      },
    });
    expect(tenant.status, tenant.text).toBe(201);
    const user = await call('create user', 'PUT', `/v1/admin/tenants/${tenantId}/users/${userId}`, {
      jwt: adminJwt,
      headers: { 'if-none-match': '*' },
      body: {
        mcp: { url: 'http://localhost:9/u', token: USER_TOKEN, headers: { 'X-Api-Key': HEADER_VALUE } },
      },
    });
    expect(user.status, user.text).toBe(201);
    const hookUser = await call(
      'create hook user',
      'PUT',
      `/v1/admin/tenants/${tenantId}/users/${hookUserId}`,
      {
        jwt: adminJwt,
        headers: { 'if-none-match': '*' },
        body: { mcp: { url: 'http://localhost:9/b', token: HOOK_USER_TOKEN } },
      },
    );
    expect(hookUser.status, hookUser.text).toBe(201);
    // Token rotation, and refused writes whose bodies carry secrets.
    const rotated = await call('rotate token', 'PUT', `/v1/admin/tenants/${tenantId}/users/${userId}`, {
      jwt: adminJwt,
      headers: { 'if-match': user.etag ?? '' },
      body: { mcp: { url: 'http://localhost:9/u', token: USER_TOKEN_2 } },
    });
    expect(rotated.status, rotated.text).toBe(200);
    const badToken = await call('refused token', 'PUT', `/v1/admin/tenants/${tenantId}/users/${uid('c')}`, {
      jwt: adminJwt,
      headers: { 'if-none-match': '*' },
      body: { mcp: { url: 'http://localhost:9/c', token: REFUSED_TOKEN } },
    });
    expect(badToken.status).toBe(422);
    const badHeader = await call('refused header', 'PUT', `/v1/admin/tenants/${tenantId}/users/${uid('d')}`, {
      jwt: adminJwt,
      headers: { 'if-none-match': '*' },
      body: { mcp: { url: 'http://localhost:9/d', headers: { Authorization: REFUSED_HEADER_VALUE } } },
    });
    expect(badHeader.status).toBeGreaterThanOrEqual(400);
    const unsafe = await call('unsafe url', 'PUT', `/v1/admin/tenants/${tenantId}/users/${uid('e')}`, {
      jwt: adminJwt,
      headers: { 'if-none-match': '*' },
      body: { mcp: { url: 'https://169.254.169.254/latest', token: REFUSED_TOKEN.replace(/ /g, '-') } },
    });
    expect(unsafe.status).toBe(400);
    // Reads of everything an admin can read.
    for (const path of [
      `/v1/admin/tenants/${tenantId}`,
      `/v1/admin/tenants/${tenantId}/users`,
      `/v1/admin/tenants/${tenantId}/users/${userId}`,
      `/v1/admin/tenants/${tenantId}/audit`,
      '/v1/admin/tenants',
    ]) {
      const read = await call(`read ${path}`, 'GET', path, {
        jwt: path === '/v1/admin/tenants' ? superJwt : adminJwt,
      });
      expect(read.status, read.text).toBe(200);
    }
    expect(
      (await call('foreign admin', 'GET', `/v1/admin/tenants/${tenantId}`, { jwt: otherTenantAdmin })).status,
    ).toBe(404);

    // Sessions: started, replayed with an Idempotency-Key, refused.
    const started = await call('session', 'POST', '/v1/sessions', {
      jwt: userJwt,
      body: { participant_name: 'Alice' },
    });
    expect(started.status, started.text).toBe(201);
    participantTokens.push(started.json.participant_token as string);
    const keyed = await call('session idem', 'POST', '/v1/sessions', {
      jwt: userJwt,
      body: {},
      headers: { 'idempotency-key': 'k-1' },
    });
    const replay = await call('session idem replay', 'POST', '/v1/sessions', {
      jwt: userJwt,
      body: {},
      headers: { 'idempotency-key': 'k-1' },
    });
    expect(replay.json.room_name).toBe(keyed.json.room_name);
    participantTokens.push(keyed.json.participant_token as string, replay.json.participant_token as string);
    expect((await call('expired jwt', 'POST', '/v1/sessions', { jwt: expiredJwt, body: {} })).status).toBe(
      401,
    );
    expect((await call('foreign jwt', 'POST', '/v1/sessions', { jwt: foreignJwt, body: {} })).status).toBe(
      401,
    );
    expect(
      (
        await call('garbage bearer', 'POST', '/v1/sessions', {
          headers: { authorization: `Bearer ${USER_TOKEN}` },
          body: {},
        })
      ).status,
    ).toBe(401);

    // LiveKit failures during a session: its errors must not carry tokens into logs.
    for (const mode of ['503', 'garbage', 'reset'] as const) {
      s.livekit.failNext(1, mode);
      expect(
        (await call(`session livekit ${mode}`, 'POST', '/v1/sessions', { jwt: userJwt, body: {} })).status,
      ).toBe(502);
    }
    // DynamoDB throttled throughout: 503 with nothing of the request in the logs.
    s.dynamoProxy.fail({ mode: 'throttle' });
    expect((await call('session throttled', 'POST', '/v1/sessions', { jwt: userJwt, body: {} })).status).toBe(
      503,
    );
    s.dynamoProxy.clear();

    // Webhooks: a dispatch, a duplicate, a bad and an expired signature, the room finishing.
    const room = `lk-mcp-${tenantId}-${uid('r')}`;
    s.livekit.addRoom(room);
    const joined = participantJoined({ roomName: room, identity: hookUserId });
    const signed = await signWebhookBody(joined, TEST_LIVEKIT);
    jwts.push(signed.authorization);
    expect((await hook('webhook', joined, signed)).json.action).toBe('dispatched');
    expect((await hook('webhook duplicate', joined, signed)).json.action).toBe('duplicate_event');
    const wrongKey = await signWebhookBody(joined, {
      apiKey: TEST_LIVEKIT.apiKey,
      apiSecret: 'not-the-secret-0123456789abcdef',
    });
    jwts.push(wrongKey.authorization);
    expect((await hook('webhook bad signature', joined, wrongKey)).status).toBe(401);
    const expired = await signExpiredWebhookBody(joined, TEST_LIVEKIT);
    jwts.push(expired.authorization);
    expect((await hook('webhook expired', joined, expired)).status).toBe(401);
    expect((await hook('webhook finished', roomFinished({ roomName: room }))).json.action).toBe('ended');

    // Revoke: the user's sessions end, their rooms are deleted.
    const revoked = await call('revoke', 'POST', `/v1/admin/tenants/${tenantId}/users/${userId}/revoke`, {
      jwt: adminJwt,
    });
    expect(revoked.status, revoked.text).toBeLessThan(300);
    expect((await call('revoked session', 'POST', '/v1/sessions', { jwt: userJwt, body: {} })).status).toBe(
      403,
    );

    for (const c of s.livekit.calls) {
      const metadata = (c.body as { metadata?: string } | undefined)?.metadata;
      if (typeof metadata === 'string' && metadata !== '') sealed.push(metadata);
    }
    expect(sealed.length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('no log line holds an MCP token, a header value, the LiveKit secret, key material, a JWT or sealed metadata', () => {
    restore();
    const text = logs.join('');
    // The capture works and the scenario logged at every level it could.
    expect(logs.filter((l) => l.includes('"level"')).length).toBeGreaterThanOrEqual(15);
    expect(text).toContain('"level":"WARN"');
    expect(text).toContain('"level":"ERROR"');
    for (const secret of [...MCP_SECRETS, ...keyMaterial(), TEST_LIVEKIT.apiSecret]) {
      expect(text.includes(secret), secret.slice(0, 12)).toBe(false);
    }
    for (const jwt of [...jwts, ...participantTokens, ...sealed]) expect(text.includes(jwt)).toBe(false);
    expect(text.match(JWT) ?? []).toEqual([]);
    expect(text.match(JWE) ?? []).toEqual([]);
  });

  it('no answer holds one either, except the participant token a started session hands out', () => {
    const participant = new Set(participantTokens);
    for (const a of answers) {
      const all = `${a.headers}\n${a.text}`;
      for (const secret of [...MCP_SECRETS, ...keyMaterial(), TEST_LIVEKIT.apiSecret]) {
        expect(all.includes(secret), `${a.what}: ${secret.slice(0, 12)}`).toBe(false);
      }
      for (const jwt of jwts) expect(all.includes(jwt), a.what).toBe(false);
      for (const found of all.match(JWT) ?? []) {
        expect(participant.has(found), `${a.what} answered a JWT`).toBe(true);
        // ...and that token grants joining one room, nothing about MCP in it.
        expect(JSON.stringify(decodeJwt(found))).not.toMatch(/tok-|hv-/);
      }
    }
  });

  it('the table holds no MCP token, header value or key material in clear; LiveKit saw only sealed metadata', async () => {
    const table = JSON.stringify(await s.db.scan());
    for (const secret of [...MCP_SECRETS, ...keyMaterial(), TEST_LIVEKIT.apiSecret]) {
      expect(table.includes(secret), secret.slice(0, 12)).toBe(false);
    }
    for (const jwt of [...jwts, ...participantTokens]) expect(table.includes(jwt)).toBe(false);
    const toLiveKit = JSON.stringify(s.livekit.calls.map((c) => c.body));
    for (const secret of MCP_SECRETS) expect(toLiveKit.includes(secret)).toBe(false);
  });
});

/** The raw key strings of both keyrings (and their base64 forms). */
function keyMaterial(): string[] {
  const out: string[] = [];
  for (const json of [s.dispatchKeysJson, s.storageKeysJson]) {
    const keys = (JSON.parse(json) as { keys: Record<string, string> }).keys;
    for (const k of Object.values(keys)) {
      out.push(
        k,
        Buffer.from(k, 'base64url').toString('base64'),
        Buffer.from(k, 'base64url').toString('hex'),
      );
    }
  }
  return out;
}

describe('secrets never leak: the Lambda event is never logged', () => {
  it('no function or stack turns on Powertools logEvent (the event carries the bearer JWT and the body)', () => {
    // Prepare
    const files = ['functions', 'infra'].flatMap((dir) => sourceFiles(dir));

    // Act
    const offending = files.filter((f) =>
      /logEvent\s*:\s*true|POWERTOOLS_LOGGER_LOG_EVENT|injectLambdaContext\([^)]*logEvent/.test(
        readFileSync(f, 'utf8'),
      ),
    );

    // Assess
    expect(files.length).toBeGreaterThan(20);
    expect(offending).toEqual([]);
  });
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}
