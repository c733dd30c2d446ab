import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { type Answer, type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §6 (admin API) as an outside admin tool sees it, over `npm start`.

let stack: LocalStack;
let superadmin: string;
let acmeAdmin: string;

function expectProblem(answer: Answer, status: number, code?: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toBe('application/problem+json');
  expect(answer.json.status).toBe(status);
  if (code !== undefined) expect(answer.json.code).toBe(code);
}

beforeAll(async () => {
  stack = await startLocalStack({ MCP_ALLOWED_PORTS: '8443' });
  superadmin = await stack.token({ user: 'ops', superadmin: true });
  acmeAdmin = await stack.token({ user: 'acme-admin', tenant: 'acme', admin: true });
  for (const id of ['acme', 'globex']) {
    const answer = await stack.call('PUT', `/v1/admin/tenants/${id}`, {
      token: superadmin,
      body: { name: id },
      headers: { 'if-none-match': '*' },
    });
    expect(answer.status).toBe(201);
  }
});

afterAll(async () => {
  await stack?.stop();
});

describe('admin: authorisation', () => {
  it('401 without a token, 403 without the admin scope, 404 for another tenant (no write)', async () => {
    const user = await stack.token({ user: 'alice', tenant: 'acme' });
    expectProblem(await stack.call('GET', '/v1/admin/tenants/acme'), 401, 'unauthenticated');
    expectProblem(await stack.call('GET', '/v1/admin/tenants/acme', { token: user }), 403);
    expectProblem(await stack.call('GET', '/v1/admin/tenants/globex', { token: acmeAdmin }), 404);
    const write = await stack.call('PUT', '/v1/admin/tenants/globex/users/intruder', {
      token: acmeAdmin,
      body: {},
    });
    expectProblem(write, 404);
    expectProblem(
      await stack.call('GET', '/v1/admin/tenants/globex/users/intruder', { token: superadmin }),
      404,
      'user_not_found',
    );
    expectProblem(await stack.call('GET', '/v1/admin/tenants', { token: acmeAdmin }), 403);
    expect((await stack.call('GET', '/v1/admin/tenants', { token: superadmin })).status).toBe(200);
  });

  it('403 field_requires_superadmin for a tenant admin sending a superadmin-only field', async () => {
    const current = await stack.call('GET', '/v1/admin/tenants/acme', { token: acmeAdmin });
    for (const field of [
      { agent_names: ['x'] },
      { max_concurrent_sessions: 3 },
      { status: 'active' },
      { webhook_dispatch: true },
      { sip_trunk_ids: ['ST_x'] },
    ]) {
      const answer = await stack.call('PUT', '/v1/admin/tenants/acme', {
        token: acmeAdmin,
        body: { name: 'Acme', ...field },
        headers: { 'if-match': current.headers.get('etag')! },
      });
      expectProblem(answer, 403, 'field_requires_superadmin');
    }
  });
});

describe('admin: versions and preconditions', () => {
  it('ETag on reads and writes; 428 without a precondition; 412 version_conflict on a stale one', async () => {
    // Prepare
    const read = await stack.call('GET', '/v1/admin/tenants/acme', { token: acmeAdmin });
    const etag = read.headers.get('etag')!;

    // Act
    const missing = await stack.call('PUT', '/v1/admin/tenants/acme', {
      token: acmeAdmin,
      body: { name: 'A' },
    });
    const updated = await stack.call('PUT', '/v1/admin/tenants/acme', {
      token: acmeAdmin,
      body: { name: 'A', dispatch_policy: 'per_participant' },
      headers: { 'if-match': etag },
    });
    const stale = await stack.call('PUT', '/v1/admin/tenants/acme', {
      token: acmeAdmin,
      body: { name: 'B' },
      headers: { 'if-match': etag },
    });

    // Assess
    expect(etag).toMatch(/^"\d+"$/);
    expectProblem(missing, 428, 'precondition_required');
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).not.toBe(etag);
    expect(updated.json.dispatch_policy).toBe('per_participant');
    expectProblem(stale, 412, 'version_conflict');
  });
});

