import { randomUUID } from 'node:crypto';
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoClient } from '../../functions/adapters/dynamo.js';
import { startEmbeddedDynalite } from '../../functions/adapters/embedded-dynamo.js';
import { createTable } from '../../functions/adapters/table.js';

/** A dynalite server on a random loopback port with the table created. */
export interface TestDynamo {
  endpoint: string;
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Every item in the table, raw (keys included), read with a consistent scan. */
  scan(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/** Every item in the table, raw (keys included), read with consistent scans page by page. */
export async function scanTable(client: DynamoDBDocumentClient, tableName: string) {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}

/**
 * Starts dynalite in-process (in memory, or LevelDB under `path`) on 127.0.0.1 and creates the
 * table. Use one per test file: `beforeAll(async () => { db = await startDynalite(); })`,
 * `afterAll(() => db.stop())`.
 */
export async function startDynalite(
  options: { path?: string; tableName?: string } = {},
): Promise<TestDynamo> {
  const server = await startEmbeddedDynalite(options.path !== undefined ? { path: options.path } : {});
  const client = createDynamoClient({ endpoint: server.endpoint, requestTimeoutMs: 5000, maxAttempts: 2 });
  const tableName = options.tableName ?? `test-${randomUUID()}`;
  await createTable(client, tableName);
  return {
    endpoint: server.endpoint,
    client,
    tableName,
    scan: () => scanTable(client, tableName),
    async stop() {
      client.destroy();
      await server.stop();
    },
  };
}
