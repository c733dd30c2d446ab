import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { makeWorkerAssertion } from '@livekit-mcp-dispatch/contract';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { createAdminApp } from '../../functions/admin/app.js';
import { createMetadataOpener } from '../../functions/core/metadata-opener.js';
import { createCredentialsApp } from '../../functions/credentials/app.js';
import { type LocalServer, sourceOpenApiDocument } from '../../functions/local.js';
import { renderOpenApiJson } from '../../functions/openapi/document.js';
import { createSessionApp } from '../../functions/session/app.js';
import { participantJoined, signWebhookBody, TEST_LIVEKIT, uid } from '../support/fixtures.js';
import type { LiveKitStandIn } from '../support/livekit-standin.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';
import { connectionResponses } from './openapi-connections.js';

type Json = Record<string, unknown>;
type Operation = { responses: Record<string, Json> };

const DOC_FILE = 'functions/openapi/openapi.json';
const doc = JSON.parse(readFileSync(DOC_FILE, 'utf8')) as {
  info: { version: string };
  paths: Record<string, Record<string, Operation | Json[]>>;
  components: Json;
};
const METHODS = ['get', 'put', 'post', 'delete'] as const;

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ $id: 'openapi.json', components: doc.components });

/** Every documented (operation, status) pair, `default` aside. */
const documented = new Set<string>();
for (const [path, item] of Object.entries(doc.paths)) {
  for (const method of METHODS) {
    const op = item[method] as Operation | undefined;
    for (const status of Object.keys(op?.responses ?? {})) {
      if (status !== 'default') documented.add(`${method.toUpperCase()} ${path} ${status}`);
    }
  }
}
const seen = new Set<string>();

const templates = Object.keys(doc.paths)
  .map((path) => ({ path, re: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
  .sort((a, b) => b.path.length - a.path.length);

function withAbsoluteRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withAbsoluteRefs);
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' ? `openapi.json${v}` : withAbsoluteRefs(v),
    ]),
  );
}

/**
 * Checks one real response against the document: the path and method are documented, the status
 * is (or `default` covers it), the content type and body match the schema, documented `ETag` and
 * `Location` headers are there. Records the pair as seen.
 */
async function conforms(method: string, url: string, res: Response): Promise<{ status: number; body: Json }> {
  const path = new URL(url, 'http://x').pathname;
  const template = templates.find((t) => t.re.test(path));
  expect(template, `undocumented path ${path}`).toBeDefined();
  const op = doc.paths[template!.path]![method.toLowerCase()] as Operation | undefined;
  expect(op, `undocumented operation ${method} ${template!.path}`).toBeDefined();
  const key = `${method} ${template!.path} ${res.status}`;
  const spec = (op!.responses[String(res.status)] ?? op!.responses.default) as
    | { content?: Record<string, { schema: Json }>; headers?: Json }
    | undefined;
  expect(spec, `undocumented status: ${key}`).toBeDefined();
  const text = await res.text();
  let body: Json = {};
  if (spec!.content === undefined) {
    expect(text, `${key} documents no body`).toBe('');
  } else {
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    expect(Object.keys(spec!.content), `${key} content type`).toContain(type);
    // An HTML page (the OAuth callback's 400) has no JSON schema to check beyond its type.
    if (type === 'text/html') {
      if (op!.responses[String(res.status)] !== undefined) seen.add(key);
      return { status: res.status, body };
    }
    body = JSON.parse(text) as Json;
    const validate = ajv.compile(withAbsoluteRefs(spec!.content[type]!.schema) as Json);
    expect(validate(body), `${key}: ${JSON.stringify(validate.errors)} in ${text.slice(0, 400)}`).toBe(true);
  }
  for (const header of ['ETag', 'Location']) {
    if (spec!.headers?.[header] !== undefined)
      expect(res.headers.get(header), `${key} ${header}`).toBeTruthy();
  }
  if (op!.responses[String(res.status)] !== undefined) seen.add(key);
  return { status: res.status, body };
}

let livekit: LiveKitStandIn;
let local: LocalServer;
let stack: LocalStack;
let base: string;
const tokens = { super: '', adminAcme: '', alice: '', nobody: '', bob: '', tina: '', plain: '' };

interface Call {
  token?: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/** Sends a request to the local server and checks the answer against the document. */
async function call(method: string, path: string, options: Call = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    redirect: 'manual',
    ...(body === undefined ? {} : { body }),
  });
  return { ...(await conforms(method, path, res)), headers: res.headers };
}