describe('admin: users', () => {
  it('write-only secrets: token_set, token_fingerprint and header names, never values', async () => {
    // Act
    const put = await stack.call('PUT', '/v1/admin/tenants/acme/users/u-secret', {
      token: acmeAdmin,
      body: {
        display_name: 'U',
        mcp: { url: 'https://1.1.1.1:8443/mcp', token: 'tok-VALUE-1', headers: { 'X-Key': 'hdr-VALUE-2' } },
      },
      headers: { 'if-none-match': '*' },
    });
    const get = await stack.call('GET', '/v1/admin/tenants/acme/users/u-secret', { token: acmeAdmin });
    const audit = await stack.call('GET', '/v1/admin/tenants/acme/audit', { token: acmeAdmin });

    // Assess
    expect(put.status).toBe(201);
    expect(get.json.mcp).toMatchObject({
      token_set: true,
      token_fingerprint: expect.any(String),
      header_names: ['X-Key'],
    });
    for (const text of [put.text, get.text, audit.text]) {
      expect(text).not.toContain('tok-VALUE-1');
      expect(text).not.toContain('hdr-VALUE-2');
    }
  });

  it('422 invalid_request for Host, Cookie, Authorization and hop-by-hop MCP headers', async () => {
    for (const name of [
      'Host',
      'Cookie',
      'Authorization',
      'Connection',
      'Transfer-Encoding',
      'Upgrade',
      'TE',
    ]) {
      const answer = await stack.call('PUT', '/v1/admin/tenants/acme/users/u-headers', {
        token: acmeAdmin,
        body: { mcp: { url: 'http://localhost:9/mcp', headers: { [name]: 'v' } } },
      });
      expectProblem(answer, 422, 'invalid_request');
      expect(JSON.stringify(answer.json.errors)).toContain(`mcp.headers.${name}`);
    }
  });

  it('400 unsafe_mcp_url for the hostile URL classes; 443 and MCP_ALLOWED_PORTS pass', async () => {
    for (const url of [
      'http://1.1.1.1/mcp',
      'https://user:pw@1.1.1.1/mcp',
      'https://1.1.1.1:9000/mcp',
      'https://10.0.0.1/', // refused (unsafe_mcp_url), never contacted
      'https://100.64.0.1/',
      'https://169.254.169.254/',
      'https://[fd00::1]/',
      'https://[fe80::1]/',
      'https://224.0.0.1/',
      'https://0.0.0.0/',
      'https://[::ffff:10.0.0.1]/',
      'https://167772161/',
      'https://0x0a000001/',
      'https://012.0.0.1/',
    ]) {
      const answer = await stack.call('PUT', '/v1/admin/tenants/acme/users/u-url', {
        token: acmeAdmin,
        body: { mcp: { url } },
      });
      expectProblem(answer, 400, 'unsafe_mcp_url');
    }
    await stack.call('PUT', '/v1/admin/tenants/acme/users/u-url-ok', { token: acmeAdmin, body: {} });
    for (const url of ['https://1.1.1.1/mcp', 'https://1.1.1.1:8443/mcp', 'http://localhost:9/mcp']) {
      const answer = await stack.call('PUT', '/v1/admin/tenants/acme/users/u-url-ok', {
        token: acmeAdmin,
        body: { mcp: { url } },
        headers: { 'if-match': '*' },
      });
      expect(answer.status).toBe(200);
      expect(answer.json.mcp.url).toBe(url);
    }
  });

  it('the same user id in another tenant is another user; 409 phone_number_taken within a tenant', async () => {
    await stack.call('PUT', '/v1/admin/tenants/acme/users/shared-id', {
      token: acmeAdmin,
      body: { phone_numbers: ['+15550100100'] },
    });
    // v3 (docs/api.md §6): users are keyed by (tenant, user id); phone numbers unique within a tenant.
    const other = await stack.call('PUT', '/v1/admin/tenants/globex/users/shared-id', {
      token: superadmin,
      body: { phone_numbers: ['+15550100100'] },
    });
    expect(other.status).toBe(201);
    expect(other.json).toMatchObject({ tenant_id: 'globex', user_id: 'shared-id' });
    expectProblem(
      await stack.call('PUT', '/v1/admin/tenants/acme/users/other', {
        token: superadmin,
        body: { phone_numbers: ['+15550100100'] },
      }),
      409,
      'phone_number_taken',
    );
  });

  it('lists take limit <= 100 and a cursor bound to the tenant', async () => {
    // Act
    const first = await stack.call('GET', '/v1/admin/tenants/acme/users?limit=1', { token: acmeAdmin });
    const next = await stack.call(
      'GET',
      `/v1/admin/tenants/acme/users?limit=1&cursor=${first.json.next_cursor}`,
      {
        token: acmeAdmin,
      },
    );
    const elsewhere = await stack.call(
      'GET',
      `/v1/admin/tenants/globex/users?limit=1&cursor=${first.json.next_cursor}`,
      { token: superadmin },
    );
    const tooMany = await stack.call('GET', '/v1/admin/tenants/acme/users?limit=101', { token: acmeAdmin });

    // Assess
    expect(first.json.items).toHaveLength(1);
    expect(typeof first.json.next_cursor).toBe('string');
    expect(next.json.items[0].user_id).not.toBe(first.json.items[0].user_id);
    expectProblem(elsewhere, 422, 'invalid_request');
    expectProblem(tooMany, 422, 'invalid_request');
  });

  it('409 tenant_has_users unless ?cascade=true', async () => {
    await stack.call('PUT', '/v1/admin/tenants/doomed', { token: superadmin, body: { name: 'd' } });
    await stack.call('PUT', '/v1/admin/tenants/doomed/users/doomed-user', { token: superadmin, body: {} });
    expectProblem(
      await stack.call('DELETE', '/v1/admin/tenants/doomed', { token: superadmin }),
      409,
      'tenant_has_users',
    );
    expect(
      (await stack.call('DELETE', '/v1/admin/tenants/doomed?cascade=true', { token: superadmin })).status,
    ).toBe(204);
    expectProblem(await stack.call('GET', '/v1/admin/tenants/doomed', { token: superadmin }), 404);
  });
});

