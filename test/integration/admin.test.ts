import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createLiveKitGateway } from '../../functions/adapters/livekit.js';
import { type AdminAppDeps, createAdminApp } from '../../functions/admin/app.js';
import { holderOf } from '../../functions/core/dispatcher.js';
import { parseKeyring } from '../../functions/core/keyring.js';
import type { Log } from '../../functions/core/log.js';
import type { SessionRecord } from '../../functions/core/model.js';
import { effectiveMcpConfig } from '../../functions/core/resolve.js';
import { createDispatchSealer, createSecretBox } from '../../functions/core/sealing.js';
import type { HostResolver } from '../../functions/core/url-guard.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { createSessionApp } from '../../functions/session/app.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { type JwksServer, startJwksServer, verifierOf } from '../support/jwks-server.js';
import { type LiveKitStandIn, startLiveKitStandIn } from '../support/livekit-standin.js';

const LK = { apiKey: 'admin-test-key', apiSecret: 'admin-test-secret-with-enough-length-0123456789' };
const storageKeys = parseKeyring('STORAGE_KEYS', {
  current: 'k1',
  keys: { k1: Buffer.alloc(32, 3).toString('base64url') },
}).keyring!;

// Plaintext secrets the tests write; none may ever show up in the table, a response or a log line.
const SECRET_TOKEN = 'tok-SECRET-7f3a9c1e5b';
const SECRET_TOKEN_2 = 'tok-SECRET-2-d41d8cd98f';
const SECRET_HEADER = 'hdr-SECRET-0b5e7a2c44';
const SECRETS = [SECRET_TOKEN, SECRET_TOKEN_2, SECRET_HEADER];

const resolveHost: HostResolver = async (host) => {
  const table: Record<string, string[]> = {
    'mcp.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'other.example.com': ['93.184.215.15'],
    'internal.example.com': ['93.184.215.16', '10.1.2.3'],
  };
  const answers = table[host];
  if (!answers) throw new Error('ENOTFOUND');
  return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

interface Sent {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
  json: any;
}

let db: TestDynamo;
let jwks: JwksServer;
let livekit: LiveKitStandIn;
let store: DynamoStore;
let app: ReturnType<typeof createAdminApp>;
const logLines: string[] = [];
const responses: string[] = [];
const tokens: Record<'super' | 'adminA' | 'adminAScp' | 'adminB' | 'userA' | 'noTenantAdmin', string> = {
  super: '',
  adminA: '',
  adminAScp: '',
  adminB: '',
  userA: '',
  noTenantAdmin: '',
};

function captureLog(): Log {
  const write = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    logLines.push(JSON.stringify({ level, message, ...meta }));
  };
  const log: Log = {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: () => log,
  };
  return log;
}

