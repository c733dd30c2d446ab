import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { type DispatchGrant, openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { key } from '../../functions/adapters/schema.js';
import { createAdminApp } from '../../functions/admin/app.js';
import type { ConnectionRecord } from '../../functions/core/model.js';
import type { HostResolver } from '../../functions/core/url-guard.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { createSessionApp, type SessionAppDeps } from '../../functions/session/app.js';
import { createWebhookApp } from '../../functions/webhook/app.js';
import {
  type Harness,
  participantJoined,
  signWebhookBody,
  startHarness,
  TEST_LIVEKIT,
  uid,
} from '../support/fixtures.js';
import { verifierOf } from '../support/jwks-server.js';

// Plaintext secrets the tests write; none may show up in the table, a response or an audit entry.
const STATIC_TOKEN = 'cat-static-SECRET-a41f9d';
const STATIC_TOKEN_2 = 'cat-static-SECRET-2-7c2e0b';
const HEADER_VALUE = 'cat-header-SECRET-19be77';
const CLIENT_SECRET = 'cat-client-SECRET-e0d3aa';
const MCP_TOKEN = 'cat-mcp-SECRET-5b6c1f';
const USER_TOKEN = 'cat-user-SECRET-88a0c4';
const ACCESS_TOKEN = 'cat-access-SECRET-3d9e21';
const SECRETS = [
  STATIC_TOKEN,
  STATIC_TOKEN_2,
  HEADER_VALUE,
  CLIENT_SECRET,
  MCP_TOKEN,
  USER_TOKEN,
  ACCESS_TOKEN,
];

const resolveHost: HostResolver = async (host) => {
  const table: Record<string, string> = {
    'mcp.example.com': '93.184.215.14',
    'docs.example.com': '93.184.215.21',
    'crm.example.com': '93.184.215.22',
    'wiki.example.com': '93.184.215.23',
    'moved.example.com': '93.184.215.24',
    'as.example.com': '93.184.215.30',
    'intranet.example.com': '10.0.0.9',
  };
  const address = table[host];
  if (address === undefined) throw new Error('ENOTFOUND');
  return [{ address, family: 4 }];
};

let h: Harness;
let admin: ReturnType<typeof createAdminApp>;
let superToken: string;
const responses: string[] = [];

const SESSION_CONFIG: SessionAppDeps['config'] = {
  defaultAgentName: 'mcp-agent',
  sessionDispatchMode: 'api',
  sessionTokenTtlSeconds: 900,
  sessionRateLimitPerMinute: 100,
  metadataTtlSeconds: 7200,
  webhookRoomPrefix: 'lk-mcp-',
  corsOrigins: [],
  livekit: { wsUrl: 'wss://livekit.example.test' },
};

function sessionApp(mode: 'api' | 'token' = 'api') {
  return createSessionApp({
    store: h.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    connectionReader: new DynamoStore({ client: h.db.client, tableName: h.db.tableName }).connections,
    verifier: verifierOf(h.jwks),
    config: { ...SESSION_CONFIG, sessionDispatchMode: mode },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Json = any;

async function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Json; text: string }> {
  const res = await admin.request(path, {
    method,
    headers: {
      authorization: `Bearer ${superToken}`,
      'content-type': 'application/json',
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

const putTenant = (id: string, body: Record<string, unknown>, version?: number) =>
  call('PUT', `/v1/admin/tenants/${id}`, {
    body: { name: `Tenant ${id}`, ...body },
    headers: version === undefined ? { 'if-none-match': '*' } : { 'if-match': `"${version}"` },
  });

async function createUser(tenantId: string, userId: string, body: Record<string, unknown> = {}) {
  const res = await call('PUT', `/v1/admin/tenants/${tenantId}/users/${userId}`, {
    body,
    headers: { 'if-none-match': '*' },
  });
  expect(res.status, res.text).toBe(201);
}

/** Stores a connection item as the connections store keys it (`CONN#<tenant>#<user>`, `SERVER#<server>`). */
async function putConnection(
  c: Partial<ConnectionRecord> &
    Pick<ConnectionRecord, 'tenant_id' | 'user_id' | 'server' | 'auth' | 'resource'>,
  token?: string,
) {
  const record: ConnectionRecord = {
    status: 'connected',
    rt_version: 0,
    version: 1,
    updated_at: new Date().toISOString(),
    ...c,
  };
  if (token !== undefined) {
    record.token_sealed = await h.secretBox.seal(token, {
      tenantId: c.tenant_id,
      userId: c.user_id,
      field: `conn:${c.server}:token`,
    });
  }
  await h.db.client.send(
    new PutCommand({
      TableName: h.db.tableName,
      Item: { pk: key('CONN', c.tenant_id, c.user_id), sk: key('SERVER', c.server), ...record },
    }),
  );
}

async function startSession(tenantId: string, userId: string, app = sessionApp()) {
  const token = await h.jwks.mint({ sub: userId, tenant_id: tenantId });
  const res = await app.request('/v1/sessions', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{}',
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, json: JSON.parse(text) as Json };
}

async function sealedOf(metadata: string, room: string): Promise<DispatchGrant> {
  return openDispatchMetadata(metadata, { keyring: h.dispatchKeys, agentName: 'mcp-agent', roomName: room });
}

const lastDispatch = () => {
  const calls = h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch');
  return calls.at(-1)?.body as { room: string; metadata: string };
};

beforeAll(async () => {
  h = await startHarness();
  admin = createAdminApp({
    store: h.store,
    secretBox: h.secretBox,
    verifier: verifierOf(h.jwks),
    livekit: h.gateway,
    config: { mcpAllowedPorts: [], allowInsecureMcpUrls: false, storageKeys: h.storageKeys },
    resolveHost,
    openApiDocument: sourceOpenApiDocument,
  });
  superToken = await h.jwks.mint({ sub: 'operator', scope: 'dispatch:superadmin' });
});

afterAll(async () => {
  // Assess (whole file): no plaintext secret was stored or answered.
  const table = JSON.stringify(await h.db.scan());
  for (const secret of SECRETS) {
    expect(table).not.toContain(secret);
    expect(responses.join('\n')).not.toContain(secret);
  }
  await h.stop();
});

beforeEach(() => h.livekitServer.reset());

const CATALOG = [
  {
    name: 'docs',
    display_name: 'Docs',
    description: 'Product documentation',
    icon_url: 'https://cdn.example.com/docs.png',
    url: 'https://docs.example.com/mcp',
    headers: { 'X-Api-Key': HEADER_VALUE },
    auth: { type: 'static', token: STATIC_TOKEN },
  },
  { name: 'wiki', url: 'https://wiki.example.com/mcp', transport: 'sse', auth: { type: 'none' } },
  {
    name: 'crm',
    url: 'https://crm.example.com/mcp',
    allowed_tools: ['search'],
    auth: {
      type: 'oauth',
      client_id: 'lk-client',
      issuer: 'https://as.example.com',
      client_secret: CLIENT_SECRET,
      scopes: ['crm.read'],
    },
  },
  { name: 'notes', url: 'https://mcp.example.com/notes', webhook: true, auth: { type: 'user_token' } },
];

describe('admin API: the tenant catalog (docs/api.md §6)', () => {
  it('stores the catalog write-only: views show what is set, never a value, and omitted secrets stay', async () => {
    // Prepare + Act
    const id = uid('cat-');
    const created = await putTenant(id, {
      mcp_servers: CATALOG,
      oauth_return_urls: ['https://app.example.com/oauth', 'com.example.app:/oauth'],
    });

    // Assess
    expect(created.status, created.text).toBe(201);
    expect(created.json.oauth_return_urls).toEqual([
      'https://app.example.com/oauth',
      'com.example.app:/oauth',
    ]);
    const [docs, wiki, crm, notes] = created.json.mcp_servers;
    expect(docs).toEqual({
      name: 'docs',
      display_name: 'Docs',
      description: 'Product documentation',
      icon_url: 'https://cdn.example.com/docs.png',
      url: 'https://docs.example.com/mcp',
      transport: null,
      allowed_tools: null,
      header_names: ['X-Api-Key'],
      webhook: false,
      auth: {
        type: 'static',
        token_set: true,
        token_fingerprint: expect.stringMatching(/^fp_[0-9a-f]{16}$/),
      },
    });
    expect(wiki).toMatchObject({ transport: 'sse', auth: { type: 'none' } });
    expect(crm.auth).toEqual({
      type: 'oauth',
      client_id: 'lk-client',
      issuer: 'https://as.example.com',
      client_secret_set: true,
      scopes: ['crm.read'],
    });
    expect(notes).toMatchObject({ webhook: true, auth: { type: 'user_token' } });

    // Act: the same entries without their secrets keep them
    const stripped = CATALOG.map((e) => {
      const { headers: _h, ...rest } = e;
      const { token: _t, client_secret: _c, ...auth } = rest.auth as Record<string, unknown>;
      return { ...rest, auth };
    });
    const kept = await putTenant(id, { mcp_servers: stripped }, 1);
    expect(kept.status, kept.text).toBe(200);
    expect(kept.json.mcp_servers[0]).toMatchObject({ header_names: ['X-Api-Key'], auth: docs.auth });
    expect(kept.json.mcp_servers[2].auth.client_secret_set).toBe(true);
    expect(kept.json.oauth_return_urls).toEqual([]);

    // Act: the url moves, no new token: the static token and headers are cleared
    const moved = stripped.map((e) =>
      e.name === 'docs' ? { ...e, url: 'https://moved.example.com/mcp' } : e,
    );
    const afterMove = await putTenant(id, { mcp_servers: moved }, 2);
    expect(afterMove.status, afterMove.text).toBe(200);
    expect(afterMove.json.mcp_servers[0]).toMatchObject({
      header_names: [],
      auth: { type: 'static', token_set: false, token_fingerprint: null },
    });

    // Act: a new token for the new url, and null clears the client secret
    const again = moved.map((e) =>
      e.name === 'docs'
        ? { ...e, auth: { type: 'static', token: STATIC_TOKEN_2 } }
        : e.name === 'crm'
          ? { ...e, auth: { ...e.auth, client_secret: null } }
          : e,
    );
    const resent = await putTenant(id, { mcp_servers: again }, 3);
    expect(resent.status, resent.text).toBe(200);
    expect(resent.json.mcp_servers[0].auth.token_set).toBe(true);
    expect(resent.json.mcp_servers[0].auth.token_fingerprint).not.toBe(docs.auth.token_fingerprint);
    expect(resent.json.mcp_servers[2].auth.client_secret_set).toBe(false);

    // Assess: the audit names what changed, never a value
    const audit = await call('GET', `/v1/admin/tenants/${id}/audit`);
    expect(audit.status).toBe(200);
    const changes = audit.json.items.map((a: { version: number; changed_fields: string[] }) => [
      a.version,
      a.changed_fields,
    ]);
    expect(changes).toEqual(
      expect.arrayContaining([
        [1, expect.arrayContaining(['mcp_servers.docs', 'mcp_servers.crm', 'oauth_return_urls'])],
        [2, ['oauth_return_urls']],
        [3, ['mcp_servers.docs.url', 'mcp_servers.docs.auth.token', 'mcp_servers.docs.headers']],
        [4, ['mcp_servers.docs.auth.token', 'mcp_servers.crm.auth.client_secret']],
      ]),
    );
    expect(audit.text).not.toContain('SECRET');
  });

  it.each([
    [
      'a name taken by mcp',
      [{ name: 'mcp', url: 'https://docs.example.com/', auth: { type: 'none' } }],
      'mcp_servers.0.name',
    ],
    [
      'a name given twice',
      [
        { name: 'a', url: 'https://docs.example.com/', auth: { type: 'none' } },
        { name: 'a', url: 'https://wiki.example.com/', auth: { type: 'none' } },
      ],
      'mcp_servers.1.name',
    ],
    [
      'a client_id without issuer',
      [{ name: 'a', url: 'https://docs.example.com/', auth: { type: 'oauth', client_id: 'x' } }],
      'mcp_servers.0.auth.issuer',
    ],
  ])('422 invalid_request for %s, nothing written', async (_what, servers, path) => {
    const id = uid('cat-');
    const before = await h.db.scan();
    const res = await putTenant(id, { mcp_servers: servers });
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('invalid_request');
    expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    expect(await h.db.scan()).toEqual(before);
  });

  it('400 unsafe_mcp_url for a catalog url, 400 unsafe_oauth_url for an issuer, 422 for a return URL', async () => {
    const id = uid('cat-');
    const before = await h.db.scan();
    const badUrl = await putTenant(id, {
      mcp_servers: [{ name: 'a', url: 'https://intranet.example.com/mcp', auth: { type: 'none' } }],
    });
    const badIssuer = await putTenant(id, {
      mcp_servers: [
        {
          name: 'a',
          url: 'https://docs.example.com/mcp',
          auth: { type: 'oauth', client_id: 'x', issuer: 'http://as.example.com' },
        },
      ],
    });
    const badReturn = await putTenant(id, { oauth_return_urls: ['http://app.example.com/cb'] });
    expect([badUrl.status, badUrl.json.code]).toEqual([400, 'unsafe_mcp_url']);
    expect([badIssuer.status, badIssuer.json.code]).toEqual([400, 'unsafe_oauth_url']);
    expect([badReturn.status, badReturn.json.code]).toEqual([422, 'invalid_request']);
    expect(await h.db.scan()).toEqual(before);
  });
});

describe('POST /v1/sessions with a catalog (docs/api.md §4, §8)', () => {
  it('lists every server with its status and dispatches only the ready ones, each with its credential', async () => {
    // Prepare: mcp (static), the catalog of five auth kinds, and the user's connections
    const id = uid('cat-');
    const now = Math.floor(Date.now() / 1000);
    const res = await putTenant(id, {
      mcp: { url: 'https://mcp.example.com/mcp', token: MCP_TOKEN },
      mcp_servers: [
        ...CATALOG,
        { name: 'expired', url: 'https://crm.example.com/expired', auth: { type: 'oauth' } },
        { name: 'moved', url: 'https://moved.example.com/mcp', auth: { type: 'oauth' } },
        { name: 'mine', url: 'https://wiki.example.com/mine', auth: { type: 'user_token' } },
      ],
    });
    expect(res.status, res.text).toBe(201);
    await createUser(id, 'alice');
    const conn = { tenant_id: id, user_id: 'alice' } as const;
    await putConnection(
      {
        ...conn,
        server: 'crm',
        auth: 'oauth',
        resource: 'https://crm.example.com/mcp',
        access_expires_at: now + 3600,
      },
      ACCESS_TOKEN,
    );
    await putConnection(
      {
        ...conn,
        server: 'expired',
        auth: 'oauth',
        resource: 'https://crm.example.com/expired',
        access_expires_at: now - 10,
      },
      ACCESS_TOKEN,
    );
    await putConnection(
      { ...conn, server: 'moved', auth: 'oauth', resource: 'https://moved.example.com/old' },
      ACCESS_TOKEN,
    );
    await putConnection(
      { ...conn, server: 'notes', auth: 'user_token', resource: 'https://mcp.example.com/notes' },
      USER_TOKEN,
    );
    // Another user's connection to `mine` is not alice's.
    await putConnection(
      {
        tenant_id: id,
        user_id: 'bob',
        server: 'mine',
        auth: 'user_token',
        resource: 'https://wiki.example.com/mine',
      },
      USER_TOKEN,
    );

    // Act
    const started = await startSession(id, 'alice');

    // Assess: the statuses
    expect(started.status, JSON.stringify(started.json)).toBe(201);
    expect(started.json.mcp_servers).toEqual([
      { name: 'mcp', status: 'ready' },
      { name: 'docs', status: 'ready' },
      { name: 'wiki', status: 'ready' },
      { name: 'crm', status: 'ready' },
      { name: 'notes', status: 'ready' },
      { name: 'expired', status: 'needs_reauth', reason: 'expired' },
      { name: 'moved', status: 'needs_reauth', reason: 'resource_changed' },
      { name: 'mine', status: 'not_connected' },
    ]);
    // Assess: the sealed grants
    const dispatched = lastDispatch();
    const grant = await sealedOf(dispatched.metadata, started.json.room_name);
    const byName = Object.fromEntries(grant.mcpServers.map((s) => [s.name, s]));
    expect(Object.keys(byName)).toEqual(['mcp', 'docs', 'wiki', 'crm', 'notes']);
    expect(byName.mcp).toMatchObject({ auth: 'static', headers: { Authorization: `Bearer ${MCP_TOKEN}` } });
    expect(byName.docs).toMatchObject({
      auth: 'static',
      headers: { Authorization: `Bearer ${STATIC_TOKEN}`, 'X-Api-Key': HEADER_VALUE },
    });
    expect(byName.wiki).toEqual({
      name: 'wiki',
      url: 'https://wiki.example.com/mcp',
      transport: 'sse',
      auth: 'none',
      headers: {},
    });
    expect(byName.crm).toMatchObject({
      auth: 'oauth',
      expires_at: now + 3600,
      allowed_tools: ['search'],
      headers: { Authorization: `Bearer ${ACCESS_TOKEN}` },
    });
    expect(byName.notes).toMatchObject({
      auth: 'user_token',
      headers: { Authorization: `Bearer ${USER_TOKEN}` },
    });
  });

  it('409 mcp_reauth_required with every status when none is ready; 409 mcp_not_configured with none at all', async () => {
    // Prepare
    const id = uid('cat-');
    await putTenant(id, {
      mcp_servers: [
        { name: 'crm', url: 'https://crm.example.com/mcp', auth: { type: 'oauth' } },
        { name: 'notes', url: 'https://mcp.example.com/notes', auth: { type: 'user_token' } },
      ],
    });
    await createUser(id, 'carol');
    await putConnection({
      tenant_id: id,
      user_id: 'carol',
      server: 'crm',
      auth: 'oauth',
      resource: 'https://crm.example.com/mcp',
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
    const empty = uid('cat-');
    await putTenant(empty, {});
    await createUser(empty, 'dave');

    // Act
    const refused = await startSession(id, 'carol');
    const none = await startSession(empty, 'dave');

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe('mcp_reauth_required');
    expect(refused.json.mcp_servers).toEqual([
      { name: 'crm', status: 'needs_reauth', reason: 'invalid_grant' },
      { name: 'notes', status: 'not_connected' },
    ]);
    expect(none.status).toBe(409);
    expect(none.json.code).toBe('mcp_not_configured');
    expect(h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch')).toEqual([]);
  });

  it('an entry removed and added again is another incarnation: a connection its removal missed is not_connected, never sealed', async () => {
    // Prepare: `notes` (user_token) and `crm` (oauth); the user's connections to both, made for
    // these incarnations of the entries
    const id = uid('cat-');
    const notes = { name: 'notes', url: 'https://mcp.example.com/notes', auth: { type: 'user_token' } };
    const crm = { name: 'crm', url: 'https://crm.example.com/mcp', auth: { type: 'oauth' } };
    expect((await putTenant(id, { mcp_servers: [notes, crm] })).status).toBe(201);
    await createUser(id, 'fay');
    const entryIds = async () =>
      Object.fromEntries(((await h.store.getTenant(id))?.mcp_servers ?? []).map((s) => [s.name, s.entry_id]));
    const first = await entryIds();
    expect(first.notes).toMatch(/^[\w-]{16}$/);
    expect(first.crm).toMatch(/^[\w-]{16}$/);
    expect(first.notes).not.toBe(first.crm);
    const connect = async (ids: Record<string, string | undefined>) => {
      const conn = { tenant_id: id, user_id: 'fay' } as const;
      await putConnection(
        { ...conn, server: 'notes', auth: 'user_token', resource: notes.url, entry_id: ids.notes as string },
        USER_TOKEN,
      );
      await putConnection(
        { ...conn, server: 'crm', auth: 'oauth', resource: crm.url, entry_id: ids.crm as string },
        ACCESS_TOKEN,
      );
    };
    await connect(first);
    expect((await startSession(id, 'fay')).json.mcp_servers).toEqual([
      { name: 'notes', status: 'ready' },
      { name: 'crm', status: 'ready' },
    ]);

    // Act: a write that keeps both (new URL for neither, a display name) keeps the incarnations;
    // then both removed (this app has no sweep: the connections stay, as a sweep cut by its
    // deadline or a lagging index leaves them), then added again with the same name and URL
    const kept = await putTenant(id, { mcp_servers: [{ ...notes, display_name: 'Notes' }, crm] }, 1);
    expect(kept.status, kept.text).toBe(200);
    expect(await entryIds()).toEqual(first);
    expect((await putTenant(id, { mcp_servers: [] }, 2)).status).toBe(200);
    expect((await putTenant(id, { mcp_servers: [notes, crm] }, 3)).status).toBe(200);
    const again = await entryIds();
    const started = await startSession(id, 'fay');

    // Assess: new incarnations; the old connections count for neither, and nothing is dispatched
    expect(again.notes).not.toBe(first.notes);
    expect(again.crm).not.toBe(first.crm);
    expect(started.status).toBe(409);
    expect(started.json.mcp_servers).toEqual([
      { name: 'notes', status: 'not_connected' },
      { name: 'crm', status: 'not_connected' },
    ]);
    expect(h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch')).toHaveLength(
      1,
    );

    // Assess: an auth type change is a new incarnation too; connecting the current one works
    expect(
      (await putTenant(id, { mcp_servers: [{ ...notes, auth: { type: 'oauth' } }, crm] }, 4)).status,
    ).toBe(200);
    expect((await entryIds()).notes).not.toBe(again.notes);
    expect((await putTenant(id, { mcp_servers: [notes, crm] }, 5)).status).toBe(200);
    await connect(await entryIds());
    const back = await startSession(id, 'fay');
    expect(back.status).toBe(201);
    expect(back.json.mcp_servers).toEqual([
      { name: 'notes', status: 'ready' },
      { name: 'crm', status: 'ready' },
    ]);
  });

  it('token mode seals the grants without headers: the app holds the JWE', async () => {
    // Prepare
    const id = uid('cat-');
    await putTenant(id, { mcp_servers: [CATALOG[0]] });
    await createUser(id, 'erin');

    // Act
    const started = await startSession(id, 'erin', sessionApp('token'));

    // Assess
    expect(started.status, JSON.stringify(started.json)).toBe(201);
    expect(started.json.mcp_servers).toEqual([{ name: 'docs', status: 'ready' }]);
    const agents = (
      decodeJwt(started.json.participant_token).roomConfig as { agents: { metadata: string }[] }
    ).agents;
    const grant = await sealedOf(agents[0]!.metadata, started.json.room_name);
    expect(grant.mcpServers).toEqual([
      {
        name: 'docs',
        url: 'https://docs.example.com/mcp',
        transport: 'streamable_http',
        auth: 'static',
        headers: {},
      },
    ]);
  });
});

describe('webhook dispatch with a catalog (docs/api.md §1, §5)', () => {
  function webhookApp() {
    return createWebhookApp({
      store: h.store,
      livekit: h.gateway,
      sealer: h.sealer,
      secretBox: h.secretBox,
      connectionReader: new DynamoStore({ client: h.db.client, tableName: h.db.tableName }).connections,
      config: {
        defaultAgentName: 'mcp-agent',
        metadataTtlSeconds: 7200,
        webhookRoomPrefix: 'lk-mcp-',
        livekit: TEST_LIVEKIT,
      },
    });
  }

  async function join(tenantId: string, identity: string): Promise<{ action: string; room: string }> {
    const room = `lk-mcp-${tenantId}-${uid('r')}`;
    h.livekitServer.addRoom(room);
    const signed = await signWebhookBody(participantJoined({ roomName: room, identity }), TEST_LIVEKIT);
    const res = await webhookApp().request('/v1/livekit/webhook', {
      method: 'POST',
      headers: { 'content-type': 'application/webhook+json', authorization: signed.authorization },
      body: signed.body,
    });
    expect(res.status).toBe(200);
    return { action: ((await res.json()) as { action: string }).action, room };
  }

  it("carries a user's credential only for entries with webhook: true", async () => {
    // Prepare: `notes` opts in, `mine` does not; both connected
    const id = uid('cat-');
    await putTenant(id, {
      webhook_dispatch: true,
      mcp_servers: [
        { name: 'wiki', url: 'https://wiki.example.com/mcp', auth: { type: 'none' } },
        { name: 'notes', url: 'https://mcp.example.com/notes', webhook: true, auth: { type: 'user_token' } },
        { name: 'mine', url: 'https://wiki.example.com/mine', auth: { type: 'user_token' } },
      ],
    });
    await createUser(id, 'frank');
    for (const [server, resource] of [
      ['notes', 'https://mcp.example.com/notes'],
      ['mine', 'https://wiki.example.com/mine'],
    ] as const) {
      await putConnection(
        { tenant_id: id, user_id: 'frank', server, auth: 'user_token', resource },
        USER_TOKEN,
      );
    }

    // Act
    const { action, room } = await join(id, 'frank');

    // Assess
    expect(action).toBe('dispatched');
    const grant = await sealedOf(lastDispatch().metadata, room);
    expect(grant.mcpServers.map((s) => [s.name, s.auth])).toEqual([
      ['wiki', 'none'],
      ['notes', 'user_token'],
    ]);
  });

  it('ignores a join when only user-credential servers without webhook: true exist', async () => {
    const id = uid('cat-');
    await putTenant(id, {
      webhook_dispatch: true,
      mcp_servers: [{ name: 'mine', url: 'https://wiki.example.com/mine', auth: { type: 'user_token' } }],
    });
    await createUser(id, 'gina');
    await putConnection(
      {
        tenant_id: id,
        user_id: 'gina',
        server: 'mine',
        auth: 'user_token',
        resource: 'https://wiki.example.com/mine',
      },
      USER_TOKEN,
    );

    const { action } = await join(id, 'gina');

    expect(action).toBe('ignored');
    expect(h.livekitServer.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch')).toEqual([]);
  });
});
