import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { isUserId, USER_ID_PATTERN } from '@livekit-mcp-dispatch/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableClient } from '../../functions/adapters/dynamo/client.js';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createLiveKitGateway } from '../../functions/adapters/livekit.js';
import { keys } from '../../functions/adapters/schema.js';
import { createAdminApp } from '../../functions/admin/app.js';
import { KeyTooLongError } from '../../functions/core/errors.js';
import { parseKeyring } from '../../functions/core/keyring.js';
import { createSecretBox } from '../../functions/core/sealing.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { type JwksServer, startJwksServer, verifierOf } from '../support/jwks-server.js';
import { type LiveKitStandIn, startLiveKitStandIn } from '../support/livekit-standin.js';
import { sessionRecord, userRecord } from '../support/records.js';

// docs/api.md §6 and §10: identity per tenant, ids of every allowed length, versions that never
// repeat for an id, and a tenant delete that only a superadmin may make. Over the real admin app
// on dynalite.

const LK = { apiKey: 'identity-key', apiSecret: 'identity-secret-with-enough-length-0123456789' };
const storageKeys = parseKeyring('STORAGE_KEYS', {
  current: 'k1',
  keys: { k1: Buffer.alloc(32, 9).toString('base64url') },
}).keyring!;

let db: TestDynamo;
let jwks: JwksServer;
let livekit: LiveKitStandIn;
let store: DynamoStore;
let app: ReturnType<typeof createAdminApp>;
let superadmin: string;

interface Sent {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
  json: any;
}