async function send(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  responses.push(text, JSON.stringify([...res.headers]));
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const tenantA = 'tenant-a';
const tenantB = 'tenant-b';

async function createTenant(id: string, body: Record<string, unknown> = {}): Promise<Sent> {
  const res = await send('PUT', `/v1/admin/tenants/${id}`, {
    token: tokens.super,
    headers: { 'if-none-match': '*' },
    body: { name: `Tenant ${id}`, ...body },
  });
  expect(res.status, res.text).toBe(201);
  return res;
}

async function createUser(
  tenantId: string,
  userId: string,
  body: Record<string, unknown> = {},
): Promise<Sent> {
  const res = await send('PUT', `/v1/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}`, {
    token: tokens.super,
    headers: { 'if-none-match': '*' },
    body,
  });
  expect(res.status, res.text).toBe(201);
  return res;
}

/** Writes a live session as the dispatch saga does: its active marker, then its record. */
async function liveSession(record: SessionRecord): Promise<void> {
  await store.markSessionActive(record);
  await store.putSession(record);
}

function session(tenantId: string, userId: string, room: string): SessionRecord {
  return {
    room_name: room,
    tenant_id: tenantId,
    user_id: userId,
    participant_identity: userId,
    agent_name: 'mcp-agent',
    dispatch_id: `AD_${room}`,
    mode: 'api',
    origin: 'session',
    status: 'active',
    created_at: new Date().toISOString(),
  };
}

/** The admin app's dependencies over this file's servers; `overrides` replace any of them. */
function adminDeps(overrides: Partial<AdminAppDeps> = {}): AdminAppDeps {
  return {
    store,
    secretBox: createSecretBox(storageKeys),
    verifier: verifierOf(jwks),
    livekit: createLiveKitGateway({ httpUrl: livekit.url, ...LK }),
    config: { mcpAllowedPorts: [8443], allowInsecureMcpUrls: false, storageKeys },
    resolveHost,
    openApiDocument: sourceOpenApiDocument,
    ...overrides,
  };
}

beforeAll(async () => {
  [db, jwks, livekit] = await Promise.all([startDynalite(), startJwksServer(), startLiveKitStandIn(LK)]);
  store = new DynamoStore({ client: db.client, tableName: db.tableName });
  app = createAdminApp(adminDeps({ log: captureLog() }));
  tokens.super = await jwks.mint({ sub: 'operator', scope: 'openid dispatch:superadmin' });
  tokens.adminA = await jwks.mint({ sub: 'admin-a', tenant_id: tenantA, scope: 'dispatch:admin' });
  tokens.adminAScp = await jwks.mint({ sub: 'admin-a2', tenant_id: tenantA, scp: ['dispatch:admin'] });
  tokens.adminB = await jwks.mint({ sub: 'admin-b', tenant_id: tenantB, scope: 'dispatch:admin' });
  tokens.userA = await jwks.mint({ sub: 'alice', tenant_id: tenantA, scope: 'openid profile' });
  tokens.noTenantAdmin = await jwks.mint({ sub: 'stray', scope: 'dispatch:admin' });
});

afterAll(async () => {
  // Assess (whole file): no plaintext secret was stored, answered or logged.
  const table = JSON.stringify(await db.scan());
  for (const secret of SECRETS) {
    expect(table).not.toContain(secret);
    expect(responses.join('\n')).not.toContain(secret);
    expect(logLines.join('\n')).not.toContain(secret);
  }
  await Promise.all([db?.stop(), jwks?.stop(), livekit?.stop()]);
});

describe('admin API: tenants', () => {
  it('round-trips a tenant: create, read, update keeping the token, clear it, delete', async () => {
    // Prepare + Act: create
    const created = await createTenant('crud-t', {
      mcp: {
        url: 'https://mcp.example.com/mcp',
        token: SECRET_TOKEN,
        headers: { 'X-Api-Key': SECRET_HEADER },
      },
      agent_names: ['support-agent'],
      max_concurrent_sessions: 5,
    });

    // Assess
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.headers.get('location')).toBe('/v1/admin/tenants/crud-t');
    expect(created.json).toMatchObject({
      tenant_id: 'crud-t',
      name: 'Tenant crud-t',
      dispatch_policy: 'per_room',
      agent_names: ['support-agent'],
      max_concurrent_sessions: 5,
      status: 'active',
      version: 1,
      mcp: {
        url: 'https://mcp.example.com/mcp',
        token_set: true,
        header_names: ['X-Api-Key'],
      },
    });
    const fingerprint = created.json.mcp.token_fingerprint;
    expect(fingerprint).toMatch(/^fp_[0-9a-f]{16}$/);

    // Act: read
    const read = await send('GET', '/v1/admin/tenants/crud-t', { token: tokens.super });
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('"1"');
    expect(read.json).toEqual(created.json);

    // Act: update without token/headers keeps them
    const updated = await send('PUT', '/v1/admin/tenants/crud-t', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: {
        name: 'Renamed',
        mcp: { url: 'https://mcp.example.com/v2', transport: 'sse' },
        agent_names: ['support-agent'],
      },
    });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.headers.get('etag')).toBe('"2"');
    expect(updated.json.mcp).toMatchObject({
      token_set: true,
      token_fingerprint: fingerprint,
      header_names: ['X-Api-Key'],
    });
    expect(updated.json.max_concurrent_sessions).toBeNull();

    // Act: null clears
    const cleared = await send('PUT', '/v1/admin/tenants/crud-t', {
      token: tokens.super,
      headers: { 'if-match': '"2"' },
      body: { name: 'Renamed', mcp: { url: 'https://mcp.example.com/v2', token: null, headers: null } },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.json.mcp).toMatchObject({ token_set: false, token_fingerprint: null, header_names: [] });

    // Act: delete, then read
    const deleted = await send('DELETE', '/v1/admin/tenants/crud-t', { token: tokens.super });
    const gone = await send('GET', '/v1/admin/tenants/crud-t', { token: tokens.super });

    // Assess
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
    expect(gone.json.code).toBe('tenant_not_found');
  });

  it('lists tenants for a superadmin only', async () => {
    // Prepare
    await createTenant('list-t1');

    // Act
    const asSuper = await send('GET', '/v1/admin/tenants?limit=100', { token: tokens.super });
    const asAdmin = await send('GET', '/v1/admin/tenants', { token: tokens.adminA });

    // Assess
    expect(asSuper.status).toBe(200);
    expect(asSuper.json.items.map((t: { tenant_id: string }) => t.tenant_id)).toContain('list-t1');
    expect(asAdmin.status).toBe(403);
  });

  it('answers 404 tenant_not_found to the users, audit and sessions lists of a tenant that does not exist', async () => {
    // Prepare: one tenant that never existed, one deleted after it had a user and an audit trail
    await createTenant('gone-lists');
    await send('PUT', '/v1/admin/tenants/gone-lists/users/ulla', {
      token: tokens.super,
      headers: { 'if-none-match': '*' },
      body: {},
    });
    await send('DELETE', '/v1/admin/tenants/gone-lists?cascade=true', { token: tokens.super });

    for (const tenantId of ['never-existed', 'gone-lists']) {
      for (const list of ['users', 'audit', 'sessions']) {
        // Act
        const res = await send('GET', `/v1/admin/tenants/${tenantId}/${list}`, { token: tokens.super });

        // Assess
        expect(res.status, `${tenantId} ${list}`).toBe(404);
        expect(res.json.code).toBe('tenant_not_found');
      }
    }
    // An existing tenant's empty list is still a page.
    await createTenant('lists-ok');
    const empty = await send('GET', '/v1/admin/tenants/lists-ok/sessions', { token: tokens.super });
    expect(empty.status).toBe(200);
    expect(empty.json.items).toEqual([]);
  });

  it('refuses a tenant admin setting a superadmin-only field (403), and lets it change the rest', async () => {
    // Prepare
    await createTenant(tenantA, { agent_names: ['a-agent'], webhook_dispatch: true });

    // Act
    const refused = await send('PUT', `/v1/admin/tenants/${tenantA}`, {
      token: tokens.adminA,
      headers: { 'if-match': '"1"' },
      body: { name: 'A', max_concurrent_sessions: 1000 },
    });
    const allowed = await send('PUT', `/v1/admin/tenants/${tenantA}`, {
      token: tokens.adminAScp,
      headers: { 'if-match': '"1"' },
      body: { name: 'A renamed', dispatch_policy: 'per_participant' },
    });

    // Assess
    expect(refused.status).toBe(403);
    expect(refused.json).toMatchObject({
      code: 'field_requires_superadmin',
      fields: ['max_concurrent_sessions'],
    });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.json).toMatchObject({
      name: 'A renamed',
      dispatch_policy: 'per_participant',
      agent_names: ['a-agent'],
      webhook_dispatch: true,
    });
  });

  it('does not let a tenant admin create its tenant', async () => {
    // Act
    const res = await send('PUT', '/v1/admin/tenants/tenant-new', {
      token: await jwks.mint({ sub: 'x', tenant_id: 'tenant-new', scope: 'dispatch:admin' }),
      body: { name: 'New' },
    });

    // Assess
    expect(res.status).toBe(404);
  });
});

