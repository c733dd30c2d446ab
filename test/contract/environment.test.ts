import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compactDecrypt, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientKeyring } from '../../functions/core/oauth/client-keys.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §2 (every variable honoured) and §7 (local dev) as an outside client sees them.

const run = promisify(execFile);

describe('npm start with every setting changed', () => {
  let stack: LocalStack;
  let alice: string;

  beforeAll(async () => {
    stack = await startLocalStack({
      SESSION_DISPATCH_MODE: 'token',
      SESSION_TOKEN_TTL_SECONDS: '120',
      SESSION_RATE_LIMIT_PER_MINUTE: '2',
      METADATA_TTL_SECONDS: '300',
      DEFAULT_AGENT_NAME: 'fallback-agent',
      WEBHOOK_ROOM_PREFIX: 'pfx-',
      AUTH_TENANT_CLAIM: 'org',
      CORS_ORIGINS: 'https://app.example',
      ALLOW_INSECURE_MCP_URLS: 'false',
    });
    const superadmin = await stack.token({ user: 'ops', superadmin: true });
    await stack.call('PUT', '/v1/admin/tenants/acme', {
      token: superadmin,
      body: { name: 'Acme', mcp: { url: 'https://1.1.1.1/mcp' } },
    });
    await stack.call('PUT', '/v1/admin/tenants/acme/users/alice', { token: superadmin, body: {} });
    alice = await stack.token({ user: 'alice', tenant: 'acme' });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('honours dispatch mode, TTLs, default agent, room prefix and tenant claim', async () => {
    // Act
    const answer = await stack.call('POST', '/v1/sessions', { token: alice, body: {} });

    // Assess
    expect(answer.status).toBe(201);
    expect(answer.json.dispatch_id).toBeNull();
    expect(answer.json.agent_name).toBe('fallback-agent');
    expect(answer.json.room_name).toMatch(/^pfx-acme-/);
    expect(stack.livekit.dispatches).toHaveLength(0);
    const token = decodeJwt(answer.json.participant_token) as {
      exp: number;
      nbf: number;
      roomConfig: { agents: { agentName: string; metadata: string }[] };
    };
    // livekit-server-sdk reads the clock twice (exp first, then nbf), so a second boundary
    // between the two reads makes the difference one second shorter.
    expect([119, 120]).toContain(token.exp - token.nbf);
    const agent = token.roomConfig.agents[0]!;
    expect(agent.agentName).toBe('fallback-agent');
    const keys = JSON.parse(readFileSync(join(stack.dataDir, 'keys.json'), 'utf8'));
    const key = Buffer.from(keys.dispatch.keys[keys.dispatch.current], 'base64url');
    const sealed = JSON.parse(
      new TextDecoder().decode((await compactDecrypt(agent.metadata, key)).plaintext),
    );
    expect(sealed.exp - sealed.iat).toBe(300);
    expect(sealed.room).toBe(answer.json.room_name);
  });

  it('honours SESSION_RATE_LIMIT_PER_MINUTE', async () => {
    // Prepare
    const bob = await stack.token({ user: 'bob', tenant: 'acme' });
    const superadmin = await stack.token({ user: 'ops', superadmin: true });
    await stack.call('PUT', '/v1/admin/tenants/acme/users/bob', { token: superadmin, body: {} });

    // Act
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await stack.call('POST', '/v1/sessions', { token: bob, body: {} })).status);

    // Assess
    expect(statuses).toEqual([201, 201, 429]);
  });

  it('honours CORS_ORIGINS', async () => {
    // Act
    const allowed = await fetch(`${stack.base}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    const refused = await fetch(`${stack.base}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });

    // Assess
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('ALLOW_INSECURE_MCP_URLS=false refuses http://localhost', async () => {
    const superadmin = await stack.token({ user: 'ops', superadmin: true });
    const answer = await stack.call('PUT', '/v1/admin/tenants/acme/users/carol', {
      token: superadmin,
      body: { mcp: { url: 'http://localhost:9/mcp' } },
    });
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('unsafe_mcp_url');
  });
});

describe('npm start local development', () => {
  let stack: LocalStack;

  beforeAll(async () => {
    stack = await startLocalStack();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('writes DATA_DIR/keys.json as {"dispatch":<keyring>,"storage":<keyring>,"oauth_client":<ES256 keyring>}, readable by the owner only', () => {
    // Act
    const file = join(stack.dataDir, 'keys.json');
    const keys = JSON.parse(readFileSync(file, 'utf8'));

    // Assess
    expect(Object.keys(keys).sort()).toEqual(['dispatch', 'oauth_client', 'storage']);
    expect(parseClientKeyring(JSON.stringify(keys.oauth_client)).keys).toHaveLength(1);
    for (const ring of [keys.dispatch, keys.storage]) {
      expect(Object.keys(ring).sort()).toEqual(['current', 'keys']);
      expect(Buffer.from(ring.keys[ring.current], 'base64url')).toHaveLength(32);
    }
    expect(keys.dispatch.keys[keys.dispatch.current]).not.toBe(keys.storage.keys[keys.storage.current]);
    expect(statSync(file).mode & 0o077).toBe(0);
  });

  it('serves /healthz and the dev issuer JWKS', async () => {
    const health = await stack.call('GET', '/healthz');
    const jwks = await stack.call('GET', '/.well-known/jwks.json');
    expect(health.status).toBe(200);
    expect(jwks.status).toBe(200);
    expect(jwks.json.keys.length).toBeGreaterThan(0);
    expect(JSON.stringify(jwks.json)).not.toMatch(/"d":/);
  });

  it('npm run dev:token prints tokens the server accepts', async () => {
    // Act
    const mint = async (...args: string[]) =>
      (
        await run('npx', ['tsx', 'scripts/dev-token.ts', ...args], {
          env: { ...process.env, DATA_DIR: stack.dataDir },
        })
      ).stdout.trim();
    const user = await mint('--user', 'alice', '--tenant', 'acme');
    const admin = await mint('--user', 'boss', '--tenant', 'acme', '--admin');
    const ops = await mint('--user', 'ops', '--superadmin');

    // Assess
    expect(
      (await stack.call('PUT', '/v1/admin/tenants/acme', { token: ops, body: { name: 'A' } })).status,
    ).toBe(201);
    expect((await stack.call('GET', '/v1/admin/tenants/acme', { token: admin })).status).toBe(200);
    const session = await stack.call('POST', '/v1/sessions', { token: user, body: {} });
    expect(session.json.code).toBe('user_not_found');
  }, 30_000);
});
