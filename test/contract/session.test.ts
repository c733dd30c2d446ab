import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compactDecrypt, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §4 (POST /v1/sessions) and §3 (sealed metadata), as an outside client sees them.

let stack: LocalStack;
let admin: string;
let alice: string;

const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function expectProblem(answer: Answer, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toBe('application/problem+json');
  expect(answer.json).toMatchObject({ status, code });
  expect(typeof answer.json.type).toBe('string');
  expect(typeof answer.json.title).toBe('string');
  expect(typeof answer.json.detail).toBe('string');
}

async function openSealed(metadata: string): Promise<Record<string, unknown>> {
  const keys = JSON.parse(readFileSync(join(stack.dataDir, 'keys.json'), 'utf8'));
  const { kid } = decodeProtectedHeader(metadata);
  const key = Buffer.from(keys.dispatch.keys[kid as string], 'base64url');
  const { plaintext } = await compactDecrypt(metadata, key);
  return JSON.parse(new TextDecoder().decode(plaintext));
}

beforeAll(async () => {
  stack = await startLocalStack();
  const superadmin = await stack.token({ user: 'ops', superadmin: true });
  admin = await stack.token({ user: 'acme-admin', tenant: 'acme', admin: true });
  alice = await stack.token({ user: 'alice', tenant: 'acme' });
  const tenant = await stack.call('PUT', '/v1/admin/tenants/acme', {
    token: superadmin,
    body: {
      name: 'Acme',
      agent_names: ['voice', 'helper'],
      mcp: {
        url: 'http://localhost:9/mcp',
        token: 'tenant-secret-token',
        headers: { 'X-Api-Key': 'header-secret' },
        allowed_tools: ['search'],
      },
    },
  });
  expect(tenant.status).toBe(201);
  const user = await stack.call('PUT', '/v1/admin/tenants/acme/users/alice', { token: admin, body: {} });
  expect(user.status).toBe(201);
});

afterAll(async () => {
  await stack?.stop();
});