describe('admin API: ids', () => {
  it('tells a superadmin why a tenant id is refused, and everyone else 404', async () => {
    // Act
    const asSuper = await send('PUT', '/v1/admin/tenants/Bad_Id', {
      token: tokens.super,
      body: { name: 'x' },
    });
    const asAdmin = await send('GET', '/v1/admin/tenants/Bad_Id', { token: tokens.adminA });

    // Assess
    expect(asSuper.status).toBe(422);
    expect(asSuper.json.errors).toEqual([{ path: 'tenantId', message: expect.any(String) }]);
    expect(asAdmin.status).toBe(404);
  });
});

describe('admin API: preconditions and versions', () => {
  it('answers 428 without a precondition, 412 on a stale one, 412 on create-only over an existing one', async () => {
    // Prepare
    await createTenant('pre-t');

    // Act
    const none = await send('PUT', '/v1/admin/tenants/pre-t', { token: tokens.super, body: { name: 'x' } });
    const stale = await send('PUT', '/v1/admin/tenants/pre-t', {
      token: tokens.super,
      headers: { 'if-match': '"7"' },
      body: { name: 'x' },
    });
    const weak = await send('PUT', '/v1/admin/tenants/pre-t', {
      token: tokens.super,
      headers: { 'if-match': 'W/"1"' },
      body: { name: 'x' },
    });
    const again = await send('PUT', '/v1/admin/tenants/pre-t', {
      token: tokens.super,
      headers: { 'if-none-match': '*' },
      body: { name: 'x' },
    });
    const staleDelete = await send('DELETE', '/v1/admin/tenants/pre-t', {
      token: tokens.super,
      headers: { 'if-match': '"2"' },
    });

    // Assess
    expect(none.status).toBe(428);
    expect(none.json.code).toBe('precondition_required');
    expect(stale.status).toBe(412);
    expect(stale.json.code).toBe('version_conflict');
    expect(weak.status).toBe(412);
    expect(again.status).toBe(412);
    expect(staleDelete.status).toBe(412);
    expect((await send('GET', '/v1/admin/tenants/pre-t', { token: tokens.super })).json.name).toBe(
      'Tenant pre-t',
    );
  });

  it('lets exactly one of two concurrent updates from the same version win', async () => {
    // Prepare
    await createTenant('race-t');
    await createUser('race-t', 'racer');
    const update = (name: string) =>
      send('PUT', '/v1/admin/tenants/race-t/users/racer', {
        token: tokens.super,
        headers: { 'if-match': '"1"' },
        body: { display_name: name },
      });

    // Act
    const results = await Promise.all([update('first'), update('second'), update('third')]);

    // Assess
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 412, 412]);
    const winner = results.find((r) => r.status === 200)!;
    const current = await send('GET', '/v1/admin/tenants/race-t/users/racer', { token: tokens.super });
    expect(current.json.display_name).toBe(winner.json.display_name);
    expect(current.headers.get('etag')).toBe('"2"');
  });
});

