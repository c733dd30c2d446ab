import { lookup } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../functions/adapters/safe-fetch.js';
import { createTokenSource } from '../../functions/core/connections/token-source.js';
import { silentLog } from '../../functions/core/log.js';
import type { ConnectionRecord } from '../../functions/core/model.js';
import { type Harness, startHarness } from '../support/fixtures.js';
import { type ScriptedServer, startScriptedServer } from '../support/oauth/scripted-server.js';
import { type RenewalRig, renew, renewalRig, type Started, startSession } from '../support/renewal.js';

// docs/api.md §9: a worker's `rejected` report forces one refresh of that server's OAuth token
// (§8), through the credentials app composed as the function is (strongly consistent connection
// reads, the refreshing token source) against dynalite and a scripted authorization server.

const ISSUER = 'https://as.example.com';
const RESOURCE = 'https://notes.example.com/mcp';

let h: Harness;
let as: ScriptedServer;
let rig: RenewalRig;

beforeAll(async () => {
  [h, as] = await Promise.all([startHarness(), startScriptedServer()]);
  const oauthTokens = createTokenSource({
    store: h.store.connectionStore(),
    secretBox: h.secretBox,
    // The AS is on loopback over http: the test's safe fetch allows that (the address rule is
    // tested in oauth-safe-fetch.test.ts).
    fetch: createSafeFetch({
      allowedPorts: [],
      allowInsecure: true,
      resolve: async (host) => [...(await lookup(host, { all: true }))],
    }),
    clock: Date.now,
    log: silentLog,
    config: {
      publicBaseUrl: 'https://api.example.com',
      oauthStateTtlSeconds: 600,
      mcpTokenMinTtlSeconds: 300,
      allowInsecureMcpUrls: true,
    },
    refreshPollMs: 20,
  });
  rig = renewalRig(h, { oauth: { connectionReader: h.store.connections, oauthTokens } });
}, 30_000);

afterAll(async () => {
  await Promise.all([h?.stop(), as?.stop()]);
});

/**
 * A started session whose tenant lists `notes` (oauth) and whose user holds a grant an hour
 * fresh; `metadata` is the job's after its start renewal, so it holds the `notes` token.
 */
async function oauthSession(): Promise<Started & { connection: ConnectionRecord }> {
  const s = await startSession(h, rig);
  const tenant = (await h.store.getTenant(s.tenantId))!;
  await h.store.updateTenant(
    { ...tenant, mcp_servers: [{ name: 'notes', url: RESOURCE, webhook: false, auth: { type: 'oauth' } }] },
    tenant.version,
  );
  await h.store.connections.putClient({
    tenant_id: s.tenantId,
    issuer: ISSUER,
    as_metadata: {
      issuer: ISSUER,
      authorization_endpoint: `${as.origin}/auth`,
      token_endpoint: `${as.origin}/token`,
    },
    dcr: { client_id: 'client-1', token_endpoint_auth_method: 'none' },
    updated_at: new Date().toISOString(),
  });
  const bind = (f: 'token' | 'refresh_token') => ({
    tenantId: s.tenantId,
    userId: s.userId,
    field: `conn:notes:${f}` as const,
  });
  const connection: ConnectionRecord = {
    tenant_id: s.tenantId,
    user_id: s.userId,
    server: 'notes',
    auth: 'oauth',
    status: 'connected',
    resource: RESOURCE,
    issuer: ISSUER,
    client_id: 'client-1',
    scopes: ['notes:read'],
    token_sealed: await h.secretBox.seal(`old-token-of-${s.userId}`, bind('token')),
    token_fingerprint: h.secretBox.fingerprint(`old-token-of-${s.userId}`),
    access_expires_at: Math.floor(Date.now() / 1000) + 3600,
    refresh_token_sealed: await h.secretBox.seal(`old-rt-of-${s.userId}`, bind('refresh_token')),
    rt_version: 1,
    version: 1,
    updated_at: new Date().toISOString(),
  };
  await h.store.connections.putConnection(connection, null);
  as.routes.delete('POST /token');
  const start = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
  expect(await notesAuthorization(start.json.metadata)).toBe(`Bearer old-token-of-${s.userId}`);
  return { ...s, metadata: start.json.metadata as string, connection };
}

/** The `Authorization` the renewed metadata seals for `notes`, or undefined. */
async function notesAuthorization(metadata: unknown): Promise<string | undefined> {
  const claims = await rig.open(metadata as string);
  return claims.mcp_servers.find((g) => g.name === 'notes')?.headers.Authorization;
}

/** Scripts the token endpoint: each refresh answers a new token named by its count; late by `delayMs`. */
function scriptRefresh(delayMs = 0): { bodies: string[] } {
  const bodies: string[] = [];
  as.routes.set('POST /token', (_req, body) => {
    bodies.push(body);
    return {
      status: 200,
      json: {
        access_token: `refreshed-${bodies.length}`,
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: `rotated-${bodies.length}`,
      },
      delayMs,
    };
  });
  return { bodies };
}

/** The `unavailable` entries of renewed metadata. */
async function unavailableOf(metadata: unknown) {
  return (await rig.open(metadata as string)).unavailable;
}