describe('POST /v1/sessions: 201', () => {
  it('answers exactly the contract fields, a roomJoin-only token and one sealed dispatch', async () => {
    // Prepare
    const before = stack.livekit.dispatches.length;

    // Act
    const answer = await stack.call('POST', '/v1/sessions', {
      token: alice,
      body: {
        participant_name: 'Alice',
        participant_identity: 'alice',
        room_config: { agents: [{ agent_name: 'helper', metadata: 'app-meta' }] },
        some_future_field: true,
      },
    });

    // Assess
    expect(answer.status).toBe(201);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(answer.json).sort()).toEqual(
      [
        'agent_name',
        'dispatch_id',
        'expires_at',
        'mcp_servers',
        'participant_identity',
        'participant_token',
        'room_name',
        'server_url',
      ].sort(),
    );
    expect(answer.json.server_url).toMatch(/^ws:\/\//);
    expect(answer.json.participant_identity).toBe('alice');
    expect(answer.json.agent_name).toBe('helper');
    expect(answer.json.mcp_servers).toEqual([{ name: expect.any(String), status: 'ready' }]);
    expect(answer.json.room_name).toMatch(/^lk-mcp-acme-[a-z2-7]{16,}$/);
    expect(answer.json.expires_at).toMatch(RFC3339_SECONDS);
    const claims = decodeJwt(answer.json.participant_token) as Record<string, unknown>;
    expect(claims.sub).toBe('alice');
    expect(claims.video).toEqual({
      roomJoin: true,
      room: answer.json.room_name,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    expect(new Date(answer.json.expires_at).getTime()).toBe((claims.exp as number) * 1000);
    expect((claims.exp as number) - (claims.nbf as number)).toBe(900);

    const dispatches = stack.livekit.dispatches.slice(before);
    expect(dispatches).toHaveLength(1);
    expect(dispatches[0]).toMatchObject({
      id: answer.json.dispatch_id,
      room: answer.json.room_name,
      agentName: 'helper',
    });
    expect(decodeProtectedHeader(dispatches[0]!.metadata)).toEqual({
      alg: 'dir',
      enc: 'A256GCM',
      kid: expect.any(String),
      typ: 'lk-mcp-dispatch+jwt',
    });
    const sealed = await openSealed(dispatches[0]!.metadata);
    expect(sealed).toMatchObject({
      iss: 'livekit-mcp-dispatch',
      aud: 'helper',
      sub: 'alice',
      tid: 'acme',
      room: answer.json.room_name,
      pid: 'alice',
      client: 'app-meta',
      mcp_servers: [
        {
          name: expect.any(String),
          url: 'http://localhost:9/mcp',
          transport: 'streamable_http',
          headers: { Authorization: 'Bearer tenant-secret-token', 'X-Api-Key': 'header-secret' },
          allowed_tools: ['search'],
        },
      ],
    });
    expect((sealed.exp as number) - (sealed.iat as number)).toBe(7200);
    expect(typeof sealed.jti).toBe('string');
    expect(answer.text).not.toContain('tenant-secret-token');
  });

  it('room names are unguessable: two sessions never share one', async () => {
    // Act
    const [a, b] = await Promise.all([
      stack.call('POST', '/v1/sessions', { token: alice, body: {} }),
      stack.call('POST', '/v1/sessions', { token: alice, body: {} }),
    ]);

    // Assess
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.json.room_name).not.toBe(b.json.room_name);
    expect(a.json.agent_name).toBe('voice');
  });
});

describe('POST /v1/sessions: refusals', () => {
  it('400 field_not_allowed for room_name and lk./sip. attributes', async () => {
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: alice, body: { room_name: 'mine' } }),
      400,
      'field_not_allowed',
    );
    for (const key of ['lk.agent.state', 'sip.trunkID']) {
      const answer = await stack.call('POST', '/v1/sessions', {
        token: alice,
        body: { participant_attributes: { [key]: 'x' } },
      });
      expectProblem(answer, 400, 'field_not_allowed');
    }
  });

  it('401 unauthenticated without or with a bad token', async () => {
    expectProblem(await stack.call('POST', '/v1/sessions', { body: {} }), 401, 'unauthenticated');
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: 'not.a.jwt', body: {} }),
      401,
      'unauthenticated',
    );
  });

  it('403 identity_mismatch, tenant_mismatch, agent_not_allowed', async () => {
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: alice, body: { participant_identity: 'bob' } }),
      403,
      'identity_mismatch',
    );
    const noTenant = await stack.token({ user: 'alice', tenant: 'Not_A_Tenant' });
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: noTenant, body: {} }),
      403,
      'tenant_mismatch',
    );
    expectProblem(
      await stack.call('POST', '/v1/sessions', {
        token: alice,
        body: { room_config: { agents: [{ agent_name: 'not-listed' }] } },
      }),
      403,
      'agent_not_allowed',
    );
  });

  it('404 user_not_found for a sub without a record', async () => {
    const nobody = await stack.token({ user: 'nobody', tenant: 'acme' });
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: nobody, body: {} }),
      404,
      'user_not_found',
    );
    // v3: a tenant claim naming a tenant where the sub has no record (docs/api.md §4).
    const foreign = await stack.token({ user: 'alice', tenant: 'globex' });
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: foreign, body: {} }),
      404,
      'user_not_found',
    );
  });

  it('413 payload_too_large over 64 KiB', async () => {
    const answer = await stack.call('POST', '/v1/sessions', {
      token: alice,
      body: { participant_metadata: 'x'.repeat(64 * 1024) },
    });
    expectProblem(answer, 413, 'payload_too_large');
  });

  it('422 invalid_request at the limits: name > 128 chars, metadata > 4 KiB, > 32 attributes', async () => {
    const attributes = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    for (const body of [
      { participant_name: 'n'.repeat(129) },
      { participant_metadata: 'm'.repeat(4097) },
      { participant_attributes: attributes },
      { room_config: { agents: [{ metadata: 'c'.repeat(4097) }] } },
    ]) {
      const answer = await stack.call('POST', '/v1/sessions', { token: alice, body });
      expectProblem(answer, 422, 'invalid_request');
    }
  });

  it('accepts exactly the limits: 128 characters (not UTF-16 units), 4 KiB, 32 attributes', async () => {
    // Act
    const answer = await stack.call('POST', '/v1/sessions', {
      token: alice,
      body: {
        participant_name: '🎙'.repeat(128),
        participant_metadata: 'm'.repeat(4096),
        participant_attributes: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v'])),
      },
    });

    // Assess
    expect(answer.status).toBe(201);
  });

  it('422 idempotency_key_reused for the same key with another body; a replay returns the same session', async () => {
    // Prepare
    const headers = { 'idempotency-key': `key-${Date.now()}` };

    // Act
    const first = await stack.call('POST', '/v1/sessions', { token: alice, body: {}, headers });
    const replay = await stack.call('POST', '/v1/sessions', { token: alice, body: {}, headers });
    const other = await stack.call('POST', '/v1/sessions', {
      token: alice,
      body: { participant_name: 'x' },
      headers,
    });

    // Assess
    expect(first.status).toBe(201);
    expect(replay.status).toBe(201);
    expect(replay.json.room_name).toBe(first.json.room_name);
    expect(replay.json.dispatch_id).toBe(first.json.dispatch_id);
    expectProblem(other, 422, 'idempotency_key_reused');
  });
});