describe('admin API: users', () => {
  beforeAll(async () => {
    await createTenant('users-t', { mcp: { url: 'https://mcp.example.com/mcp', token: SECRET_TOKEN } });
    await createTenant('users-other');
  });

  it('round-trips a user with an own token for the tenant URL, then deletes it', async () => {
    // Act: create as the tenant's admin
    const adminToken = await jwks.mint({ sub: 'ua', tenant_id: 'users-t', scope: 'dispatch:admin' });
    const userPath = `/v1/admin/tenants/users-t/users/${encodeURIComponent('auth0|bob@example.com')}`;
    const created = await send('PUT', userPath, {
      token: adminToken,
      headers: { 'if-none-match': '*' },
      body: {
        display_name: 'Bob',
        phone_numbers: ['+14155550100'],
        mcp: {
          token: SECRET_TOKEN_2,
          headers: { 'X-Tenant-User': SECRET_HEADER },
          allowed_tools: ['search'],
        },
      },
    });

    // Assess
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({
      tenant_id: 'users-t',
      user_id: 'auth0|bob@example.com',
      display_name: 'Bob',
      phone_numbers: ['+14155550100'],
      status: 'active',
      version: 1,
      mcp: { url: null, token_set: true, header_names: ['X-Tenant-User'], allowed_tools: ['search'] },
    });

    // Assess: the effective config sends the user's token to the tenant URL
    const tenant = (await store.getTenant('users-t'))!;
    const user = (await store.getUser('users-t', 'auth0|bob@example.com'))!;
    const grant = await effectiveMcpConfig(tenant, user, createSecretBox(storageKeys));
    expect(grant).toEqual({
      name: 'mcp',
      url: 'https://mcp.example.com/mcp',
      transport: 'streamable_http',
      allowed_tools: ['search'],
      headers: { 'X-Tenant-User': SECRET_HEADER, Authorization: `Bearer ${SECRET_TOKEN_2}` },
    });

    // Act: read, update, delete
    const read = await send('GET', userPath, { token: adminToken });
    const updated = await send('PUT', userPath, {
      token: adminToken,
      headers: { 'if-match': read.headers.get('etag')! },
      body: { display_name: 'Robert', phone_numbers: [] },
    });
    const deleted = await send('DELETE', userPath, { token: adminToken, headers: { 'if-match': '"2"' } });
    const gone = await send('GET', userPath, { token: adminToken });

    // Assess
    expect(read.json).toEqual(created.json);
    expect(updated.status, updated.text).toBe(200);
    expect(updated.json).toMatchObject({ display_name: 'Robert', phone_numbers: [], mcp: null, version: 2 });
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
    expect(gone.json.code).toBe('user_not_found');
  });

  it('keeps the same user id in another tenant as another user (v3, docs/api.md §6)', async () => {
    // Prepare
    await createUser('users-t', 'carol');

    // Act
    const res = await send('PUT', '/v1/admin/tenants/users-other/users/carol', {
      token: tokens.super,
      headers: { 'if-none-match': '*' },
      body: { display_name: 'Other Carol' },
    });
    const read = await send('GET', '/v1/admin/tenants/users-other/users/carol', { token: tokens.super });
    const first = await send('GET', '/v1/admin/tenants/users-t/users/carol', { token: tokens.super });
    const deleted = await send('DELETE', '/v1/admin/tenants/users-other/users/carol', {
      token: tokens.super,
    });
    const still = await send('GET', '/v1/admin/tenants/users-t/users/carol', { token: tokens.super });

    // Assess
    expect(res.status, res.text).toBe(201);
    expect(read.json).toMatchObject({
      tenant_id: 'users-other',
      user_id: 'carol',
      display_name: 'Other Carol',
    });
    expect(first.json).toMatchObject({ tenant_id: 'users-t', user_id: 'carol' });
    expect(first.json.display_name).not.toBe('Other Carol');
    expect(deleted.status).toBe(204);
    expect(still.status).toBe(200);
  });

  it('keeps phone numbers unique within a tenant (409 phone_number_taken)', async () => {
    // Prepare
    await createUser('users-t', 'dave', { phone_numbers: ['+442071838750'] });

    // Act
    const res = await send('PUT', '/v1/admin/tenants/users-t/users/erin', {
      token: tokens.super,
      body: { phone_numbers: ['+442071838750'] },
    });
    // v3 (docs/api.md §6): another tenant's user may have the same number.
    const elsewhere = await send('PUT', '/v1/admin/tenants/users-other/users/erin', {
      token: tokens.super,
      body: { phone_numbers: ['+442071838750'] },
    });

    // Assess
    expect(res.status).toBe(409);
    expect(res.json.code).toBe('phone_number_taken');
    expect(elsewhere.status, elsewhere.text).toBe(201);
  });

  it('validates every field with 422 invalid_request naming the failing fields, never their values', async () => {
    // Act
    const res = await send('PUT', '/v1/admin/tenants/users-t/users/frank', {
      token: tokens.super,
      body: {
        display_name: 'x'.repeat(201),
        phone_numbers: ['0123'],
        mcp: {
          url: 'https://mcp.example.com/',
          headers: { Cookie: SECRET_HEADER, Host: 'evil' },
          token: `a b${SECRET_TOKEN}`,
        },
        surprise: true,
      },
    });

    // Assess
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('invalid_request');
    const paths = res.json.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['display_name', 'phone_numbers.0', 'mcp.token', '']));
    expect(res.text).not.toContain(SECRET_TOKEN);
  });

  it('refuses forbidden MCP header names', async () => {
    // Act
    const res = await send('PUT', '/v1/admin/tenants/users-t/users/frank', {
      token: tokens.super,
      body: {
        mcp: {
          url: 'https://mcp.example.com/',
          headers: { Cookie: SECRET_HEADER, 'Proxy-Authorization': 'x' },
        },
      },
    });

    // Assess
    expect(res.status).toBe(422);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual([
      'mcp.headers.Cookie',
      'mcp.headers.Proxy-Authorization',
    ]);
  });

  it('refuses unsafe MCP URLs with 400 unsafe_mcp_url', async () => {
    for (const url of [
      'http://mcp.example.com/',
      'https://internal.example.com/',
      'https://169.254.169.254/',
      'https://[::ffff:10.0.0.1]/',
      'https://0x7f000001/',
      'https://u:p@mcp.example.com/',
      'https://mcp.example.com:9000/',
    ]) {
      // Act
      const res = await send('PUT', '/v1/admin/tenants/users-t/users/gina', {
        token: tokens.super,
        body: { mcp: { url } },
      });

      // Assess
      expect(res.status, url).toBe(400);
      expect(res.json.code).toBe('unsafe_mcp_url');
    }
  });

  it('does not let a kept token follow a URL to another origin', async () => {
    // Prepare
    await createUser('users-t', 'hank', { mcp: { url: 'https://mcp.example.com/a', token: SECRET_TOKEN } });

    // Act
    const moved = await send('PUT', '/v1/admin/tenants/users-t/users/hank', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: { mcp: { url: 'https://other.example.com/a' } },
    });
    const samePlace = await send('PUT', '/v1/admin/tenants/users-t/users/hank', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: { mcp: { url: 'https://mcp.example.com/b' } },
    });

    // Assess
    expect(moved.status).toBe(422);
    expect(moved.json.errors).toEqual([
      { path: 'mcp.token', message: expect.stringContaining('another origin') },
    ]);
    expect(samePlace.status).toBe(200);
    expect(samePlace.json.mcp.token_set).toBe(true);
  });

  it('pages through 120 users with opaque cursors bound to the tenant', async () => {
    // Prepare
    await createTenant('page-t');
    await createTenant('page-u');
    for (let i = 0; i < 120; i++) {
      await store.createUser({
        tenant_id: 'page-t',
        user_id: `pager-${String(i).padStart(3, '0')}`,
        phone_numbers: [],
        status: 'active',
        version: 1,
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      });
    }

    // Act
    const seen: string[] = [];
    const cursors: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? '?limit=50' : `?limit=50&cursor=${encodeURIComponent(cursor)}`;
      const page = await send('GET', `/v1/admin/tenants/page-t/users${q}`, { token: tokens.super });
      expect(page.status, page.text).toBe(200);
      seen.push(...page.json.items.map((u: { user_id: string }) => u.user_id));
      cursor = page.json.next_cursor;
      if (cursor !== null) cursors.push(cursor);
    } while (cursor !== null);
    const foreign = await send('GET', `/v1/admin/tenants/page-u/users?cursor=${cursors[0]}`, {
      token: tokens.super,
    });
    const otherList = await send('GET', `/v1/admin/tenants/page-t/audit?cursor=${cursors[0]}`, {
      token: tokens.super,
    });
    const tooMany = await send('GET', '/v1/admin/tenants/page-t/users?limit=101', { token: tokens.super });
    const forged = await send('GET', '/v1/admin/tenants/page-t/users?cursor=eyJwayI6IlVTRVIjeCJ9', {
      token: tokens.super,
    });

    // Assess
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect(cursors.length).toBe(2);
    for (const c of cursors) expect(c).not.toMatch(/pager|USER|gsi/);
    expect(foreign.status).toBe(422);
    expect(foreign.json.errors[0].path).toBe('query.cursor');
    expect(otherList.status).toBe(422);
    expect(tooMany.status).toBe(422);
    expect(forged.status).toBe(422);
  });
});