/** Sends a request to an app composed in-process (a broken store, a tiny cascade budget). */
async function callApp(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  options: Call = {},
) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) init.body = JSON.stringify(options.body);
  return conforms(method, path, await app.request(path, init));
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
  const { port } = probe.address() as AddressInfo;
  await new Promise((ok) => probe.close(ok));
  return port;
}

const MCP_URL = 'http://localhost:9/mcp';
const superPut = (path: string, body: unknown) =>
  call('PUT', path, { token: tokens.super, body, headers: { 'if-none-match': '*' } });

beforeAll(async () => {
  stack = await startLocalStack();
  ({ livekit, local, base } = stack);
  const mint = local.mintToken!;
  tokens.super = await mint({ user: 'ops', superadmin: true });
  tokens.adminAcme = await mint({ user: 'acme-admin', tenant: 'acme', admin: true });
  tokens.alice = await mint({ user: 'alice', tenant: 'acme' });
  tokens.nobody = await mint({ user: 'nobody', tenant: 'acme' });
  tokens.bob = await mint({ user: 'bob', tenant: 'bare' });
  tokens.tina = await mint({ user: 'tina', tenant: 'tiny' });
  tokens.plain = await mint({ user: 'plain', tenant: 'acme' });

  await superPut('/v1/admin/tenants/acme', {
    name: 'Acme',
    mcp: { url: MCP_URL, token: 'acme-mcp-token' },
    webhook_dispatch: true,
  });
  await superPut('/v1/admin/tenants/acme/users/alice', {});
  await superPut('/v1/admin/tenants/bare', { name: 'Bare' });
  await superPut('/v1/admin/tenants/bare/users/bob', {});
  await superPut('/v1/admin/tenants/tiny', {
    name: 'Tiny',
    mcp: { url: MCP_URL },
    max_concurrent_sessions: 1,
  });
  await superPut('/v1/admin/tenants/tiny/users/tina', {});
});

afterAll(async () => {
  await stack?.stop();
});

describe('openapi.json', () => {
  it('is generated from the current schemas (npm run openapi)', () => {
    // Act
    const fresh = renderOpenApiJson(doc.info.version);

    // Assess
    expect(readFileSync(DOC_FILE, 'utf8')).toBe(fresh);
  });

  it('is served at GET /openapi.json without a token', async () => {
    // Act
    const res = await call('GET', '/openapi.json');

    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toEqual(doc);
  });

  it('documents the webhook body without a schema that would validate it', () => {
    // Assess
    const op = doc.paths['/v1/livekit/webhook']!.post as Json;
    expect(JSON.stringify(op.requestBody)).toContain('#/components/schemas/WebhookEvent');
    expect(Object.keys(doc.components.schemas as Json)).toContain('WebhookEvent');
    expect((doc.components.schemas as Record<string, Json>).WebhookEvent).toEqual({
      type: 'object',
      description: expect.any(String),
    });
  });
});

describe('POST /v1/sessions responses', () => {
  it('201, and each refusal', async () => {
    const post = (token: string | undefined, body: unknown, headers?: Record<string, string>) =>
      call('POST', '/v1/sessions', { ...(token ? { token } : {}), body, ...(headers ? { headers } : {}) });

    expect((await post(tokens.alice, {})).status).toBe(201);
    expect((await post(tokens.alice, { room_name: 'mine' })).body.code).toBe('field_not_allowed');
    expect((await post(undefined, {})).body.code).toBe('unauthenticated');
    expect((await post(tokens.alice, { participant_identity: 'mallory' })).body.code).toBe(
      'identity_mismatch',
    );
    expect((await post(tokens.nobody, {})).body.code).toBe('user_not_found');
    expect((await post(tokens.bob, {})).body.code).toBe('mcp_not_configured');
    expect((await post(tokens.alice, { participant_name: 'x'.repeat(200) })).body.code).toBe(
      'invalid_request',
    );
    const big = await call('POST', '/v1/sessions', {
      token: tokens.alice,
      raw: JSON.stringify({ participant_metadata: 'x'.repeat(70 * 1024) }),
    });
    expect(big.body.code).toBe('payload_too_large');
    expect((await post(tokens.tina, {})).status).toBe(201);
    expect((await post(tokens.tina, {})).body.code).toBe('quota_exceeded');
  });

  it('502 when LiveKit fails', async () => {
    // Prepare
    livekit.failNext(20, '503');

    // Act
    const res = await call('POST', '/v1/sessions', { token: tokens.alice, body: {} });
    livekit.failNext(0, '503');

    // Assess
    expect(res.body.code).toBe('livekit_unavailable');
  });

  it('503 when the store fails', async () => {
    // Prepare: the same services over a DynamoDB endpoint nobody listens on.
    const dead = createDynamoClient({ endpoint: `http://127.0.0.1:${await closedPort()}` });
    const app = createSessionApp({
      ...local.services,
      store: new DynamoStore({ client: dead, tableName: local.services.config.tableName }),
    });

    // Act
    const res = await callApp(app, 'POST', '/v1/sessions', { token: tokens.alice, body: {} });
    dead.destroy();

    // Assess
    expect(res).toMatchObject({ status: 503, body: { code: 'store_unavailable' } });
  });
});

