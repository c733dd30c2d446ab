import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../functions/admin/app.js';
import type { HostResolver } from '../../functions/core/url-guard.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { errorLinesLog, type Harness, seedTenant, startHarness, uid } from '../support/fixtures.js';
import { verifierOf } from '../support/jwks-server.js';
import { bodyText, hostileKey, hostileString, prototypeSnapshot, shaped } from './hostile.js';
import { recordingStore } from './recording-store.js';

const RUNS = 1000;

let h: Harness;
let rec: ReturnType<typeof recordingStore>;
let app: ReturnType<typeof createAdminApp>;
let superJwt: string;
let protoBefore: string[];
const errorLines: string[] = [];
/** Every secret value sent (token, header value); none may ever be stored or answered in clear. */
const secretsSent = new Set<string>();

const errorLog = errorLinesLog(errorLines);

// Public addresses for the example hosts; everything else does not resolve.
const resolveHost: HostResolver = async (host) => {
  const table: Record<string, string[]> = {
    'mcp.example.com': ['93.184.215.14'],
    'internal.example.com': ['10.1.2.3'],
  };
  const answers = table[host];
  if (!answers) throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
  return answers.map((address) => ({ address, family: 4 }));
};

beforeAll(async () => {
  protoBefore = prototypeSnapshot();
  h = await startHarness();
  rec = recordingStore(h.store);
  app = createAdminApp({
    store: rec.store,
    secretBox: h.secretBox,
    verifier: verifierOf(h.jwks),
    livekit: h.gateway,
    config: { mcpAllowedPorts: [8443], allowInsecureMcpUrls: false, storageKeys: h.storageKeys },
    resolveHost,
    log: errorLog,
    openApiDocument: sourceOpenApiDocument,
  });
  superJwt = await h.jwks.mint({ sub: 'ops', scope: 'dispatch:superadmin' }, { expiresIn: '1h' });
});
afterAll(async () => {
  await h?.stop();
});

/** A tenant admin's JWT for `tenantId`, valid for the whole run. */
function tenantAdminJwt(tenantId: string): Promise<string> {
  return h.jwks.mint({ sub: 'admin', tenant_id: tenantId, scope: 'dispatch:admin' }, { expiresIn: '1h' });
}

const secretToken = fc
  .stringMatching(/^[A-Za-z0-9]{12,24}$/)
  .map((s) => `tok-${s}`)
  .map((t) => {
    secretsSent.add(t);
    return t;
  });
const secretHeaderValue = fc
  .stringMatching(/^[A-Za-z0-9]{12,24}$/)
  .map((s) => `hv-${s}`)
  .map((v) => {
    secretsSent.add(v);
    return v;
  });

const mcpShapeOf = (o: Parameters<typeof shaped>[1]) =>
  shaped(
    {
      url: fc.oneof(
        { weight: 16, arbitrary: fc.constant('https://mcp.example.com/mcp') },
        fc.constantFrom(
          'https://mcp.example.com:8443/x',
          'https://mcp.example.com:22/x',
          'http://mcp.example.com/x',
          'https://user:pw@mcp.example.com/',
          'https://internal.example.com/',
          'https://127.0.0.1/',
          'https://0x7f000001/',
          'https://2130706433/',
          'https://[::ffff:127.0.0.1]/',
          'https://169.254.169.254/latest',
          'https://[fd00::1]/',
          'https://nowhere.invalid/',
          'javascript:alert(1)',
          'https://mcp.example.com/%00',
        ),
        hostileString,
      ),
      token: fc.oneof({ weight: 3, arbitrary: secretToken }, fc.constant(null), hostileString),
      headers: fc.oneof(
        {
          weight: 3,
          arbitrary: fc.dictionary(fc.constantFrom('X-Api-Key', 'X-Team'), secretHeaderValue, { maxKeys: 2 }),
        },
        fc.dictionary(
          fc.oneof(hostileKey, fc.constantFrom('Host', 'Cookie', 'Authorization', 'Connection', 'X-Ok')),
          fc.oneof(secretHeaderValue, hostileString),
          { maxKeys: 3 },
        ),
        fc.constant(null),
      ),
      transport: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom('streamable_http', 'sse') },
        fc.constant('ws'),
      ),
      allowed_tools: fc.array(
        fc.oneof({ weight: 6, arbitrary: fc.constantFrom('search', 'a.b-c_d') }, hostileString),
        { maxLength: 3 },
      ),
      name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('main', 'x-y_z') }, hostileString),
    },
    o,
  );
const mcpShape = mcpShapeOf({ wellTypedWeight: 30, extraKeysFreq: 8, required: ['url'] });
const cleanMcp = mcpShapeOf({ wellTypedWeight: 100_000, extraKeysFreq: 100_000, required: ['url'] });