describe('admin API: authorisation', () => {
  beforeAll(async () => {
    await createTenant(tenantB, { mcp: { url: 'https://mcp.example.com/b', token: SECRET_TOKEN } });
    await createUser(tenantB, 'bob-b');
  });

  it('answers 401 without or with a bad token', async () => {
    // Act
    const none = await send('GET', `/v1/admin/tenants/${tenantB}`);
    const bad = await send('GET', `/v1/admin/tenants/${tenantB}`, { token: 'not.a.jwt' });
    const foreign = await send('GET', `/v1/admin/tenants/${tenantB}`, {
      token: await jwks.mint({ sub: 'x', scope: 'dispatch:superadmin' }, { signWithForeignKey: true }),
    });

    // Assess
    for (const res of [none, bad, foreign]) {
      expect(res.status).toBe(401);
      expect(res.json.code).toBe('unauthenticated');
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
  });

  it('answers 403 to a token without the admin scope or without a tenant', async () => {
    // Act
    const user = await send('GET', `/v1/admin/tenants/${tenantA}`, { token: tokens.userA });
    const stray = await send('GET', `/v1/admin/tenants/${tenantA}`, { token: tokens.noTenantAdmin });
    const userWrite = await send('PUT', `/v1/admin/tenants/${tenantA}/users/alice`, {
      token: tokens.userA,
      body: { status: 'active' },
    });

    // Assess
    expect(user.status).toBe(403);
    expect(stray.status).toBe(403);
    expect(userWrite.status).toBe(403);
  });

  it('answers 404 to a tenant-A admin on every tenant-B route and writes nothing', async () => {
    // Prepare
    livekit.addRoom('lk-mcp-tenant-b-room');
    await store.putSession(session(tenantB, 'bob-b', 'lk-mcp-tenant-b-room'));
    const before = JSON.stringify(await db.scan());
    const t = `/v1/admin/tenants/${tenantB}`;
    const routes: [string, string, unknown?][] = [
      ['GET', t],
      ['PUT', t, { name: 'pwned' }],
      ['DELETE', t],
      ['DELETE', `${t}?cascade=true`],
      ['GET', `${t}/users`],
      ['GET', `${t}/users/bob-b`],
      ['PUT', `${t}/users/bob-b`, { display_name: 'pwned' }],
      ['PUT', `${t}/users/new-user`, { display_name: 'pwned' }],
      ['DELETE', `${t}/users/bob-b`],
      ['POST', `${t}/users/bob-b/revoke`],
      ['GET', `${t}/audit`],
      ['GET', `${t}/sessions`],
    ];
    const missing = await send('GET', '/v1/admin/tenants/no-such-tenant', { token: tokens.super });

    for (const [method, path, body] of routes) {
      for (const headers of [{}, { 'if-match': '"1"' }, { 'if-none-match': '*' }] as Record<
        string,
        string
      >[]) {
        // Act
        const res = await send(method, path, { token: tokens.adminA, headers, ...(body ? { body } : {}) });

        // Assess
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.json.code).toBe('tenant_not_found');
        expect(res.json.detail).toBe(missing.json.detail);
      }
    }
    expect(JSON.stringify(await db.scan())).toBe(before);
    expect(livekit.rooms).toContain('lk-mcp-tenant-b-room');
  });

  it('does not reveal a tenant-B user through tenant A paths', async () => {
    // Act
    const res = await send('GET', `/v1/admin/tenants/${tenantA}/users/bob-b`, { token: tokens.adminA });
    const revoke = await send('POST', `/v1/admin/tenants/${tenantA}/users/bob-b/revoke`, {
      token: tokens.adminA,
    });

    // Assess
    expect(res.status).toBe(404);
    expect(res.json.code).toBe('user_not_found');
    expect(revoke.status).toBe(404);
    expect((await store.getUser(tenantB, 'bob-b'))?.status).toBe('active');
  });
});