describe('POST /v1/worker/credentials responses', () => {
  const PATH = '/v1/worker/credentials';
  /** A live session of a fresh user of acme, and a maker of its worker's assertions. */
  async function liveJob() {
    const user = uid('worker-');
    await superPut(`/v1/admin/tenants/acme/users/${user}`, {});
    const token = await local.mintToken!({ user, tenant: 'acme' });
    const started = await call('POST', '/v1/sessions', { token, body: {} });
    expect(started.status).toBe(201);
    const metadata = livekit.dispatches.find((d) => d.room === started.body.room_name)!.metadata;
    const keyring = local.services.config.dispatchKeys;
    const { sid } = await createMetadataOpener(keyring)(metadata);
    const assertion = async () =>
      `Bearer ${await makeWorkerAssertion({
        keyring,
        agentName: 'mcp-agent',
        refreshUrl: `${local.services.config.publicBaseUrl}${PATH}`,
        sid: sid!,
      })}`;
    return { user, metadata, assertion };
  }

  it('200, 401, 403, 413, 422 and 429', async () => {
    // Prepare
    const job = await liveJob();
    const renewal = async (body: unknown = { metadata: job.metadata }, authorization?: string) =>
      call('POST', PATH, { headers: { authorization: authorization ?? (await job.assertion()) }, body });

    // Act / Assess
    const renewed = await renewal();
    expect(renewed.status).toBe(200);
    expect(typeof renewed.body.metadata).toBe('string');
    expect(await renewal(undefined, 'Bearer not-a-jws')).toMatchObject({
      status: 401,
      body: { code: 'invalid_worker_assertion' },
    });
    expect(await renewal({ metadata: `${job.metadata}x` })).toMatchObject({
      status: 401,
      body: { code: 'invalid_metadata' },
    });
    expect((await renewal({ metadata: 'x'.repeat(70 * 1024) })).status).toBe(413);
    expect(await renewal({ metadata: 7 })).toMatchObject({ status: 422, body: { code: 'invalid_request' } });
    for (let i = 1; i < 20; i++) expect((await renewal()).status).toBe(200);
    expect(await renewal()).toMatchObject({ status: 429, body: { code: 'rate_limited' } });
    const ended = await liveJob();
    await call('POST', `/v1/admin/tenants/acme/users/${ended.user}/revoke`, { token: tokens.super });
    expect(
      await call('POST', PATH, {
        headers: { authorization: await ended.assertion() },
        body: { metadata: ended.metadata },
      }),
    ).toMatchObject({ status: 403, body: { code: 'session_ended' } });
  }, 30_000);

  it('503 when the store fails', async () => {
    // Prepare
    const job = await liveJob();
    const dead = createDynamoClient({ endpoint: `http://127.0.0.1:${await closedPort()}` });
    const app = createCredentialsApp({
      ...local.services,
      store: new DynamoStore({ client: dead, tableName: local.services.config.tableName }),
    });

    // Act
    const res = await callApp(app, 'POST', PATH, {
      headers: { authorization: await job.assertion() },
      body: { metadata: job.metadata },
    });
    dead.destroy();

    // Assess
    expect(res).toMatchObject({ status: 503, body: { code: 'store_unavailable' } });
  });
});