/** Text of a problem or a record; never a 5xx, never a secret sent in clear. */
function answerOk(status: number, text: string): void {
  expect(status, `${text.slice(0, 400)} ${errorLines.slice(-3).join(' ')}`).toBeLessThan(500);
  for (const secret of secretsSent) expect(text).not.toContain(secret);
  if (status >= 400) {
    const body = JSON.parse(text) as { code?: unknown };
    expect(typeof body.code).toBe('string');
  }
}

/** A refused request may have tried writes (a conditional write that lost), none succeeded. */
function noSuccessfulWrite(status: number): void {
  if (status < 300) return;
  const done = rec.writes.filter((w) => w.ok === true);
  expect(done, `status ${status}`).toEqual([]);
}

describe('fuzz: admin API with valid credentials', () => {
  it(`PUT /v1/admin/tenants/{id} (superadmin create): ${RUNS} hostile bodies`, async () => {
    // Prepare
    const shapeOf = (o: Parameters<typeof shaped>[1]) =>
      shaped(
        {
          name: fc.oneof({ weight: 3, arbitrary: fc.constant('Acme') }, hostileString),
          mcp: fc.oneof(o?.wellTypedWeight === 100_000 ? cleanMcp : mcpShape, fc.constant(null)),
          dispatch_policy: fc.oneof(
            { weight: 8, arbitrary: fc.constantFrom('per_room', 'per_participant') },
            fc.constant('bogus'),
          ),
          agent_names: fc.array(
            fc.oneof({ weight: 6, arbitrary: fc.constantFrom('mcp-agent', 'b.c') }, hostileString),
            { maxLength: 3 },
          ),
          max_concurrent_sessions: fc.oneof(
            { weight: 6, arbitrary: fc.integer({ min: 1, max: 100 }) },
            fc.integer({ min: -2, max: 200_000 }),
            fc.constant(null),
            fc.double(),
          ),
          status: fc.oneof(
            { weight: 8, arbitrary: fc.constantFrom('active', 'suspended') },
            fc.constant('deleted'),
          ),
          webhook_dispatch: fc.oneof({ weight: 6, arbitrary: fc.boolean() }, fc.constant('true')),
          sip_trunk_ids: fc.array(
            fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^ST_[A-Za-z0-9]{6,10}$/) }, hostileString),
            { maxLength: 2 },
          ),
        },
        o,
      );
    const shape = shapeOf({ wellTypedWeight: 30, extraKeysFreq: 8, required: ['name'] });
    // Well-typed bodies only (names, URLs, tokens still vary), so the write path is always reached.
    const clean = shapeOf({ wellTypedWeight: 100_000, extraKeysFreq: 100_000, required: ['name'] }).map((o) =>
      JSON.stringify(o),
    );
    const seen = new Map<number, number>();

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(fc.oneof(bodyText(shape, 16), clean), async (body) => {
        rec.writes.length = 0;
        const id = `fz-${uid('t').toLowerCase()}`;
        const res = await app.request(`/v1/admin/tenants/${id}`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${superJwt}`,
            'content-type': 'application/json',
            'if-none-match': '*',
          },
          body,
        });
        const text = await res.text();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        answerOk(res.status, text);
        noSuccessfulWrite(res.status);
        if (res.status === 201) expect(await h.store.getTenant(id)).toBeDefined();
        else expect(await h.store.getTenant(id)).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
    // The write path is reached too (the valid-only property below covers it in depth).
    expect(seen.get(201) ?? 0).toBeGreaterThan(5);
    expect(seen.get(422) ?? 0).toBeGreaterThan(50);
  }, 120_000);

  it(`PUT /v1/admin/tenants/{id}/users/{id} (tenant admin create): ${RUNS} hostile bodies`, async () => {
    // Prepare
    const tenant = await seedTenant(h.store, h.secretBox, {
      mcp: { url: 'https://mcp.example.com/t', token: 'tok-tenant-0123456789' },
    });
    secretsSent.add('tok-tenant-0123456789');
    const adminJwt = await tenantAdminJwt(tenant.tenant_id);
    const shapeOf = (o: Parameters<typeof shaped>[1]) =>
      shaped(
        {
          display_name: fc.oneof(
            { weight: 4, arbitrary: fc.constant('Alice') },
            hostileString,
            fc.constant(null),
          ),
          phone_numbers: fc.array(
            fc.oneof(
              {
                weight: 6,
                arbitrary: fc.integer({ min: 1_000_000, max: 9_999_999 }).map((n) => `+1555${n}`),
              },
              hostileString,
            ),
            { maxLength: 3 },
          ),
          mcp: fc.oneof(o?.wellTypedWeight === 100_000 ? cleanMcp : mcpShape, fc.constant(null)),
          status: fc.oneof(
            { weight: 8, arbitrary: fc.constantFrom('active', 'suspended') },
            fc.constant('gone'),
          ),
        },
        o,
      );
    const shape = shapeOf({ wellTypedWeight: 30, extraKeysFreq: 8 });
    // Well-typed bodies only (names, URLs, tokens still vary), so the write path is always reached.
    const clean = shapeOf({ wellTypedWeight: 100_000, extraKeysFreq: 100_000 }).map((o) => JSON.stringify(o));
    const userIdArb = fc.oneof(
      { weight: 6, arbitrary: fc.constant('') },
      fc.constantFrom('__proto__', 'constructor', 'a%23b', 'a#b', '🙂', 'x'.repeat(255)),
    );
    const seen = new Map<number, number>();

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(fc.oneof(bodyText(shape, 16), clean), userIdArb, async (body, idPart) => {
        rec.writes.length = 0;
        const userId = `${idPart === '' ? uid('u') : `${idPart}${uid('')}`}`.slice(0, 255);
        const res = await app.request(
          `/v1/admin/tenants/${tenant.tenant_id}/users/${encodeURIComponent(userId)}`,
          {
            method: 'PUT',
            headers: {
              authorization: `Bearer ${adminJwt}`,
              'content-type': 'application/json',
              'if-none-match': '*',
            },
            body,
          },
        );
        const text = await res.text();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        answerOk(res.status, text);
        noSuccessfulWrite(res.status);
      }),
      { numRuns: RUNS },
    );
    // The write path is reached too (the valid-only property below covers it in depth).
    expect(seen.get(201) ?? 0).toBeGreaterThan(5);
    expect(seen.get(422) ?? 0).toBeGreaterThan(50);
  }, 120_000);

  it('PUT users with 200 valid bodies (unicode names, tokens, headers): all 201, secrets write-only', async () => {
    // Prepare
    const tenant = await seedTenant(h.store, h.secretBox);
    const adminJwt = await tenantAdminJwt(tenant.tenant_id);
    const valid = fc.record(
      {
        display_name: fc
          .string({ minLength: 1, maxLength: 60, unit: 'grapheme' })
          .filter((v) => !/\p{Cc}/u.test(v)),
        mcp: fc.record(
          {
            url: fc.constantFrom('https://mcp.example.com/mcp', 'https://mcp.example.com:8443/x?q=1#f'),
            token: secretToken,
            headers: fc.dictionary(fc.constantFrom('X-Api-Key', 'X-Team', 'x-trace'), secretHeaderValue, {
              maxKeys: 3,
            }),
            transport: fc.constantFrom('streamable_http', 'sse'),
            allowed_tools: fc.array(fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/), { maxLength: 4 }),
          },
          { requiredKeys: ['url'] },
        ),
        status: fc.constantFrom('active', 'suspended'),
      },
      { requiredKeys: [] },
    );

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(valid, async (body) => {
        rec.writes.length = 0;
        const res = await app.request(`/v1/admin/tenants/${tenant.tenant_id}/users/${uid('v')}`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${adminJwt}`,
            'content-type': 'application/json',
            'if-none-match': '*',
          },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        answerOk(res.status, text);
        expect(res.status, text).toBe(201);
      }),
      { numRuns: 200 },
    );
  }, 120_000);

  it(`GET /v1/admin/tenants/{id}/users with ${RUNS} hostile queries: no 5xx, nothing written`, async () => {
    // Prepare
    const tenant = await seedTenant(h.store, h.secretBox);
    const adminJwt = await tenantAdminJwt(tenant.tenant_id);
    const query = fc.dictionary(
      fc.oneof(fc.constantFrom('limit', 'cursor'), hostileKey),
      fc.oneof(fc.constantFrom('1', '100', '101', '0', '-1', '1e2', 'eyJ4IjoxfQ', 'AAAA'), hostileString),
      { maxKeys: 3 },
    );

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        rec.writes.length = 0;
        const search = new URLSearchParams();
        for (const [k, v] of Object.entries(q)) search.append(k, v);
        const res = await app.request(`/v1/admin/tenants/${tenant.tenant_id}/users?${search}`, {
          headers: { authorization: `Bearer ${adminJwt}` },
        });
        answerOk(res.status, await res.text());
        expect(rec.writes.filter((w) => w.ok === true)).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it('afterwards: no secret sent is stored in clear anywhere in the table; no prototype was polluted', async () => {
    // Act
    const table = JSON.stringify(await h.db.scan());

    // Assess
    expect(secretsSent.size).toBeGreaterThan(100);
    for (const secret of secretsSent) expect(table).not.toContain(secret);
    expect(prototypeSnapshot()).toEqual(protoBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
