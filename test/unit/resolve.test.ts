import { describe, expect, it } from 'vitest';
import { parseKeyring } from '../../functions/core/keyring.js';
import type { StoredMcp, TenantRecord, UserRecord } from '../../functions/core/model.js';
import {
  effectiveMcpConfig,
  headerNameProblem,
  headerValueProblem,
  mcpHeadersProblems,
} from '../../functions/core/resolve.js';
import { createSecretBox, type SecretBox } from '../../functions/core/sealing.js';
import { tenantRecord, userRecord } from '../support/records.js';

const box: SecretBox = createSecretBox(
  parseKeyring('STORAGE_KEYS', { current: 'k1', keys: { k1: Buffer.alloc(32, 7).toString('base64url') } })
    .keyring!,
);

const TENANT_URL = 'https://tenant-mcp.example.com/mcp';
const USER_URL = 'https://user-mcp.example.com/mcp';

const WRITTEN = { created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };
const tenant = (mcp?: StoredMcp): TenantRecord => tenantRecord({ mcp, ...WRITTEN });
const user = (mcp?: StoredMcp): UserRecord => userRecord('acme', { mcp, ...WRITTEN });

async function secrets(
  userId: string,
  url: string,
  token?: string,
  headers?: Record<string, string>,
): Promise<StoredMcp> {
  const out: StoredMcp = { credentials_origin: new URL(url).origin };
  if (token !== undefined)
    out.token_sealed = await box.seal(token, { tenantId: 'acme', userId, field: 'token' });
  if (headers !== undefined) {
    out.headers_sealed = await box.seal(JSON.stringify(headers), {
      tenantId: 'acme',
      userId,
      field: 'headers',
    });
  }
  return out;
}

describe('effectiveMcpConfig', () => {
  it('is null when neither the user nor the tenant has a URL', async () => {
    // Act
    const grant = await effectiveMcpConfig(tenant({ name: 'x' }), user({ transport: 'sse' }), box);

    // Assess
    expect(grant).toBeNull();
  });

  it("gives the tenant's URL, token and headers with defaults to a user without MCP settings", async () => {
    // Prepare
    const t = tenant({
      url: TENANT_URL,
      ...(await secrets('', TENANT_URL, 'tenant-token', { 'X-Team': 'red' })),
    });

    // Act
    const grant = await effectiveMcpConfig(t, user(), box);

    // Assess
    expect(grant).toEqual({
      name: 'mcp',
      url: TENANT_URL,
      transport: 'streamable_http',
      headers: { 'X-Team': 'red', Authorization: 'Bearer tenant-token' },
    });
  });

  it('overrides field by field: user token on the tenant URL, tenant transport and tools', async () => {
    // Prepare
    const t = tenant({
      url: TENANT_URL,
      transport: 'sse',
      allowed_tools: ['search'],
      name: 'crm',
      ...(await secrets('', TENANT_URL, 'tenant-token', { 'X-Team': 'red' })),
    });
    const u = user({ name: 'mine', ...(await secrets('alice', TENANT_URL, 'alice-token')) });

    // Act
    const grant = await effectiveMcpConfig(t, u, box);

    // Assess
    expect(grant).toEqual({
      name: 'mine',
      url: TENANT_URL,
      transport: 'sse',
      allowed_tools: ['search'],
      headers: { 'X-Team': 'red', Authorization: 'Bearer alice-token' },
    });
  });

  it('never sends the tenant token or headers to a URL the user set', async () => {
    // Prepare
    const t = tenant({
      url: TENANT_URL,
      ...(await secrets('', TENANT_URL, 'tenant-token', { 'X-Team': 'red' })),
    });
    const u = user({ url: USER_URL });

    // Act
    const grant = await effectiveMcpConfig(t, u, box);

    // Assess
    expect(grant?.url).toBe(USER_URL);
    expect(grant?.headers).toEqual({});
  });

  it("sends the user's own token to the user's own URL", async () => {
    // Prepare
    const t = tenant({ url: TENANT_URL, ...(await secrets('', TENANT_URL, 'tenant-token')) });
    const u = user({ url: USER_URL, ...(await secrets('alice', USER_URL, 'alice-token', { 'X-A': '1' })) });

    // Act
    const grant = await effectiveMcpConfig(t, u, box);

    // Assess
    expect(grant?.headers).toEqual({ 'X-A': '1', Authorization: 'Bearer alice-token' });
  });

  it("drops a user token set for the tenant's old URL once the tenant moves to another origin", async () => {
    // Prepare
    const t = tenant({ url: 'https://new-vendor.example.net/mcp' });
    const u = user(await secrets('alice', TENANT_URL, 'alice-token'));

    // Act
    const grant = await effectiveMcpConfig(t, u, box);

    // Assess
    expect(grant?.url).toBe('https://new-vendor.example.net/mcp');
    expect(grant?.headers).toEqual({});
  });

  it('refuses a secret sealed for another user (copied ciphertext)', async () => {
    // Prepare
    const stolen = await secrets('bob', TENANT_URL, 'bob-token');
    const u = user({ url: TENANT_URL, ...stolen });

    // Act
    const outcome = effectiveMcpConfig(tenant(), u, box);

    // Assess
    await expect(outcome).rejects.toMatchObject({ code: 'secret_unreadable' });
  });
});

describe('header rules', () => {
  it.each([
    'Host',
    'cookie',
    'AUTHORIZATION',
    'Connection',
    'Keep-Alive',
    'Proxy-Authorization',
    'proxy-connection',
    'TE',
    'Trailer',
    'Transfer-Encoding',
    'Upgrade',
    'Content-Length',
    'Bad Name',
    'x:y',
    '',
    'a'.repeat(129),
  ])('refuses the header name %j', (name) => {
    expect(headerNameProblem(name)).not.toBeNull();
  });

  it.each(['X-Api-Key', 'x-tenant', 'Accept-Language', 'MCP-Session-Hint'])('allows %s', (name) => {
    expect(headerNameProblem(name)).toBeNull();
  });

  it.each(['a\r\nHost: evil', 'a\nb', 'nul\u0000', ' padded', 'ü', 'x'.repeat(4097)])(
    'refuses the value %j',
    (v) => {
      expect(headerValueProblem(v)).not.toBeNull();
    },
  );

  it('reports names, never values, and catches case-insensitive duplicates', () => {
    // Act
    const problems = mcpHeadersProblems({ 'X-A': 'secret-1', 'x-a': 'secret-2', Cookie: 'secret-3' });

    // Assess
    expect(problems.map((p) => p.name)).toEqual(['x-a', 'Cookie']);
    expect(JSON.stringify(problems)).not.toContain('secret');
  });
});