describe('a worker reports an OAuth server rejected its token (§9 `rejected`)', () => {
  it('without a report, an unexpired token is renewed as stored: no token request', async () => {
    // Prepare
    const s = await oauthSession();
    const { bodies } = scriptRefresh();
    // Act
    const res = await renew(h, rig, { sid: s.session.sid, metadata: s.metadata });
    // Assess
    expect(res.status).toBe(200);
    expect(await notesAuthorization(res.json.metadata)).toBe(`Bearer old-token-of-${s.userId}`);
    expect(bodies).toEqual([]);
  });

  it('the refreshed token rejected again: needs_reauth, no second refresh, the job loses the server', async () => {
    // Prepare: one rejection, one forced refresh; the job now holds refreshed-1.
    const s = await oauthSession();
    const { bodies } = scriptRefresh();
    const first = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 401 }],
    });
    expect(await notesAuthorization(first.json.metadata)).toBe('Bearer refreshed-1');
    // Act: the MCP server refuses refreshed-1 too.
    const second = await renew(h, rig, {
      sid: s.session.sid,
      metadata: first.json.metadata as string,
      rejected: [{ name: 'notes', status: 401 }],
    });
    // Assess
    expect(second.status).toBe(200);
    expect(await notesAuthorization(second.json.metadata)).toBeUndefined();
    expect(await unavailableOf(second.json.metadata)).toEqual([
      { name: 'notes', status: 'needs_reauth', code: 'mcp_reauth_required' },
    ]);
    expect(bodies).toHaveLength(1);
    expect(await h.store.connections.getConnection(s.tenantId, s.userId, 'notes')).toMatchObject({
      status: 'needs_reauth',
      reason: 'invalid_grant',
    });
  });

  it('a 403 naming the scope it lacks: needs_reauth insufficient_scope with required_scopes, no refresh', async () => {
    // Prepare
    const s = await oauthSession();
    const { bodies } = scriptRefresh();
    // Act
    const res = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 403, scope: 'notes:read notes:write' }],
    });
    // Assess
    expect(res.status).toBe(200);
    expect(await notesAuthorization(res.json.metadata)).toBeUndefined();
    expect(await unavailableOf(res.json.metadata)).toEqual([
      { name: 'notes', status: 'needs_reauth', code: 'mcp_reauth_required' },
    ]);
    expect(bodies).toEqual([]);
    expect(await h.store.connections.getConnection(s.tenantId, s.userId, 'notes')).toMatchObject({
      status: 'needs_reauth',
      reason: 'insufficient_scope',
      required_scopes: ['notes:read', 'notes:write'],
    });
  });

  it('a report about a token replaced since: the stored token is sealed, no refresh', async () => {
    // Prepare: the job holds the old token; another renewal's refresh stored refreshed-1 since.
    const s = await oauthSession();
    const { bodies } = scriptRefresh();
    const other = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 401 }],
    });
    expect(await notesAuthorization(other.json.metadata)).toBe('Bearer refreshed-1');
    // Act: a late report about the old token, with the old metadata.
    const late = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 401 }],
    });
    // Assess: refreshed-1 is not the token reported, so it is neither refreshed nor marked.
    expect(await notesAuthorization(late.json.metadata)).toBe('Bearer refreshed-1');
    expect(bodies).toHaveLength(1);
    expect(await h.store.connections.getConnection(s.tenantId, s.userId, 'notes')).toMatchObject({
      status: 'connected',
      rt_version: 2,
    });
  });

  it('a 401 report refreshes that token once, seals the new one and stores the rotated grant', async () => {
    // Prepare
    const s = await oauthSession();
    const { bodies } = scriptRefresh();
    // Act
    const res = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 401 }],
    });
    // Assess: one refresh_token grant with the stored refresh token, its result sealed and stored.
    expect(res.status).toBe(200);
    expect(await notesAuthorization(res.json.metadata)).toBe('Bearer refreshed-1');
    expect(bodies).toHaveLength(1);
    const form = new URLSearchParams(bodies[0]);
    expect(form.get('grant_type')).toBe('refresh_token');
    expect(form.get('refresh_token')).toBe(`old-rt-of-${s.userId}`);
    const after = await h.store.connections.getConnection(s.tenantId, s.userId, 'notes');
    expect(after).toMatchObject({ status: 'connected', rt_version: 2 });
    expect(after?.token_fingerprint).toBe(h.secretBox.fingerprint('refreshed-1'));
    expect(after?.refresh_lock).toBeUndefined();
  });

  it('two jobs reporting the same token at once cause one refresh; both get the new token', async () => {
    // Prepare: the token request is slow, so the second renewal finds the refresh lock held.
    const s = await oauthSession();
    const { bodies } = scriptRefresh(300);
    const report = { sid: s.session.sid, metadata: s.metadata, rejected: [{ name: 'notes', status: 403 }] };
    // Act
    const [a, b] = await Promise.all([renew(h, rig, report), renew(h, rig, report)]);
    // Assess
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(bodies).toHaveLength(1);
    expect(await notesAuthorization(a.json.metadata)).toBe('Bearer refreshed-1');
    expect(await notesAuthorization(b.json.metadata)).toBe('Bearer refreshed-1');
  });

  it('a report the authorization server cannot answer: the rejected token is not sealed again', async () => {
    // Prepare
    const s = await oauthSession();
    as.routes.set('POST /token', { status: 503, body: 'down' });
    // Act
    const res = await renew(h, rig, {
      sid: s.session.sid,
      metadata: s.metadata,
      rejected: [{ name: 'notes', status: 401 }],
    });
    // Assess: 200 with the server listed unavailable, never the token the MCP server refused.
    expect(res.status).toBe(200);
    const claims = await rig.open(res.json.metadata as string);
    expect(claims.mcp_servers.map((g) => g.name)).toEqual(['mcp']);
    expect(claims.unavailable).toEqual([expect.objectContaining({ name: 'notes', status: 'unavailable' })]);
  });
});
