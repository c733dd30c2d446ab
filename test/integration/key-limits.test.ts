import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableClient } from '../../functions/adapters/dynamo/client.js';
import { KeyTooLongError } from '../../functions/core/errors.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { startMoto } from '../support/moto.js';

// DynamoDB limits a partition key to 2048 bytes and a sort key to 1024 (base table and GSIs).
// dynalite does not model every limit; moto's server does, so the store's own check
// (functions/adapters/dynamo/client.ts) is held to a second implementation: the store refuses
// exactly what DynamoDB would, before sending, and writes nothing.

let dynalite: TestDynamo;
let moto: TestDynamo;
beforeAll(async () => {
  [dynalite, moto] = await Promise.all([startDynalite(), startMoto()]);
}, 900_000);
afterAll(async () => {
  await Promise.all([dynalite?.stop(), moto?.stop()]);
});

const threeByte = (bytes: number) => '中'.repeat(bytes / 3);
const cases: [string, Record<string, string>, boolean][] = [
  ['a partition key of 2048 bytes', { pk: `${threeByte(2046)}ab`, sk: 'S' }, true],
  ['a partition key of 2049 bytes', { pk: threeByte(2049), sk: 'S' }, false],
  ['a sort key of 1024 bytes', { pk: 'P', sk: `${threeByte(1023)}a` }, true],
  ['a sort key of 1025 bytes', { pk: 'P', sk: `${threeByte(1023)}ab` }, false],
];

describe('key size limits: the store agrees with moto (a second DynamoDB implementation)', () => {
  it.each(cases)('%s', async (_name, key, fits) => {
    // moto, raw: what DynamoDB itself decides
    const raw = moto.client.send(new PutCommand({ TableName: moto.tableName, Item: { ...key, n: 1 } }));
    if (fits) await expect(raw).resolves.toBeDefined();
    else await expect(raw).rejects.toMatchObject({ name: 'ValidationException' });

    // the store's table client, on both servers: the same verdict, refused before sending
    for (const db of [moto, dynalite]) {
      const table = new TableClient(db.client, db.tableName);
      const put = table.put({ ...key, n: 2 });
      if (fits) await put;
      else await expect(put).rejects.toBeInstanceOf(KeyTooLongError);
    }
    if (!fits) {
      expect((await dynalite.scan()).some((i) => i.pk === key.pk && i.sk === key.sk)).toBe(false);
      expect((await moto.scan()).some((i) => i.pk === key.pk && i.sk === key.sk)).toBe(false);
    }
  });
});
