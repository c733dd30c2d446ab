import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../functions/admin/app.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { type Harness, startHarness } from '../support/fixtures.js';
import { verifierOf } from '../support/jwks-server.js';

// CONTRACT §6: MCP `headers` may not set Host, Cookie, Authorization, hop-by-hop headers or the
// MCP transport's own; prototype keys are refused, never cleared silently. A refusal is 422
// invalid_request naming the field, and writes nothing (the table is compared item by item).

let h: Harness;
let app: ReturnType<typeof createAdminApp>;
let operator: string;

beforeAll(async () => {
  h = await startHarness();
  app = createAdminApp({
    store: h.store,
    secretBox: h.secretBox,
    verifier: verifierOf(h.jwks),
    livekit: h.gateway,
    config: { mcpAllowedPorts: [], allowInsecureMcpUrls: false, storageKeys: h.storageKeys },
    resolveHost: async () => [{ address: '93.184.215.14', family: 4 }],
    openApiDocument: sourceOpenApiDocument,
  });
  operator = await h.jwks.mint({ sub: 'operator', scope: 'dispatch:superadmin' });
});
afterAll(async () => {
  await h.stop();
});

/** Sends `body` exactly as given (raw JSON text, so JSON.parse makes any `__proto__` an own key). */
async function put(path: string, body: string, precondition: Record<string, string>) {
  const res = await app.request(path, {
    method: 'PUT',
    headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json', ...precondition },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    text,
    json: text ? JSON.parse(text) : undefined,
  };
}

const mcpWith = (headers: string) =>
  `{"url":"https://mcp.example.com/mcp","token":"tok-h","headers":${headers}}`;
const CREATE = { 'if-none-match': '*' };

const REFUSED: [string, string][] = [
  ['__proto__ with a string', '{"__proto__":"x"}'],
  ['__proto__ with an object', '{"__proto__":{"X-Injected":"1"}}'],
  ['__proto__ beside a good header', '{"X-Ok":"1","__proto__":"x"}'],
  ['constructor', '{"constructor":"x"}'],
  ['prototype', '{"prototype":"x"}'],
  ['Content-Type', '{"Content-Type":"text/plain"}'],
  ['content-length', '{"content-length":"0"}'],
  ['ACCEPT', '{"ACCEPT":"*/*"}'],
  ['Mcp-Session-Id', '{"Mcp-Session-Id":"stolen"}'],
  ['mcp-protocol-version', '{"mcp-protocol-version":"2024-11-05"}'],
  ['Content-Encoding', '{"Content-Encoding":"gzip"}'],
  ['Origin', '{"Origin":"https://evil.example"}'],
  ['Set-Cookie', '{"Set-Cookie":"a=b"}'],
  ['X-Forwarded-For', '{"X-Forwarded-For":"10.0.0.1"}'],
  ['Forwarded', '{"Forwarded":"for=10.0.0.1"}'],
  ['Host', '{"Host":"evil.example"}'],
  ['Transfer-Encoding', '{"Transfer-Encoding":"chunked"}'],
];

/** The header name a refusal must name: the map's key that is refused. */
function refusedName(headers: string): string {
  const names = Object.keys(JSON.parse(headers) as object);
  return names.find((n) => n !== 'X-Ok')!;
}

describe('admin API: MCP header rule', () => {
  it.each(REFUSED)('refuses a tenant create with %s, writing nothing', async (_label, headers) => {
    // Prepare
    const before = await h.db.scan();

    // Act
    const res = await put('/v1/admin/tenants/hdr-new', `{"name":"H","mcp":${mcpWith(headers)}}`, CREATE);

    // Assess
    expect(res.status, res.text).toBe(422);
    expect(res.json.code).toBe('invalid_request');
    expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual([
      `mcp.headers.${refusedName(headers)}`,
    ]);
    expect(res.text).not.toContain('tok-h');
    expect(await h.db.scan()).toEqual(before);
  });

  it.each(REFUSED)(
    'refuses an update of a user with %s, leaving the records as they were',
    async (_l, headers) => {
      // Prepare: a tenant and a user with headers of their own
      const tenant = `hdr-${Math.random().toString(36).slice(2, 10)}`;
      const user = `${tenant}-alice`;
      expect((await put(`/v1/admin/tenants/${tenant}`, '{"name":"H"}', CREATE)).status).toBe(201);
      const created = await put(
        `/v1/admin/tenants/${tenant}/users/${user}`,
        `{"mcp":${mcpWith('{"X-Api-Key":"kept"}')}}`,
        CREATE,
      );
      expect(created.status, created.text).toBe(201);
      const before = await h.db.scan();

      // Act
      const res = await put(`/v1/admin/tenants/${tenant}/users/${user}`, `{"mcp":${mcpWith(headers)}}`, {
        'if-match': created.etag!,
      });

      // Assess
      expect(res.status, res.text).toBe(422);
      expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual([
        `mcp.headers.${refusedName(headers)}`,
      ]);
      expect(await h.db.scan()).toEqual(before);
      const read = await app.request(`/v1/admin/tenants/${tenant}/users/${user}`, {
        headers: { authorization: `Bearer ${operator}` },
      });
      expect(await read.json()).toMatchObject({ version: 1, mcp: { header_names: ['X-Api-Key'] } });
    },
  );

  it('refuses __proto__ as a field of the body and of mcp, writing nothing', async () => {
    // Prepare
    const before = await h.db.scan();

    // Act
    const top = await put(
      '/v1/admin/tenants/hdr-top',
      '{"name":"H","__proto__":{"status":"suspended"}}',
      CREATE,
    );
    const nested = await put(
      '/v1/admin/tenants/hdr-top',
      '{"name":"H","mcp":{"url":"https://mcp.example.com/mcp","__proto__":{"token":"t"}}}',
      CREATE,
    );

    // Assess
    expect(top.status).toBe(422);
    expect(top.json.errors).toEqual([{ path: '', message: 'unknown field __proto__' }]);
    expect(nested.status).toBe(422);
    expect(nested.json.errors).toEqual([{ path: 'mcp', message: 'unknown field __proto__' }]);
    expect(await h.db.scan()).toEqual(before);
  });

  it('accepts the same body with an allowed header (the rule refuses only what it names)', async () => {
    const res = await put(
      '/v1/admin/tenants/hdr-ok',
      `{"name":"H","mcp":${mcpWith('{"X-Api-Key":"k","Accept-Language":"de"}')}}`,
      CREATE,
    );
    expect(res.status, res.text).toBe(201);
    expect(res.json.mcp.header_names).toEqual(['Accept-Language', 'X-Api-Key']);
  });
});
