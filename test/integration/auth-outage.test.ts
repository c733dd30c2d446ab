import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../functions/admin/app.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { createSessionApp } from '../../functions/session/app.js';
import { type Harness, seedTenant, seedUser, startHarness, testKeyring } from '../support/fixtures.js';
import { type JwksBehaviour, verifierOf } from '../support/jwks-server.js';

// CONTRACT §5/§11: a JWKS outage is 503 `auth_unavailable` (retryable, Retry-After), never a 401,
// on /v1/sessions and on the admin API; a token that is bad after a good fetch stays a 401.

let h: Harness;
const OUTAGES: JwksBehaviour[] = ['hang', 'error', 'not_json', 'not_a_key_set', 'reset'];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  h.jwks.behave('serve');
  await h.stop();
});
beforeEach(() => {
  h.jwks.behave('serve');
  h.livekitServer.reset();
});

/** Apps over a fresh verifier (no cached key set), so the next request fetches the JWKS. */
function apps() {
  const verifier = verifierOf(h.jwks, { timeoutMs: 300 });
  const session = createSessionApp({
    store: h.store,
    livekit: h.gateway,
    sealer: h.sealer,
    secretBox: h.secretBox,
    verifier,
    config: {
      defaultAgentName: 'mcp-agent',
      sessionDispatchMode: 'api',
      sessionTokenTtlSeconds: 900,
      sessionRateLimitPerMinute: 50,
      metadataTtlSeconds: 7200,
      webhookRoomPrefix: 'lk-mcp-',
      corsOrigins: [],
      livekit: { wsUrl: 'wss://livekit.example.test' },
    },
  });
  const admin = createAdminApp({
    store: h.store,
    secretBox: h.secretBox,
    verifier,
    livekit: h.gateway,
    config: { mcpAllowedPorts: [], allowInsecureMcpUrls: false, storageKeys: testKeyring('outage-storage') },
    resolveHost: async () => [{ address: '93.184.215.14', family: 4 }],
    openApiDocument: sourceOpenApiDocument,
  });
  return { session, admin };
}

async function expectUnavailable(res: Response): Promise<void> {
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(503);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(res.headers.get('www-authenticate')).toBeNull();
  expect(body).toMatchObject({ status: 503, code: 'auth_unavailable' });
}

describe('POST /v1/sessions during a JWKS outage', () => {
  it.each(OUTAGES)(
    'answers 503 auth_unavailable when the JWKS answers %s, writing nothing',
    async (outage) => {
      // Prepare
      const tenant = await seedTenant(h.store, h.secretBox, {});
      const user = await seedUser(h.store, h.secretBox, { tenant_id: tenant.tenant_id });
      const token = await h.jwks.mint({ sub: user.user_id, tenant_id: tenant.tenant_id });
      const { session } = apps();
      const before = await h.db.scan();
      h.jwks.behave(outage);

      // Act
      const res = await session.request('/v1/sessions', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });

      // Assess
      await expectUnavailable(res);
      expect(await h.db.scan()).toEqual(before);
      expect(h.livekitServer.calls).toEqual([]);
    },
  );

  it('starts the session with the same app once the JWKS answers again', async () => {
    // Prepare
    const tenant = await seedTenant(h.store, h.secretBox, {
      mcp: { url: 'https://mcp.example.com/mcp', token: 'tok-outage' },
    });
    const user = await seedUser(h.store, h.secretBox, { tenant_id: tenant.tenant_id });
    const token = await h.jwks.mint({ sub: user.user_id, tenant_id: tenant.tenant_id });
    const { session } = apps();
    const post = () =>
      session.request('/v1/sessions', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
    h.jwks.behave('error');
    await expectUnavailable(await post());

    // Act
    h.jwks.behave('serve');
    const res = await post();

    // Assess
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('keeps 401 for a token the fetched key set does not verify', async () => {
    // Prepare
    const forged = await h.jwks.mint({ sub: 'mallory', tenant_id: 'acme' }, { signWithForeignKey: true });
    const { session } = apps();

    // Act
    const res = await session.request('/v1/sessions', {
      method: 'POST',
      headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json' },
      body: '{}',
    });

    // Assess
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('unauthenticated');
  });
});

describe('admin API during a JWKS outage', () => {
  it.each(OUTAGES)(
    'answers 503 auth_unavailable when the JWKS answers %s, writing nothing',
    async (outage) => {
      // Prepare
      const operator = await h.jwks.mint({ sub: 'operator', scope: 'dispatch:superadmin' });
      const { admin } = apps();
      const before = await h.db.scan();
      h.jwks.behave(outage);

      // Act
      const list = await admin.request('/v1/admin/tenants', {
        headers: { authorization: `Bearer ${operator}` },
      });
      const put = await admin.request('/v1/admin/tenants/outage-t', {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${operator}`,
          'content-type': 'application/json',
          'if-none-match': '*',
        },
        body: JSON.stringify({ name: 'Outage' }),
      });

      // Assess
      await expectUnavailable(list);
      await expectUnavailable(put);
      expect(await h.db.scan()).toEqual(before);
    },
  );

  it('serves the same request once the JWKS answers again, and 401 for a foreign signature', async () => {
    // Prepare
    const operator = await h.jwks.mint({ sub: 'operator', scope: 'dispatch:superadmin' });
    const forged = await h.jwks.mint(
      { sub: 'operator', scope: 'dispatch:superadmin' },
      { signWithForeignKey: true },
    );
    const { admin } = apps();
    h.jwks.behave('hang');
    await expectUnavailable(
      await admin.request('/v1/admin/tenants', { headers: { authorization: `Bearer ${operator}` } }),
    );

    // Act
    h.jwks.behave('serve');
    const ok = await admin.request('/v1/admin/tenants', { headers: { authorization: `Bearer ${operator}` } });
    const refused = await admin.request('/v1/admin/tenants', {
      headers: { authorization: `Bearer ${forged}` },
    });

    // Assess
    expect(ok.status).toBe(200);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe('unauthenticated');
  });
});
