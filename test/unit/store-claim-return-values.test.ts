import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainItem } from '../../functions/adapters/dynamo/client.js';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';

/**
 * A loopback server speaking DynamoDB's JSON protocol that fails every conditional PutItem the
 * way DynamoDB does when asked for `ReturnValuesOnConditionCheckFailure: ALL_OLD`: the error
 * carries the item. Records every request it gets.
 */
async function startFailingDynamo(item: Record<string, unknown>) {
  const requests: { target: string; body: Record<string, unknown> }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      requests.push({ target: String(req.headers['x-amz-target']), body });
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' }).end(
        JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
          message: 'The conditional request failed',
          ...(body.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' ? { Item: item } : {}),
        }),
      );
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

describe('DynamoStore.tryClaim when the claim is held', () => {
  const now = Date.now();
  const held = {
    pk: { S: 'EVENT#ev1' },
    sk: { S: 'CLAIM' },
    claim_owner: { S: 'owner-1' },
    claim_state: { S: 'completed' },
    lease_until: { N: String(now - 1000) },
    created_at: { N: String(now - 5000) },
    ttl: { N: String(Math.floor(now / 1000) + 3600) },
    attrs: { M: { action: { S: 'dispatched' }, dispatch_id: { NULL: true } } },
  };
  let server: Awaited<ReturnType<typeof startFailingDynamo>>;
  beforeAll(async () => {
    server = await startFailingDynamo(held);
  });
  afterAll(() => server.stop());

  it('reads the holder from the failed write itself: one request, no GetItem', async () => {
    // Prepare
    const client = createDynamoClient({ endpoint: server.endpoint, maxAttempts: 1 });
    const store = new DynamoStore({ client, tableName: 'claims', clock: () => now });

    // Act
    const attempt = await store.tryClaim({ kind: 'event', id: 'ev1' }, { ttlSeconds: 3600 });
    client.destroy();

    // Assess
    expect(attempt).toEqual({
      won: false,
      current: expect.objectContaining({
        owner: 'owner-1',
        state: 'completed',
        attrs: { action: 'dispatched', dispatch_id: null },
        stale: false,
      }),
    });
    expect(server.requests.map((r) => r.target)).toEqual(['DynamoDB_20120810.PutItem']);
    expect(server.requests[0]!.body.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
  });
});

describe('plainItem (unmarshall)', () => {
  it('converts the attribute types claims hold', () => {
    // Act
    const item = plainItem({
      s: { S: 'x' },
      n: { N: '12.5' },
      b: { BOOL: false },
      z: { NULL: true },
      l: { L: [{ S: 'a' }, { N: '1' }] },
      m: { M: { k: { S: 'v' } } },
    });

    // Assess
    expect(item).toEqual({ s: 'x', n: 12.5, b: false, z: null, l: ['a', 1], m: { k: 'v' } });
  });

  it('gives up on types claims never store, and on a missing item', () => {
    // Act + Assess
    expect(plainItem({ s: { SS: ['a'] } })).toBeUndefined();
    expect(plainItem(undefined)).toBeUndefined();
  });
});
