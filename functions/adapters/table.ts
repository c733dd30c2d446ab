import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  type GlobalSecondaryIndex,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tableSchema } from './schema.js';

/** Options for {@link createTable}. */
export interface CreateTableOptions {
  /** How long to wait for the table to become ACTIVE, in ms (default 30000). */
  timeoutMs?: number;
}

/**
 * Creates the table from {@link tableSchema} (string keys, every index projecting all
 * attributes, on-demand billing) unless it exists, waits until it is ACTIVE, then enables TTL
 * on `tableSchema.ttlAttribute` where the server supports it (dynalite does not: every
 * condition checks expiry itself, so TTL is only housekeeping). Safe to call on every start.
 */
export async function createTable(
  client: DynamoDBDocumentClient,
  tableName: string,
  options: CreateTableOptions = {},
): Promise<void> {
  const indexes = Object.values(tableSchema.indexes);
  const attributeNames = [
    tableSchema.partitionKey,
    tableSchema.sortKey,
    ...indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  const attributeDefinitions: AttributeDefinition[] = attributeNames.map((name) => ({
    AttributeName: name,
    AttributeType: 'S',
  }));
  const globalSecondaryIndexes: GlobalSecondaryIndex[] = indexes.map((i) => ({
    IndexName: i.name,
    KeySchema: [
      { AttributeName: i.partitionKey, KeyType: 'HASH' },
      { AttributeName: i.sortKey, KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'ALL' },
  }));
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attributeDefinitions,
        KeySchema: [
          { AttributeName: tableSchema.partitionKey, KeyType: 'HASH' },
          { AttributeName: tableSchema.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: globalSecondaryIndexes,
      }),
    );
  } catch (error) {
    if (!(error instanceof Error && error.name === 'ResourceInUseException')) throw error;
  }
  await waitUntilActive(client, tableName, options.timeoutMs ?? 30_000);
  await enableTtl(client, tableName);
}

async function waitUntilActive(client: DynamoDBDocumentClient, tableName: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    if (Date.now() > deadline) throw new Error(`Table ${tableName} did not become ACTIVE in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function enableTtl(client: DynamoDBDocumentClient, tableName: string) {
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: tableSchema.ttlAttribute, Enabled: true },
      }),
    );
  } catch {
    // Best effort: already enabled (ValidationException) or unsupported (dynalite's
    // UnknownOperationException); expiry is enforced by conditions either way.
  }
}