describe('admin API: revoke, suspension, sessions, audit', () => {
  beforeEach(() => {
    livekit.reset();
  });

  it("revoke deletes the user's live rooms at LiveKit, ends the sessions and suspends the user", async () => {
    // Prepare
    await createTenant('rev-t');
    await createUser('rev-t', 'ivan');
    await createUser('rev-t', 'judy');
    for (const room of ['lk-mcp-rev-t-1', 'lk-mcp-rev-t-2', 'lk-mcp-rev-t-3']) livekit.addRoom(room);
    await liveSession(session('rev-t', 'ivan', 'lk-mcp-rev-t-1'));
    await liveSession(session('rev-t', 'ivan', 'lk-mcp-rev-t-2'));
    await liveSession(session('rev-t', 'judy', 'lk-mcp-rev-t-3'));
    const admin = await jwks.mint({ sub: 'rev-admin', tenant_id: 'rev-t', scope: 'dispatch:admin' });

    // Act
    const res = await send('POST', '/v1/admin/tenants/rev-t/users/ivan/revoke', { token: admin });

    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ status: 'suspended', ended_sessions: 2, version: 2 });
    expect(livekit.rooms.sort()).toEqual(['lk-mcp-rev-t-3']);
    expect(livekit.calls.filter((c) => c.rpc === 'RoomService/DeleteRoom').every((c) => c.authOk)).toBe(true);
    expect(await store.activeSessionsOfUser('rev-t', 'ivan')).toEqual([]);
    expect((await store.getUser('rev-t', 'ivan'))?.status).toBe('suspended');
    const sessions = await send('GET', '/v1/admin/tenants/rev-t/sessions', { token: admin });
    const byRoom = Object.fromEntries(
      sessions.json.items.map((s: { room_name: string; status: string }) => [s.room_name, s]),
    );
    expect(byRoom['lk-mcp-rev-t-1']).toMatchObject({ status: 'ended', duration_seconds: expect.any(Number) });
    expect(byRoom['lk-mcp-rev-t-3']).toMatchObject({ status: 'active', ended_at: null });

    // Act + Assess: the session API now refuses the user
    const sessionApp = createSessionApp({
      store,
      livekit: createLiveKitGateway({ httpUrl: livekit.url, ...LK }),
      sealer: createDispatchSealer(
        parseKeyring('DISPATCH_KEYS', {
          current: 'd1',
          keys: { d1: Buffer.alloc(32, 9).toString('base64url') },
        }).keyring!,
      ),
      secretBox: createSecretBox(storageKeys),
      verifier: verifierOf(jwks),
      config: {
        defaultAgentName: 'mcp-agent',
        sessionDispatchMode: 'api',
        sessionTokenTtlSeconds: 900,
        sessionRateLimitPerMinute: 10,
        metadataTtlSeconds: 7200,
        webhookRoomPrefix: 'lk-mcp-',
        corsOrigins: [],
        livekit: { wsUrl: 'ws://127.0.0.1:7880' },
      },
    });
    const newSession = await sessionApp.request('/v1/sessions', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await jwks.mint({ sub: 'ivan', tenant_id: 'rev-t' })}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(newSession.status).toBe(403);
    expect(((await newSession.json()) as { code: string }).code).toBe('user_suspended');

    // Act: a later PUT that omits status keeps the suspension
    const edited = await send('PUT', '/v1/admin/tenants/rev-t/users/ivan', {
      token: admin,
      headers: { 'if-match': '"2"' },
      body: { display_name: 'Ivan' },
    });
    expect(edited.json.status).toBe('suspended');
  });

  it("frees the tenant's quota lease of a revoked session", async () => {
    // Prepare
    await createTenant('lease-t', { max_concurrent_sessions: 1 });
    await createUser('lease-t', 'olga');
    const holder = holderOf('lk-mcp-lease-t-1', 'mcp-agent', 'olga');
    const slot = await store.acquireLease('lease-t', 1, holder, 600);
    expect(slot).toBe(0);
    await liveSession({ ...session('lease-t', 'olga', 'lk-mcp-lease-t-1'), lease_slot: 0 });

    // Act
    const res = await send('POST', '/v1/admin/tenants/lease-t/users/olga/revoke', { token: tokens.super });

    // Assess
    expect(res.json.ended_sessions).toBe(1);
    expect(await store.acquireLease('lease-t', 1, 'next-holder', 600)).toBe(0);
  });

  it('suspending a tenant deletes the rooms of all its active sessions', async () => {
    // Prepare
    await createTenant('susp-t');
    await createUser('susp-t', 'kim');
    livekit.addRoom('lk-mcp-susp-t-1');
    await liveSession(session('susp-t', 'kim', 'lk-mcp-susp-t-1'));

    // Act
    const res = await send('PUT', '/v1/admin/tenants/susp-t', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: { name: 'Suspended', status: 'suspended' },
    });

    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ status: 'suspended', ended_sessions: 1 });
    expect(livekit.rooms).toEqual([]);
    expect(await store.activeSessionsOfTenant('susp-t')).toEqual([]);
  });

  it('finishes a suspension whose LiveKit step failed when the write is repeated', async () => {
    // Prepare
    await createTenant('flaky-t');
    await createUser('flaky-t', 'nina');
    livekit.addRoom('lk-mcp-flaky-t-1');
    await liveSession(session('flaky-t', 'nina', 'lk-mcp-flaky-t-1'));
    livekit.failNext(1, '503');
    const suspend = (version: number) =>
      send('PUT', '/v1/admin/tenants/flaky-t/users/nina', {
        token: tokens.super,
        headers: { 'if-match': `"${version}"` },
        body: { status: 'suspended' },
      });

    // Act
    const failed = await suspend(1);
    const repeated = await suspend(2);

    // Assess
    expect(failed.status).toBe(502);
    expect(failed.json.code).toBe('livekit_unavailable');
    expect(repeated.status, repeated.text).toBe(200);
    expect(repeated.json.ended_sessions).toBe(1);
    expect(livekit.rooms).toEqual([]);
  });

  it('records an audit entry per write, newest first, with fingerprints but no secret values', async () => {
    // Prepare
    await createTenant('audit-t');
    await createUser('audit-t', 'leo', { mcp: { url: 'https://mcp.example.com/', token: SECRET_TOKEN } });
    await send('PUT', '/v1/admin/tenants/audit-t/users/leo', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: { mcp: { url: 'https://mcp.example.com/', token: SECRET_TOKEN_2 } },
    });
    await send('POST', '/v1/admin/tenants/audit-t/users/leo/revoke', { token: tokens.super });

    // Act
    const res = await send('GET', '/v1/admin/tenants/audit-t/audit', { token: tokens.super });

    // Assess
    expect(res.status).toBe(200);
    const items = res.json.items as { target: string; action: string; version: number }[];
    expect(items.map((i) => [i.target, i.action, i.version])).toEqual([
      ['tenants/audit-t/users/leo', 'revoke', 3],
      ['tenants/audit-t/users/leo', 'update', 2],
      ['tenants/audit-t/users/leo', 'create', 1],
      ['tenants/audit-t', 'create', 1],
    ]);
    const update = res.json.items[1];
    expect(update).toMatchObject({ actor: 'operator', changed_fields: ['mcp.token'] });
    expect(update.old_token_fingerprint).toMatch(/^fp_/);
    expect(update.new_token_fingerprint).toMatch(/^fp_/);
    expect(update.old_token_fingerprint).not.toBe(update.new_token_fingerprint);
    expect(res.json.items[0]).toMatchObject({ changed_fields: ['status'] });
  });

  it('repairs an audit gap left by a write whose audit step was lost', async () => {
    // Prepare: a user written straight to the store, as if the audit step had failed
    await createTenant('gap-t');
    const now = new Date(Date.now() - 10 * 60_000).toISOString();
    await store.createUser({
      tenant_id: 'gap-t',
      user_id: 'gap-user',
      phone_numbers: [],
      status: 'active',
      version: 1,
      created_at: now,
      updated_at: now,
    });

    // Act
    const res = await send('PUT', '/v1/admin/tenants/gap-t/users/gap-user', {
      token: tokens.super,
      headers: { 'if-match': '"1"' },
      body: { display_name: 'Gap' },
    });
    const audit = await send('GET', '/v1/admin/tenants/gap-t/audit', { token: tokens.super });

    // Assess
    expect(res.status).toBe(200);
    const userEntries = audit.json.items.filter((a: { target: string }) => a.target.includes('gap-user'));
    expect(userEntries.map((a: { version: number; actor: string }) => [a.version, a.actor])).toEqual([
      [2, 'operator'],
      [1, 'unknown'],
    ]);
    expect(logLines.some((l) => l.includes('audit gap repaired'))).toBe(true);
  });

  it('deletes a tenant with users only with ?cascade=true, in resumable pages', async () => {
    // Prepare
    await createTenant('casc-t');
    for (const id of ['m1', 'm2', 'm3'])
      await createUser('casc-t', `casc-${id}`, { phone_numbers: [`+1415555020${id[1]}`] });
    livekit.addRoom('lk-mcp-casc-t-1');
    await liveSession(session('casc-t', 'casc-m1', 'lk-mcp-casc-t-1'));

    // Act
    const refused = await send('DELETE', '/v1/admin/tenants/casc-t', { token: tokens.super });
    const roomsAfterRefusal = livekit.rooms;
    const cascaded = await send('DELETE', '/v1/admin/tenants/casc-t?cascade=true', { token: tokens.super });

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe('tenant_has_users');
    expect(roomsAfterRefusal).toEqual(['lk-mcp-casc-t-1']);
    expect(cascaded.status, cascaded.text).toBe(204);
    expect(await store.getTenant('casc-t')).toBeUndefined();
    expect(await store.getUser('casc-t', 'casc-m2')).toBeUndefined();
    expect(await store.userByPhoneNumber('casc-t', '+14155550202')).toBeUndefined();
    expect(livekit.rooms).toEqual([]);
    const audit = await store.listAudit('casc-t', { limit: 100 });
    expect(audit.items.filter((a) => a.action === 'delete')).toHaveLength(4);
  });

  it('answers 202 when the cascade budget runs out, and a repeat finishes it', async () => {
    // Prepare
    const slow = createAdminApp(
      adminDeps({
        config: { mcpAllowedPorts: [], allowInsecureMcpUrls: false, storageKeys },
        cascadeBudgetMs: 0,
      }),
    );
    await createTenant('casc-slow');
    for (let i = 0; i < 30; i++) await createUser('casc-slow', `slow-${i}`);
    const del = () =>
      slow.request('/v1/admin/tenants/casc-slow?cascade=true', {
        method: 'DELETE',
        headers: { authorization: `Bearer ${tokens.super}` },
      });

    // Act
    const first = await del();
    const statuses = [first.status];
    for (let i = 0; i < 5 && statuses.at(-1) === 202; i++) statuses.push((await del()).status);

    // Assess
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ status: 'in_progress', deleted_users: 25 });
    expect(statuses.at(-1)).toBe(204);
    expect(await store.getTenant('casc-slow')).toBeUndefined();
    expect(await store.hasUsers('casc-slow')).toBe(false);
  });
});

describe('admin API: request limits', () => {
  it('refuses a body over 64 KiB with 413 payload_too_large, and bad JSON with 422', async () => {
    // Act
    const big = await send('PUT', `/v1/admin/tenants/${tenantA}`, {
      token: tokens.super,
      rawBody: JSON.stringify({ name: 'x'.repeat(70 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    const badJson = await send('PUT', `/v1/admin/tenants/${tenantA}`, {
      token: tokens.super,
      rawBody: '{"name":',
      headers: { 'content-type': 'application/json', 'if-match': '"1"' },
    });

    // Assess
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('payload_too_large');
    expect(badJson.status).toBe(422);
    expect(badJson.json.code).toBe('invalid_request');
  });

  it('refuses a chunked body over 64 KiB', async () => {
    // Prepare
    const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 6; i++) controller.enqueue(chunk);
        controller.close();
      },
    });

    // Act
    const res = await app.request(`/v1/admin/tenants/${tenantA}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.super}`, 'transfer-encoding': 'chunked' },
      body: stream,
      duplex: 'half',
    } as RequestInit);

    // Assess
    expect(res.status).toBe(413);
  });
});