async function send(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const headers: Record<string, string> = { ...options.headers };
  headers.authorization = `Bearer ${options.token ?? superadmin}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

const userUrl = (tenantId: string, userId: string) =>
  `/v1/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}`;

async function createTenant(id: string): Promise<void> {
  const res = await send('PUT', `/v1/admin/tenants/${id}`, {
    headers: { 'if-none-match': '*' },
    body: { name: `Tenant ${id}` },
  });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
}

/** A seeded pseudo-random generator (mulberry32): the same seed gives the same ids every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters that stress keys: the separator, the escape, 1- to 4-byte UTF-8, a joiner. */
const ALPHABET = ['#', '%', '2', '3', 'a', 'Z', '|', 'é', '中', '\u{1F389}', '\u200d', '%23', '%u'];

/** A user id the contract allows: 1-255 code points from {@link ALPHABET}, often the longest. */
function randomUserId(next: () => number): string {
  const length = next() < 0.4 ? 255 : 1 + Math.floor(next() * 255);
  let out: string[] = [];
  while (out.length < length) out.push(...ALPHABET[Math.floor(next() * ALPHABET.length)]!);
  out = out.slice(0, length);
  return out.join('');
}

beforeAll(async () => {
  [db, jwks, livekit] = await Promise.all([startDynalite(), startJwksServer(), startLiveKitStandIn(LK)]);
  store = new DynamoStore({ client: db.client, tableName: db.tableName });
  app = createAdminApp({
    store,
    secretBox: createSecretBox(storageKeys),
    verifier: verifierOf(jwks),
    livekit: createLiveKitGateway({ httpUrl: livekit.url, ...LK }),
    config: { mcpAllowedPorts: [], allowInsecureMcpUrls: false, storageKeys },
    resolveHost: async () => [{ address: '93.184.215.14', family: 4 }],
    openApiDocument: sourceOpenApiDocument,
  });
  superadmin = await jwks.mint({ sub: 'operator', scope: 'dispatch:superadmin' });
  await createTenant('ident-a');
  await createTenant('ident-b');
});

afterAll(async () => {
  await Promise.all([db?.stop(), jwks?.stop(), livekit?.stop()]);
});

describe('tenant delete and list are superadmin-only (docs/api.md §6)', () => {
  it("answers a tenant admin's DELETE of its own tenant 403, writing nothing; its list 403", async () => {
    // Prepare
    const admin = await jwks.mint({ sub: 'a-admin', tenant_id: 'ident-a', scope: 'dispatch:admin' });
    const before = JSON.stringify(await db.scan());

    // Act
    const deleted = await send('DELETE', '/v1/admin/tenants/ident-a?cascade=true', { token: admin });
    const listed = await send('GET', '/v1/admin/tenants', { token: admin });
    const other = await send('DELETE', '/v1/admin/tenants/ident-b', { token: admin });

    // Assess
    expect(deleted.status).toBe(403);
    expect(deleted.json.code).toBe('forbidden');
    expect(listed.status).toBe(403);
    expect(other.status).toBe(404);
    expect(JSON.stringify(await db.scan())).toBe(before);
    expect((await send('GET', '/v1/admin/tenants/ident-a', { token: admin })).status).toBe(200);
  });
});

describe('versions never repeat for an id (docs/api.md §10)', () => {
  it('a user re-created after a delete refuses an If-Match from before the delete', async () => {
    // Prepare: v1, v2, deleted.
    const url = userUrl('ident-a', 'again');
    expect((await send('PUT', url, { headers: { 'if-none-match': '*' }, body: {} })).status).toBe(201);
    const v2 = await send('PUT', url, { headers: { 'if-match': '"1"' }, body: { display_name: 'Two' } });
    expect(v2.headers.get('etag')).toBe('"2"');
    expect((await send('DELETE', url, { headers: { 'if-match': '"2"' } })).status).toBe(204);

    // Act
    const recreated = await send('PUT', url, { headers: { 'if-none-match': '*' }, body: {} });
    const stale = await send('PUT', url, { headers: { 'if-match': '"2"' }, body: { display_name: 'Stale' } });
    const staleFirst = await send('PUT', url, { headers: { 'if-match': '"1"' }, body: {} });
    const staleDelete = await send('DELETE', url, { headers: { 'if-match': '"2"' } });
    const current = recreated.headers.get('etag')!;
    const fresh = await send('PUT', url, { headers: { 'if-match': current }, body: { display_name: 'New' } });

    // Assess
    expect(recreated.status).toBe(201);
    expect(recreated.json.version).toBeGreaterThan(2);
    expect(stale.status).toBe(412);
    expect(stale.json.code).toBe('version_conflict');
    expect(staleFirst.status).toBe(412);
    expect(staleDelete.status).toBe(412);
    expect(fresh.status).toBe(200);
    expect(fresh.json).toMatchObject({ display_name: 'New', version: recreated.json.version + 1 });
    // The tombstone is not a user: it is neither listed nor read.
    const list = await send('GET', '/v1/admin/tenants/ident-a/users?limit=100');
    expect(list.json.items.filter((u: { user_id: string }) => u.user_id === 'again')).toHaveLength(1);
  });

  it('a tenant re-created after a delete refuses an If-Match from before the delete', async () => {
    // Prepare
    await createTenant('ident-again');
    const v2 = await send('PUT', '/v1/admin/tenants/ident-again', {
      headers: { 'if-match': '"1"' },
      body: { name: 'Two' },
    });
    expect(v2.status).toBe(200);
    expect((await send('DELETE', '/v1/admin/tenants/ident-again')).status).toBe(204);
    expect((await send('GET', '/v1/admin/tenants/ident-again')).status).toBe(404);

    // Act
    const recreated = await send('PUT', '/v1/admin/tenants/ident-again', {
      headers: { 'if-none-match': '*' },
      body: { name: 'Again' },
    });
    const stale = await send('PUT', '/v1/admin/tenants/ident-again', {
      headers: { 'if-match': '"2"' },
      body: { name: 'Stale' },
    });

    // Assess
    expect(recreated.status).toBe(201);
    expect(recreated.json.version).toBeGreaterThan(2);
    expect(stale.status).toBe(412);
    expect((await send('GET', '/v1/admin/tenants/ident-again')).json.name).toBe('Again');
  });
});

describe('every user id the contract allows round-trips (docs/api.md §6)', () => {
  const ids = [
    '中'.repeat(255),
    '%'.repeat(255),
    '#'.repeat(255),
    '\u{1F389}'.repeat(255),
    `auth0|${'x'.repeat(249)}`,
    'a',
  ];

  for (const id of ids) {
    it(`creates, reads, updates, audits, lists and deletes ${JSON.stringify(id.slice(0, 6))}… (${[...id].length} chars)`, async () => {
      // Prepare
      const url = userUrl('ident-b', id);
      expect(isUserId(id)).toBe(true);

      // Act
      const created = await send('PUT', url, {
        headers: { 'if-none-match': '*' },
        body: { phone_numbers: ['+14155550199'], display_name: 'Long' },
      });
      const read = await send('GET', url);
      const updated = await send('PUT', url, {
        headers: { 'if-match': '"1"' },
        body: { display_name: 'Longer' },
      });
      const audit = await send('GET', '/v1/admin/tenants/ident-b/audit?limit=100');
      const listed = await send('GET', '/v1/admin/tenants/ident-b/users?limit=100');
      const deleted = await send('DELETE', url, { headers: { 'if-match': '"2"' } });
      const gone = await send('GET', url);

      // Assess
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      expect(read.json).toMatchObject({ user_id: id, tenant_id: 'ident-b', display_name: 'Long' });
      expect(updated.status).toBe(200);
      expect(updated.json).toMatchObject({ user_id: id, display_name: 'Longer', phone_numbers: [] });
      const target = `tenants/ident-b/users/${encodeURIComponent(id)}`;
      const versions = audit.json.items
        .filter((a: { target: string }) => a.target === target)
        .map((a: { version: number }) => a.version);
      expect(versions.sort()).toEqual([1, 2]);
      expect(listed.json.items.map((u: { user_id: string }) => u.user_id)).toContain(id);
      expect(deleted.status).toBe(204);
      expect(gone.status).toBe(404);
      // The number is free again for another user of the tenant.
      expect(await store.userByPhoneNumber('ident-b', '+14155550199')).toBeUndefined();
    });
  }

  it('refuses a user id with a space or another separator with 422, writing nothing', async () => {
    // Prepare
    const before = JSON.stringify(await db.scan());

    // Act
    const answers = await Promise.all(
      ['a b', 'a\u00a0b', 'tab\there', 'line\u2028sep', 'x'.repeat(256)].map((id) =>
        send('PUT', userUrl('ident-b', id), { headers: { 'if-none-match': '*' }, body: {} }),
      ),
    );

    // Assess
    for (const a of answers) {
      expect(a.status).toBe(422);
      expect(a.json.code).toBe('invalid_request');
    }
    expect(JSON.stringify(await db.scan())).toBe(before);
    expect(new RegExp(USER_ID_PATTERN).test('a b')).toBe(false);
  });
});

describe('keys of any allowed user id (seeded property test, docs/api.md §6)', () => {
  it('fit DynamoDB key limits, stay apart, and every store path round-trips', async () => {
    const next = seeded(0x5eed);
    const generated = Array.from({ length: 200 }, () => randomUserId(next));
    const fits = (k: string, max: number) => Buffer.byteLength(k, 'utf8') <= max;
    const seen = new Map<string, string>();
    for (const id of generated) {
      expect(isUserId(id), JSON.stringify(id)).toBe(true);
      const all = [
        keys.user('ident-b', id),
        keys.idempotency('ident-b', id, '~'.repeat(255)),
        keys.rateWindow('ident-b', id),
        keys.activeMarker('ident-b', id, 'x'.repeat(43)),
        keys.session('r'.repeat(128), 'agent', id, 'RM_x'),
        keys.dispatchClaim('r'.repeat(128), 'agent', id),
        keys.audit(`tenants/ident-b/users/${encodeURIComponent(id)}#2026-12-03T00:00:00.000Z`, 1),
      ];
      for (const k of all) {
        expect(fits(k.pk, 2048), k.pk.slice(0, 40)).toBe(true);
        expect(fits(k.sk, 1024)).toBe(true);
      }
      expect(fits(keys.userSort(id), 1024)).toBe(true);
      expect(fits(keys.activeSessionSort(id, new Date().toISOString()), 1024)).toBe(true);
      const pk = keys.user('ident-b', id).pk;
      if (seen.has(pk)) expect(seen.get(pk)).toBe(id);
      seen.set(pk, id);
    }

    // The store: user record, rate window, idempotency claim, session and its active marker.
    for (const id of generated.slice(0, 25)) {
      const user = await store.createUser(userRecord('ident-b', { user_id: id }));
      expect((await store.getUser('ident-b', id))?.user_id).toBe(id);
      expect(await store.getUser('ident-a', id)).toBeUndefined();
      await store.updateUser({ ...user, display_name: 'x' }, user.version);
      expect(await store.hitRate('ident-b', id, 100)).toBe(true);
      const claim = await store.tryClaim(
        { kind: 'idempotency', tenant: 'ident-b', user: id, key: 'k'.repeat(255) },
        { ttlSeconds: 60 },
      );
      expect(claim.won).toBe(true);
      const session = sessionRecord({
        tenant_id: 'ident-b',
        user_id: id,
        participant_identity: id,
        room_name: `lk-mcp-ident-b-${next().toString(36).slice(2)}`,
      });
      await store.markSessionActive(session);
      await store.putSession(session);
      expect((await store.activeSessionsOfUser('ident-b', id)).map((s) => s.user_id)).toEqual([id]);
      await store.endSession(session);
      await store.unmarkSessionActive(session);
      expect((await store.deleteUser('ident-b', id))?.user_id).toBe(id);
    }
  }, 120_000);

  it('the table client refuses a key over the real limits with KeyTooLongError (dynalite would not)', async () => {
    // Prepare
    const table = new TableClient(db.client, db.tableName);
    const before = JSON.stringify(await db.scan());

    // Act + Assess: a GSI sort key of 1025 bytes, a sort key of 1025, a partition key of 2049.
    await expect(
      table.put({ pk: 'TOO#LONG', sk: 'X', gsi1pk: 'P', gsi1sk: `${'é'.repeat(512)}x` }),
    ).rejects.toBeInstanceOf(KeyTooLongError);
    await expect(table.put({ pk: 'TOO#LONG', sk: 's'.repeat(1025) })).rejects.toBeInstanceOf(KeyTooLongError);
    await expect(table.get({ pk: 'p'.repeat(2049), sk: 'X' })).rejects.toBeInstanceOf(KeyTooLongError);
    await expect(table.put({ pk: 'p'.repeat(2048), sk: 's'.repeat(1024) })).resolves.toBeUndefined();
    // dynalite itself takes a GSI key over DynamoDB's limit: only the client's check stands here.
    await db.client.send(
      new PutCommand({
        TableName: db.tableName,
        Item: { pk: 'RAW', sk: 'X', gsi2pk: 'P', gsi2sk: 'y'.repeat(1100) },
      }),
    );
    expect(JSON.stringify(await db.scan()).length).toBeGreaterThan(before.length);
  });
});