describe('admin: scopes from another issuer', () => {
  let jwks: JwksServer;
  let other: LocalStack;

  beforeAll(async () => {
    jwks = await startJwksServer();
    other = await startLocalStack({
      AUTH_JWKS_URL: jwks.jwksUrl,
      AUTH_ISSUER: jwks.issuer,
      AUTH_AUDIENCE: jwks.audience,
      AUTH_TENANT_CLAIM: 'org',
    });
  });

  afterAll(async () => {
    await other?.stop();
    await jwks?.stop();
  });

  it('accepts a space-separated scope string or an scp array, with the tenant in AUTH_TENANT_CLAIM', async () => {
    // Prepare
    const ops = await jwks.mint({ sub: 'ops', scp: ['dispatch:superadmin'] });
    const viaScope = await jwks.mint({ sub: 'a', org: 'acme', scope: 'openid dispatch:admin' });
    const viaScp = await jwks.mint({ sub: 'a', org: 'acme', scp: ['dispatch:admin'] });
    const wrongClaim = await jwks.mint({ sub: 'a', tenant_id: 'acme', scope: 'dispatch:admin' });
    await other.call('PUT', '/v1/admin/tenants/acme', { token: ops, body: { name: 'acme' } });

    // Act
    const a = await other.call('GET', '/v1/admin/tenants/acme', { token: viaScope });
    const b = await other.call('GET', '/v1/admin/tenants/acme', { token: viaScp });
    const c = await other.call('GET', '/v1/admin/tenants/acme', { token: wrongClaim });

    // Assess
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expectProblem(c, 403);
  });
});