describe('401 challenge', () => {
  it('a 401 unauthenticated carries WWW-Authenticate: Bearer (RFC 9110 §11.6.1, RFC 6750)', async () => {
    const session = await stack.call('POST', '/v1/sessions', { body: {} });
    const adminApi = await stack.call('GET', '/v1/admin/tenants/acme', { token: 'x.y.z' });
    for (const answer of [session, adminApi]) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    }
  });
});

describe('POST /v1/sessions: the remaining table rows', () => {
  let superadmin: string;

  beforeAll(async () => {
    superadmin = await stack.token({ user: 'ops', superadmin: true });
    await stack.call('PUT', '/v1/admin/tenants/rows', {
      token: superadmin,
      body: { name: 'Rows', max_concurrent_sessions: 1, mcp: { url: 'http://localhost:9/mcp' } },
    });
    for (const id of ['rows-a', 'rows-b', 'rows-c']) {
      await stack.call('PUT', `/v1/admin/tenants/rows/users/${id}`, { token: superadmin, body: {} });
    }
    await stack.call('PUT', '/v1/admin/tenants/acme/users/to-revoke', {
      token: superadmin,
      body: { mcp: { url: 'http://localhost:9/mcp' } },
    });
  });

  it('409 mcp_not_configured for a user with no MCP URL anywhere', async () => {
    await stack.call('PUT', '/v1/admin/tenants/bare', { token: superadmin, body: { name: 'Bare' } });
    await stack.call('PUT', '/v1/admin/tenants/bare/users/bare-user', { token: superadmin, body: {} });
    const token = await stack.token({ user: 'bare-user', tenant: 'bare' });
    expectProblem(await stack.call('POST', '/v1/sessions', { token, body: {} }), 409, 'mcp_not_configured');
  });

  it('502 livekit_unavailable, and 409 idempotency_key_in_flight (Retry-After) while the first still runs', async () => {
    // Prepare
    const token = await stack.token({ user: 'rows-a', tenant: 'rows' });
    const headers = { 'idempotency-key': 'in-flight-1' };
    stack.livekit.failNext(1, 'hang');

    // Act
    const first = stack.call('POST', '/v1/sessions', { token, body: {}, headers });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const repeat = await stack.call('POST', '/v1/sessions', { token, body: {}, headers });
    const failed = await first;

    // Assess
    expectProblem(repeat, 409, 'idempotency_key_in_flight');
    expect(repeat.headers.get('retry-after')).toMatch(/^\d+$/);
    expectProblem(failed, 502, 'livekit_unavailable');
  });

  it('429 quota_exceeded when the tenant leases are all taken', async () => {
    const a = await stack.token({ user: 'rows-b', tenant: 'rows' });
    const b = await stack.token({ user: 'rows-c', tenant: 'rows' });
    expect((await stack.call('POST', '/v1/sessions', { token: a, body: {} })).status).toBe(201);
    const refused = await stack.call('POST', '/v1/sessions', { token: b, body: {} });
    expectProblem(refused, 429, 'quota_exceeded');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('403 user_suspended after revoke, and tenant_suspended', async () => {
    const token = await stack.token({ user: 'to-revoke', tenant: 'acme' });
    await stack.call('POST', '/v1/admin/tenants/acme/users/to-revoke/revoke', { token: superadmin });
    expectProblem(await stack.call('POST', '/v1/sessions', { token, body: {} }), 403, 'user_suspended');
    await stack.call('PUT', '/v1/admin/tenants/bare', {
      token: superadmin,
      body: { name: 'Bare', status: 'suspended' },
      headers: { 'if-match': '*' },
    });
    const bare = await stack.token({ user: 'bare-user', tenant: 'bare' });
    expectProblem(
      await stack.call('POST', '/v1/sessions', { token: bare, body: {} }),
      403,
      'tenant_suspended',
    );
  });
});
