import { randomBytes } from 'node:crypto';
import type { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import type { ConnectionRecord, TenantRecord } from '../../functions/core/model.js';
import type { LocalServer } from '../../functions/local.js';
import { seedUser } from '../../test/support/fixtures.js';
import { type ScriptedServer, startScriptedServer } from '../../test/support/oauth/scripted-server.js';

/**
 * Sessions of a user whose only server is a catalog OAuth server with a stored connection
 * (docs/api.md §8), in two states: the access token has hours left (no AS call expected), or it
 * is under MCP_TOKEN_MIN_TTL_SECONDS (one refresh at the AS stand-in expected, under §8's lock).
 */
export interface OAuthBench {
  /** `POST /v1/sessions` for the i-th user with a fresh token; resolves to the status. */
  fresh(i: number): Promise<string>;
  /** `POST /v1/sessions` for the i-th user whose token needs a refresh (each used once). */
  stale(i: number): Promise<string>;
  /**
   * The bare floor of the same session (issue 20, item 2): user ‖ tenant ‖ connection read,
   * open the stored access token, seal, CreateDispatch, participant token; with `refresh`, one
   * token request at the AS stand-in and one conditional UpdateItem of the connection first.
   */
  floor(i: number, refresh: boolean): Promise<void>;
  /** Token requests the AS stand-in has answered so far. */
  asCalls(): number;
  stop(): Promise<void>;
}

const TENANT = 'bench-o';
const SERVER = 'notes';
const RESOURCE = 'https://mcp.example.com/mcp';
const ISSUER = 'https://as.example.com';

/**
 * Seeds the tenant (catalog: one OAuth server), its OAuth client (a public client whose token
 * endpoint is a scripted loopback AS), `freshUsers` users with a 4 h token and `staleUsers` with
 * a 60 s one. `local` must allow loopback http (ALLOW_INSECURE_MCP_URLS) for the AS stand-in.
 */
export async function oauthBench(
  local: LocalServer,
  freshUsers: number,
  staleUsers: number,
): Promise<OAuthBench> {
  const as: ScriptedServer = await startScriptedServer();
  let calls = 0;
  as.routes.set('POST /token', () => {
    calls += 1;
    return {
      json: {
        access_token: `at-${randomBytes(16).toString('base64url')}`,
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: `rt-${randomBytes(16).toString('base64url')}`,
      },
    };
  });
  const { store, secretBox } = local.services;
  const now = new Date().toISOString();
  const tenant: TenantRecord = {
    tenant_id: TENANT,
    name: 'Bench OAuth',
    dispatch_policy: 'per_room',
    agent_names: [],
    status: 'active',
    webhook_dispatch: false,
    sip_trunk_ids: [],
    version: 0,
    created_at: now,
    updated_at: now,
    mcp_servers: [{ name: SERVER, url: RESOURCE, webhook: false, auth: { type: 'oauth' } }],
  } as TenantRecord;
  await store.createTenant(tenant);
  const conns = (store as DynamoStore).connectionStore();
  await conns.putClient({
    tenant_id: TENANT,
    issuer: ISSUER,
    as_metadata: {
      issuer: ISSUER,
      authorization_endpoint: `${as.origin}/auth`,
      token_endpoint: `${as.origin}/token`,
    },
    dcr: { client_id: 'bench-client', token_endpoint_auth_method: 'none' },
    updated_at: now,
  });
  const seed = async (userId: string, expiresInS: number) => {
    await seedUser(store, secretBox, { tenant_id: TENANT, user_id: userId });
    const bind = (f: 'token' | 'refresh_token') => ({
      tenantId: TENANT,
      userId,
      field: `conn:${SERVER}:${f}` as const,
    });
    const record = {
      tenant_id: TENANT,
      user_id: userId,
      server: SERVER,
      auth: 'oauth',
      status: 'connected',
      resource: RESOURCE,
      issuer: ISSUER,
      client_id: 'bench-client',
      rt_version: 1,
      version: 1,
      updated_at: now,
      token_sealed: await secretBox.seal('bench-access-token', bind('token')),
      token_fingerprint: secretBox.fingerprint('bench-access-token'),
      access_expires_at: Math.floor(Date.now() / 1000) + expiresInS,
      refresh_token_sealed: await secretBox.seal('bench-refresh-token', bind('refresh_token')),
    } as ConnectionRecord;
    await conns.putConnection(record, null);
    return { userId, token: await local.mintToken!({ user: userId, tenant: TENANT }) };
  };
  const freshCallers: { userId: string; token: string }[] = [];
  for (let i = 0; i < freshUsers; i++) freshCallers.push(await seed(`bench-o-fresh-${i}`, 4 * 3600));
  const staleCallers: { userId: string; token: string }[] = [];
  for (let i = 0; i < staleUsers; i++) staleCallers.push(await seed(`bench-o-stale-${i}`, 60));
  const post = async (token: string) => {
    const res = await fetch(`${local.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ participant_name: 'Bench User' }),
    });
    const json = (await res.json()) as { mcp_servers?: { name: string; status: string }[]; code?: string };
    const notes = json.mcp_servers?.find((s) => s.name === SERVER)?.status ?? json.code ?? '?';
    return `${res.status} ${notes}`;
  };
  const { sealer, livekit } = local.services;
  const floor = async (i: number, refresh: boolean) => {
    const userId = freshCallers[i % freshCallers.length]!.userId;
    const [user, , connection] = await Promise.all([
      store.getUser(TENANT, userId),
      store.getTenant(TENANT),
      conns.getConnection(TENANT, userId, SERVER),
    ]);
    if (user === undefined || connection?.token_sealed === undefined)
      throw new Error('oauth floor: seed missing');
    let token = await secretBox.open(connection.token_sealed, {
      tenantId: TENANT,
      userId,
      field: `conn:${SERVER}:token`,
    });
    if (refresh) {
      const res = await fetch(`${as.origin}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'bench-refresh-token' }),
      });
      token = ((await res.json()) as { access_token: string }).access_token;
      // One conditional write of the refreshed token (on the version read), as a bare client would.
      await conns.putConnection(
        {
          ...connection,
          token_sealed: await secretBox.seal(token, {
            tenantId: TENANT,
            userId,
            field: `conn:${SERVER}:token`,
          }),
          version: connection.version + 1,
        },
        connection.version,
      );
    }
    const room = `lk-mcp-${TENANT}-${randomBytes(12).toString('base64url')}`;
    const sealed = await sealer.seal({
      agentName: 'mcp-agent',
      userId,
      tenantId: TENANT,
      roomName: room,
      participantIdentity: userId,
      mcpServers: [
        {
          name: SERVER,
          url: RESOURCE,
          transport: 'streamable_http',
          headers: { Authorization: `Bearer ${token}` },
        },
      ],
      ttlSeconds: 7200,
    });
    await livekit.createDispatch(room, 'mcp-agent', sealed.metadata);
    await livekit.participantToken({ identity: userId, room, ttlSeconds: 900 });
  };
  return {
    floor,
    fresh: (i) => post(freshCallers[i % freshCallers.length]!.token),
    stale: (i) => {
      const c = staleCallers[i];
      if (c === undefined) throw new Error('oauth bench: more stale samples than stale users');
      return post(c.token);
    },
    asCalls: () => calls,
    stop: () => as.stop(),
  };
}