describe('POST /v1/livekit/webhook responses', () => {
  const deliver = async (body: string, signed = true) => {
    const headers: Record<string, string> = { 'content-type': 'application/webhook+json' };
    if (signed) headers.authorization = (await signWebhookBody(body, TEST_LIVEKIT)).authorization;
    return call('POST', '/v1/livekit/webhook', { raw: body, headers });
  };

  it('200, 401, 413 and 503', async () => {
    expect((await deliver(participantJoined({ roomName: 'other-room', identity: 'alice' }))).body).toEqual({
      ok: true,
      action: 'ignored',
    });
    expect(
      (await deliver(participantJoined({ roomName: 'lk-mcp-x', identity: 'alice' }), false)).body.code,
    ).toBe('invalid_signature');
    expect((await deliver(' '.repeat(1024 * 1024 + 10))).status).toBe(413);

    const room = `lk-mcp-acme-${uid('r')}`;
    livekit.addRoom(room);
    livekit.failNext(20, '503');
    const failed = await deliver(participantJoined({ roomName: room, identity: 'alice' }));
    livekit.failNext(0, '503');
    expect(failed).toMatchObject({ status: 503, body: { code: 'livekit_unavailable' } });
  });
});

describe('admin API responses', () => {
  const T = '/v1/admin/tenants';

  it('401 without a token and 403 without an admin scope, on every admin operation', async () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/admin/')) continue;
      const concrete = path.replace('{tenantId}', 'acme').replace('{userId}', 'alice');
      for (const method of METHODS) {
        if (item[method] === undefined) continue;
        const body = method === 'put' ? { name: 'x' } : undefined;
        const m = method.toUpperCase();
        expect((await call(m, concrete, { body })).status, `${m} ${path}`).toBe(401);
        expect((await call(m, concrete, { body, token: tokens.plain })).status, `${m} ${path}`).toBe(403);
      }
    }
  });

  it('tenants: list, get, put and delete', async () => {
    const sa = { token: tokens.super };
    expect((await call('GET', T, sa)).status).toBe(200);
    expect((await call('GET', `${T}?limit=500`, sa)).status).toBe(422);

    expect((await call('GET', `${T}/acme`, sa)).status).toBe(200);
    expect((await call('GET', `${T}/missing`, sa)).status).toBe(404);

    const created = await call('PUT', `${T}/zeta`, {
      ...sa,
      body: { name: 'Zeta' },
      headers: { 'if-none-match': '*' },
    });
    expect(created.status).toBe(201);
    const updated = await call('PUT', `${T}/zeta`, {
      ...sa,
      body: { name: 'Zeta 2' },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(updated.status).toBe(200);
    const put = (path: string, body: unknown, headers: Record<string, string> = {}, token = tokens.super) =>
      call('PUT', path, { token, body, headers });
    const refusedUrl = 'https://10.0.0.1/mcp'; // refused (unsafe_mcp_url), never contacted
    expect(
      (await put(`${T}/zeta`, { name: 'Z', mcp: { url: refusedUrl } }, { 'if-match': '"2"' })).body.code,
    ).toBe('unsafe_mcp_url');
    expect(
      (await put(`${T}/acme`, { name: 'A', agent_names: ['x'] }, { 'if-match': '"1"' }, tokens.adminAcme))
        .body.code,
    ).toBe('field_requires_superadmin');
    expect((await put(`${T}/zeta`, { name: 'Z' }, { 'if-match': '"2"' }, tokens.adminAcme)).status).toBe(404);
    await put(`${T}/sip-a`, { name: 'Sip A', sip_trunk_ids: ['ST_1'] }, { 'if-none-match': '*' });
    expect(
      (await put(`${T}/sip-b`, { name: 'Sip B', sip_trunk_ids: ['ST_1'] }, { 'if-none-match': '*' })).body
        .code,
    ).toBe('sip_trunk_taken');
    expect((await put(`${T}/zeta`, { name: 'Z' }, { 'if-match': '"1"' })).body.code).toBe('version_conflict');
    expect(
      (await call('PUT', `${T}/zeta`, { ...sa, raw: JSON.stringify({ name: 'x'.repeat(70_000) }) })).status,
    ).toBe(413);
    expect((await put(`${T}/omega`, { title: 'no name' }, { 'if-none-match': '*' })).body.code).toBe(
      'invalid_request',
    );
    expect((await put(`${T}/zeta`, { name: 'Z' })).body.code).toBe('precondition_required');

    expect((await call('DELETE', `${T}/acme`, sa)).body.code).toBe('tenant_has_users');
    expect((await call('DELETE', `${T}/zeta`, { ...sa, headers: { 'if-match': '"1"' } })).body.code).toBe(
      'version_conflict',
    );
    expect((await call('DELETE', `${T}/zeta`, sa)).status).toBe(204);
    expect((await call('DELETE', `${T}/zeta`, sa)).status).toBe(404);
  });

  it('202 while a cascading delete is still going', async () => {
    // Prepare: more users than one cascade page, and no time budget beyond the first page.
    await superPut(`${T}/crowd`, { name: 'Crowd' });
    for (let i = 0; i < 26; i++) await superPut(`${T}/crowd/users/crowd-${i}`, {});
    const app = createAdminApp({
      ...local.services,
      openApiDocument: sourceOpenApiDocument,
      cascadeBudgetMs: 0,
    });

    // Act
    const first = await callApp(app, 'DELETE', `${T}/crowd?cascade=true`, { token: tokens.super });
    const second = await callApp(app, 'DELETE', `${T}/crowd?cascade=true`, { token: tokens.super });

    // Assess
    expect(first).toMatchObject({ status: 202, body: { status: 'in_progress', deleted_users: 25 } });
    expect(second.status).toBe(204);
  });

  it('202 while ending sessions is still going (suspend, revoke, user delete, tenant suspend)', async () => {
    // Prepare: one live session per user, and an admin app whose deadline has already passed.
    await superPut(`${T}/busy`, { name: 'Busy', mcp: { url: MCP_URL, token: 'busy-token' } });
    const users = ['b-suspend', 'b-revoke', 'b-delete', 'b-tenant'];
    for (const user of users) {
      await superPut(`${T}/busy/users/${user}`, {});
      const token = await local.mintToken!({ user, tenant: 'busy' });
      expect((await call('POST', '/v1/sessions', { token, body: {} })).status).toBe(201);
    }
    const app = createAdminApp({
      ...local.services,
      openApiDocument: sourceOpenApiDocument,
      cascadeBudgetMs: 0,
    });
    const sa = { token: tokens.super };

    // Act
    const suspended = await callApp(app, 'PUT', `${T}/busy/users/b-suspend`, {
      ...sa,
      body: { status: 'suspended' },
      headers: { 'if-match': '"1"' },
    });
    const revoked = await callApp(app, 'POST', `${T}/busy/users/b-revoke/revoke`, sa);
    const deleted = await callApp(app, 'DELETE', `${T}/busy/users/b-delete`, sa);
    const tenant = await callApp(app, 'PUT', `${T}/busy`, {
      ...sa,
      body: { name: 'Busy', status: 'suspended' },
      headers: { 'if-match': '"1"' },
    });

    // Assess
    expect([suspended.status, revoked.status, deleted.status, tenant.status]).toEqual([202, 202, 202, 202]);
  });

  it('users: list, get, put, delete and revoke', async () => {
    const sa = { token: tokens.super };
    const U = `${T}/acme/users`;
    expect((await call('GET', U, sa)).status).toBe(200);
    expect((await call('GET', `${T}/bare/users`, { token: tokens.adminAcme })).status).toBe(404);
    expect((await call('GET', `${U}?cursor=forged`, sa)).status).toBe(422);

    expect((await call('GET', `${U}/alice`, sa)).status).toBe(200);
    expect((await call('GET', `${U}/ghost`, sa)).status).toBe(404);

    const put = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      call('PUT', path, { ...sa, body, headers });
    expect(
      (await put(`${U}/carol`, { phone_numbers: ['+14155550123'] }, { 'if-none-match': '*' })).status,
    ).toBe(201);
    expect(
      (
        await put(
          `${U}/carol`,
          { display_name: 'Carol', phone_numbers: ['+14155550123'] },
          { 'if-match': '"1"' },
        )
      ).status,
    ).toBe(200);
    expect(
      (await put(`${U}/carol`, { mcp: { url: 'https://169.254.169.254/' } }, { 'if-match': '"2"' })).body
        .code,
    ).toBe('unsafe_mcp_url');
    expect((await put(`${T}/missing/users/x`, {}, { 'if-none-match': '*' })).body.code).toBe(
      'tenant_not_found',
    );
    // v3: the same user id in another tenant is another user (docs/api.md §6).
    expect((await put(`${T}/bare/users/carol`, {}, { 'if-none-match': '*' })).status).toBe(201);
    expect(
      (await put(`${U}/dave`, { phone_numbers: ['+14155550123'] }, { 'if-none-match': '*' })).body.code,
    ).toBe('phone_number_taken');
    expect((await put(`${U}/carol`, {}, { 'if-match': '"1"' })).body.code).toBe('version_conflict');
    expect(
      (await call('PUT', `${U}/carol`, { ...sa, raw: JSON.stringify({ display_name: 'x'.repeat(70_000) }) }))
        .status,
    ).toBe(413);
    expect((await put(`${U}/carol`, { status: 'gone' }, { 'if-match': '"2"' })).body.code).toBe(
      'invalid_request',
    );
    expect((await put(`${U}/carol`, {})).body.code).toBe('precondition_required');

    expect((await call('POST', `${U}/carol/revoke`, sa)).body.ended_sessions).toBe(0);
    expect((await call('POST', `${U}/ghost/revoke`, sa)).status).toBe(404);

    expect((await call('DELETE', `${U}/carol`, { ...sa, headers: { 'if-match': '"1"' } })).body.code).toBe(
      'version_conflict',
    );
    expect(
      (await call('DELETE', `${U}/carol`, { ...sa, headers: { 'if-none-match': '*', 'if-match': '"2"' } }))
        .body.code,
    ).toBe('invalid_request');
    expect((await call('GET', `${U}/carol`, sa)).status).toBe(200);
    expect((await call('DELETE', `${U}/carol`, sa)).status).toBe(204);
    expect((await call('DELETE', `${U}/carol`, sa)).status).toBe(404);
  });

  it('?cascade= is only true or false: anything else is 422 and deletes nothing', async () => {
    // Prepare
    const sa = { token: tokens.super };
    await superPut(`${T}/casc`, { name: 'Cascade' });
    await superPut(`${T}/casc/users/u1`, {});

    // Act
    const answers = [];
    for (const value of ['yes', 'TRUE', '1', '']) {
      answers.push(await call('DELETE', `${T}/casc?cascade=${value}`, sa));
    }

    // Assess
    for (const a of answers) expect(a.body).toMatchObject({ status: 422, code: 'invalid_request' });
    expect((await call('GET', `${T}/casc/users/u1`, sa)).status).toBe(200);
    expect((await call('DELETE', `${T}/casc?cascade=false`, sa)).body.code).toBe('tenant_has_users');
    expect((await call('DELETE', `${T}/casc?cascade=true`, sa)).status).toBe(204);
  });

  it('a list under a deleted tenant is 404 tenant_not_found, not an empty page', async () => {
    // Prepare
    const sa = { token: tokens.super };
    await superPut(`${T}/gone`, { name: 'Gone' });
    expect((await call('GET', `${T}/gone/users`, sa)).status).toBe(200);
    expect((await call('DELETE', `${T}/gone`, sa)).status).toBe(204);

    // Act / Assess
    for (const list of ['users', 'audit', 'sessions']) {
      expect((await call('GET', `${T}/gone/${list}`, sa)).body, list).toMatchObject({
        status: 404,
        code: 'tenant_not_found',
      });
    }
  });

  it('audit and sessions', async () => {
    const sa = { token: tokens.super };
    for (const list of ['audit', 'sessions']) {
      const page = await call('GET', `${T}/acme/${list}?limit=2`, sa);
      expect(page.status).toBe(200);
      expect((page.body.items as unknown[]).length).toBeGreaterThan(0);
      expect((await call('GET', `${T}/bare/${list}`, { token: tokens.adminAcme })).status).toBe(404);
      expect((await call('GET', `${T}/acme/${list}?limit=0`, sa)).status).toBe(422);
    }
  });

  it('the tenant’s connections: 200, 404 and 422', async () => {
    const sa = { token: tokens.super };
    const page = await call('GET', `${T}/acme/connections?status=needs_reauth&limit=2`, sa);
    expect(page.status).toBe(200);
    expect(page.body.items).toEqual(expect.any(Array));
    expect((await call('GET', `${T}/bare/connections`, { token: tokens.adminAcme })).status).toBe(404);
    expect((await call('GET', `${T}/acme/connections?status=bogus`, sa)).status).toBe(422);
  });
});

connectionResponses(() => ({ call, local, base }));

describe('coverage of the document', () => {
  it('every documented status of every operation was answered and checked above', () => {
    // Assess
    expect([...documented].filter((k) => !seen.has(k)).sort()).toEqual([]);
  });
});
