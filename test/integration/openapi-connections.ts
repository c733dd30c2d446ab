import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleHash, stateBinding } from '../../functions/core/connections/context.js';
import type { ConnectionStore } from '../../functions/core/connections/ports.js';
import type { LocalServer } from '../../functions/local.js';
import { seedUser, uid } from '../support/fixtures.js';
import {
  type RunningAuthorizationServer,
  startAuthorizationServer,
} from '../support/oauth/authorization-server.js';
import {
  type RunningProtectedMcpServer,
  startProtectedMcpServer,
} from '../support/oauth/protected-mcp-server.js';

type Json = Record<string, unknown>;
type Call = (
  method: string,
  path: string,
  options?: { token?: string; body?: unknown },
) => Promise<{ status: number; body: Json; headers: Headers }>;

/**
 * The connection routes' part of test/integration/openapi.test.ts: each documented status of
 * each connection operation, answered by `npm start` against oidc-provider and a real MCP server,
 * checked against the document by the caller's `call`.
 */
export function connectionResponses(ctx: () => { call: Call; local: LocalServer; base: string }) {
  let as: RunningAuthorizationServer;
  let mcp: RunningProtectedMcpServer;
  const RETURN_TO = 'com.example.app:/oauth';
  const tenant = uid('conn');
  const t: Record<'cara' | 'cody' | 'cyd' | 'sus' | 'nobody', string> = {
    cara: '',
    cody: '',
    cyd: '',
    sus: '',
    nobody: '',
  };
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    let issuer = '';
    mcp = await startProtectedMcpServer({ issuer: () => issuer });
    as = await startAuthorizationServer({ resources: () => [mcp.url] });
    issuer = as.issuer;
    const { local } = ctx();
    const { store, secretBox } = local.services;
    const now = new Date().toISOString();
    await store.createTenant({
      tenant_id: tenant,
      name: 'Connections',
      dispatch_policy: 'per_room',
      agent_names: [],
      status: 'active',
      webhook_dispatch: false,
      sip_trunk_ids: [],
      mcp_servers: [
        { name: 'notes', url: mcp.url, webhook: false, auth: { type: 'oauth' } },
        { name: 'plain', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'user_token' } },
        { name: 'open', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'none' } },
        { name: 'dead', url: 'http://localhost:9/mcp', webhook: false, auth: { type: 'oauth' } },
      ],
      oauth_return_urls: [RETURN_TO],
      version: 0,
      created_at: now,
      updated_at: now,
    });
    for (const who of ['cara', 'cody', 'cyd', 'sus'] as const) {
      ids[who] = uid(who);
      await seedUser(store, secretBox, {
        tenant_id: tenant,
        user_id: ids[who] as string,
        ...(who === 'sus' ? { status: 'suspended' as const } : {}),
      });
    }
    for (const who of Object.keys(t) as (keyof typeof t)[]) {
      t[who] = await local.mintToken!({ user: ids[who] ?? uid('nobody'), tenant });
    }
  });
  afterAll(async () => {
    await Promise.all([as?.stop(), mcp?.stop()]);
  });

  /** A result handle as the callback stores it, for `complete` (the browser flow is in connections.test.ts). */
  async function seededResult(userId: string): Promise<string> {
    const { local } = ctx();
    const handle = uid('handle').padEnd(43, 'x');
    const store = (local.services.store as unknown as { connections: ConnectionStore }).connections;
    const body = {
      tenant_id: tenant,
      user_id: userId,
      server: 'notes',
      state_hash: 'none',
      tokens: {
        access_token: 'at',
        token_type: 'bearer',
        scopes: [],
        resource: mcp.url,
        issuer: as.issuer,
        client_id: 'c',
      },
    };
    await store.putOneTime(
      'result',
      handleHash(handle),
      {
        tenant_id: tenant,
        user_id: userId,
        server: 'notes',
        expires_at: Date.now() + 600_000,
        used: false,
        sealed: await local.services.secretBox.seal(JSON.stringify(body), stateBinding(tenant, userId)),
      },
      3600,
    );
    return handle;
  }

  describe('connection routes responses', () => {
    const ops: [string, string, unknown?][] = [
      ['GET', '/v1/connections'],
      ['GET', '/v1/connections/notes'],
      ['PUT', '/v1/connections/plain', { token: 'x' }],
      ['DELETE', '/v1/connections/plain'],
      ['POST', '/v1/connections/notes/authorize', { return_to: RETURN_TO }],
      ['POST', '/v1/connections/notes/complete', { result: 'x' }],
      ['POST', '/v1/connections/notes/test'],
    ];

    it('401 without a token, 403 for a suspended user, 404 for a user without a record', async () => {
      const { call } = ctx();
      for (const [method, path, body] of ops) {
        const b = body === undefined ? {} : { body };
        expect((await call(method, path, b)).status).toBe(401);
        expect((await call(method, path, { ...b, token: t.sus })).body.code).toBe('user_suspended');
        expect((await call(method, path, { ...b, token: t.nobody })).body.code).toBe('user_not_found');
      }
    });

    it('200, 404 server_not_found, and the refusals of each operation', async () => {
      const { call } = ctx();
      const cara = { token: t.cara };
      expect((await call('GET', '/v1/connections', cara)).status).toBe(200);
      expect((await call('GET', '/v1/connections/notes', cara)).status).toBe(200);
      for (const [method, path, body] of ops.slice(1)) {
        const res = await call(method, path.replace(/notes|plain/, 'nope'), {
          ...cara,
          ...(body === undefined ? {} : { body }),
        });
        expect(res.body.code).toBe('server_not_found');
      }
      const put = await call('PUT', '/v1/connections/plain', { ...cara, body: { token: 'user-token-0123' } });
      expect(put.body).toMatchObject({ token_set: true, status: 'connected' });
      expect((await call('PUT', '/v1/connections/notes', { ...cara, body: { token: 'x' } })).status).toBe(
        409,
      );
      expect((await call('PUT', '/v1/connections/plain', { ...cara, body: {} })).status).toBe(422);
      expect((await call('DELETE', '/v1/connections/plain', cara)).status).toBe(204);
      expect((await call('DELETE', '/v1/connections/open', cara)).body.code).toBe('wrong_auth_type');
      expect((await call('POST', '/v1/connections/plain/test', cara)).body).toEqual({
        ok: false,
        code: 'not_connected',
      });
    });

    it('authorize: 201, 409, 422, 502, 429; the callback: 303 and 400', async () => {
      const { call, base } = ctx();
      const cara = { token: t.cara };
      const started = await call('POST', '/v1/connections/notes/authorize', {
        ...cara,
        body: { return_to: RETURN_TO },
      });
      expect(started.status).toBe(201);
      const wrong = await call('POST', '/v1/connections/plain/authorize', {
        ...cara,
        body: { return_to: RETURN_TO },
      });
      expect(wrong.body.code).toBe('wrong_auth_type');
      const notAllowed = await call('POST', '/v1/connections/notes/authorize', {
        ...cara,
        body: { return_to: 'https://evil.example/' },
      });
      expect(notAllowed.body.code).toBe('return_to_not_allowed');
      const dead = await call('POST', '/v1/connections/dead/authorize', {
        ...cara,
        body: { return_to: RETURN_TO },
      });
      expect(dead.body.code).toBe('oauth_discovery_failed');
      let limited = 0;
      for (let i = 0; i < 11 && limited === 0; i++) {
        const r = await call('POST', '/v1/connections/notes/authorize', {
          token: t.cyd,
          body: { return_to: RETURN_TO },
        });
        if (r.status === 429) limited = i;
      }
      expect(limited).toBe(10);

      const state = new URL(started.body.authorization_url as string).searchParams.get('state') as string;
      const cb = await ctx().call(
        'GET',
        `/v1/oauth/callback?${new URLSearchParams({ state, error: 'access_denied', iss: as.issuer })}`,
      );
      expect(cb.status).toBe(303);
      expect(cb.headers.get('location')).toMatch(
        /^com\.example\.app:\/oauth\?server=notes&error=access_denied$/,
      );
      expect((await call('GET', '/v1/oauth/callback?state=unknown&code=x')).status).toBe(400);
      expect(base).toBeTruthy();
    });

    it('complete: 200, 403 oauth_user_mismatch, 410 result_expired, 409, 422', async () => {
      const { call } = ctx();
      const handle = await seededResult(ids.cara as string);
      const other = await call('POST', '/v1/connections/notes/complete', {
        token: t.cody,
        body: { result: handle },
      });
      expect(other.body.code).toBe('oauth_user_mismatch');
      const done = await call('POST', '/v1/connections/notes/complete', {
        token: t.cara,
        body: { result: handle },
      });
      expect(done.body).toMatchObject({ status: 'connected', server: 'notes' });
      const again = await call('POST', '/v1/connections/notes/complete', {
        token: t.cara,
        body: { result: handle },
      });
      expect(again.body.code).toBe('result_expired');
      const wrong = await call('POST', '/v1/connections/plain/complete', {
        token: t.cara,
        body: { result: handle },
      });
      expect(wrong.body.code).toBe('wrong_auth_type');
      expect((await call('POST', '/v1/connections/notes/complete', { token: t.cara, body: {} })).status).toBe(
        422,
      );
      // The seeded grant's token is no JWT of the AS: the MCP server refuses it.
      expect((await call('POST', '/v1/connections/notes/test', { token: t.cara })).body).toEqual({
        ok: false,
        code: 'mcp_auth_rejected',
      });
    });

    it('admin connections: list 200/401/403/404, delete 204/404/409', async () => {
      const { call, local } = ctx();
      const admin = { token: await local.mintToken!({ user: 'ops', tenant, admin: true }) };
      const foreign = { token: await local.mintToken!({ user: 'ops', tenant: 'elsewhere', admin: true }) };
      const path = `/v1/admin/tenants/${tenant}/users/${encodeURIComponent(ids.cody as string)}/connections`;
      const put = await call('PUT', '/v1/connections/plain', {
        token: t.cody,
        body: { token: 'cody-token-0123' },
      });
      expect(put.status).toBe(200);
      const list = await call('GET', path, admin);
      expect(list.body.items).toEqual([expect.objectContaining({ server: 'plain', status: 'connected' })]);
      expect(JSON.stringify(list.body)).not.toContain('cody-token-0123');
      expect((await call('GET', path)).status).toBe(401);
      expect((await call('GET', path, { token: t.cody })).status).toBe(403);
      expect((await call('GET', path, foreign)).body.code).toBe('tenant_not_found');
      expect((await call('DELETE', `${path}/plain`)).status).toBe(401);
      expect((await call('DELETE', `${path}/plain`, { token: t.cody })).status).toBe(403);
      expect((await call('DELETE', `${path}/nope`, admin)).body.code).toBe('server_not_found');
      expect((await call('DELETE', `${path}/open`, admin)).body.code).toBe('wrong_auth_type');
      expect((await call('DELETE', `${path}/plain`, admin)).status).toBe(204);
      expect((await call('GET', path, admin)).body.items).toEqual([]);

      const discover = (server: string) => `/v1/admin/tenants/${tenant}/servers/${server}/discover`;
      expect((await call('POST', discover('notes'), admin)).body).toMatchObject({ registration: 'dcr' });
      expect((await call('POST', discover('notes'))).status).toBe(401);
      expect((await call('POST', discover('notes'), { token: t.cody })).status).toBe(403);
      expect((await call('POST', discover('notes'), foreign)).body.code).toBe('tenant_not_found');
      expect((await call('POST', discover('nope'), admin)).body.code).toBe('server_not_found');
      expect((await call('POST', discover('plain'), admin)).body.code).toBe('wrong_auth_type');
      expect((await call('POST', discover('dead'), admin)).body.code).toBe('oauth_discovery_failed');
    });

    it('client metadata document (200, 404) and JWKS', async () => {
      const { call } = ctx();
      const doc = await call('GET', `/oauth/tenants/${tenant}/client-metadata.json`);
      expect(doc.body.client_name).toBe('Connections');
      expect((await call('GET', '/oauth/tenants/no-such-tenant/client-metadata.json')).status).toBe(404);
      expect((await call('GET', '/oauth/jwks.json')).status).toBe(200);
    });
  });
}
