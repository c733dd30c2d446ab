import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  ConditionFailedError,
  DomainError,
  KeyTooLongError,
  StoreUnavailableError,
} from '../../core/errors.js';
import type { Page, PageRequest } from '../../core/ports.js';
import { tableSchema } from '../schema.js';
import { type Changes, type Cond, condition, update } from './expr.js';

/** A table item as the document client reads and writes it. */
export type Item = Record<string, unknown>;

/** The primary key of one item, as built by `keys.*` in schema.ts. */
export interface ItemKey {
  pk: string;
  sk: string;
}

/** What {@link TableClient.query} reads: one partition of the table or of an index. */
export interface QueryInput {
  /** Index name; the base table when omitted. */
  index?: string;
  partition: string;
  /** Only sort keys starting with this. */
  sortPrefix?: string;
  ascending?: boolean;
  /** Strongly consistent (base table only). */
  consistent?: boolean;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 100;
// DynamoDB's key limits; dynalite enforces those of the base table only, so every key is checked
// here before it is sent (an id too long for a key names nothing we store).
const PARTITION_KEY_BYTES = 2048;
const SORT_KEY_BYTES = 1024;
const KEY_LIMITS: [string, number][] = [
  [tableSchema.partitionKey, PARTITION_KEY_BYTES],
  [tableSchema.sortKey, SORT_KEY_BYTES],
  ...Object.values(tableSchema.indexes).flatMap((i): [string, number][] => [
    [i.partitionKey, PARTITION_KEY_BYTES],
    [i.sortKey, SORT_KEY_BYTES],
  ]),
];

/** The first key attribute of `item` over DynamoDB's limits, with its size, or undefined. */
function oversizedKey(item: Item): string | undefined {
  for (const [attribute, max] of KEY_LIMITS) {
    const value = item[attribute];
    if (typeof value !== 'string') continue;
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > max) return `A ${attribute} key of ${bytes} bytes exceeds the table's limit of ${max}.`;
  }
  return undefined;
}

/** Whether every key attribute of `item` is within DynamoDB's limits. */
export function keysFit(item: Item): boolean {
  return oversizedKey(item) === undefined;
}

function checkKeys(item: Item): void {
  const problem = oversizedKey(item);
  if (problem !== undefined) throw new KeyTooLongError(problem);
}

/**
 * The small client every aggregate module writes through: one table, consistent reads, conditions
 * from {@link Cond}s, and every SDK failure translated once ({@link translateError}).
 */
export class TableClient {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** The item at `key`, read strongly consistent, or undefined. */
  async get(key: ItemKey): Promise<Item | undefined> {
    checkKeys({ ...key });
    const result = await call(() =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return result.Item;
  }

  /**
   * Puts `item` when `when` holds; returns the item it replaced. With `returnOnFailure`, a lost
   * condition's {@link ConditionFailedError} carries the item it failed on (see {@link failedItem}).
   * @throws ConditionFailedError when the condition does not hold.
   */
  async put(item: Item, when?: Cond, options: { returnOnFailure?: boolean } = {}): Promise<Item | undefined> {
    checkKeys(item);
    const result = await call(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ReturnValues: 'ALL_OLD',
          ...(options.returnOnFailure ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
          ...(when === undefined ? {} : condition(when)),
        }),
      ),
    );
    return result.Attributes;
  }

  /** Conditional put; false when the condition does not hold. */
  async putIf(item: Item, when: Cond): Promise<boolean> {
    return lostIsFalse(() => this.put(item, when));
  }

  /**
   * Deletes the item at `key` when `when` holds; returns the deleted item, if there was one.
   * @throws ConditionFailedError when the condition does not hold.
   */
  async delete(key: ItemKey, when?: Cond): Promise<Item | undefined> {
    checkKeys({ ...key });
    const result = await call(() =>
      this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: key,
          ReturnValues: 'ALL_OLD',
          ...(when === undefined ? {} : condition(when)),
        }),
      ),
    );
    return result.Attributes;
  }

  /** Conditional delete; false when the condition does not hold. */
  async deleteIf(key: ItemKey, when: Cond): Promise<boolean> {
    return lostIsFalse(() => this.delete(key, when));
  }

  /**
   * Applies `changes` to the item at `key` when `when` holds; returns the item as it is after.
   * @throws ConditionFailedError when the condition does not hold.
   */
  async update(key: ItemKey, changes: Changes, when?: Cond): Promise<Item | undefined> {
    checkKeys({ ...key });
    const expression = update(changes, when);
    if (expression === undefined) return undefined;
    const result = await call(() =>
      this.client.send(
        new UpdateCommand({ TableName: this.tableName, Key: key, ReturnValues: 'ALL_NEW', ...expression }),
      ),
    );
    return result.Attributes;
  }

  /** One page of a partition: at most `limit` items (default 50, at most 100) after `cursor`. */
  async query(input: QueryInput, page: PageRequest = {}): Promise<Page<Item>> {
    const limit = Math.min(Math.max(1, page.limit ?? DEFAULT_PAGE), MAX_PAGE);
    const result = await call(() =>
      this.client.send(
        new QueryCommand({ ...this.queryCommand(input), Limit: limit, ExclusiveStartKey: page.cursor }),
      ),
    );
    return { items: result.Items ?? [], cursor: result.LastEvaluatedKey };
  }

  /** Every item of a partition, page after page. */
  async queryAll(input: QueryInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await call(() =>
        this.client.send(new QueryCommand({ ...this.queryCommand(input), ExclusiveStartKey: start })),
      );
      items.push(...(result.Items ?? []));
      start = result.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }

  private queryCommand(input: QueryInput) {
    const index = Object.values(tableSchema.indexes).find((i) => i.name === input.index);
    const pkName = index?.partitionKey ?? tableSchema.partitionKey;
    const skName = index?.sortKey ?? tableSchema.sortKey;
    checkKeys({ [pkName]: input.partition });
    const prefix = input.sortPrefix !== undefined;
    return {
      TableName: this.tableName,
      ...(index === undefined ? {} : { IndexName: index.name }),
      KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
      ExpressionAttributeNames: { '#pk': pkName, ...(prefix ? { '#sk': skName } : {}) },
      ExpressionAttributeValues: {
        ':pk': input.partition,
        ...(prefix ? { ':prefix': input.sortPrefix } : {}),
      },
      ScanIndexForward: input.ascending ?? true,
      ...(input.consistent ? { ConsistentRead: true } : {}),
    };
  }
}

async function lostIsFalse(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    throw error;
  }
}

/** Runs one SDK call, translating its failure into the store's domain errors. */
async function call<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translateError(error);
  }
}

/**
 * The item a lost conditional write failed on, when the server returned it
 * (`ReturnValuesOnConditionCheckFailure`; dynalite does not); undefined otherwise.
 */
export function failedItem(error: ConditionFailedError): Item | undefined {
  return plainItem((error.cause as { Item?: unknown } | undefined)?.Item);
}

/**
 * Converts a raw DynamoDB item to plain values (`unmarshall`); undefined when absent or holding
 * a type this table never stores (sets, binary).
 */
export function plainItem(raw: unknown): Item | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  let item: Item;
  try {
    item = unmarshall(raw as Parameters<typeof unmarshall>[0]);
  } catch {
    return undefined;
  }
  return onlyPlain(item) ? item : undefined;
}

function onlyPlain(value: unknown): boolean {
  if (value instanceof Set || value instanceof Uint8Array) return false;
  if (Array.isArray(value)) return value.every(onlyPlain);
  if (typeof value === 'object' && value !== null) return Object.values(value).every(onlyPlain);
  return true;
}

const UNAVAILABLE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Maps an SDK failure to a domain error: a lost condition → {@link ConditionFailedError};
 * throttling, 5xx, timeouts and network errors (already retried by the SDK) →
 * {@link StoreUnavailableError}; anything else (a bug, a missing table) is returned unchanged.
 */
export function translateError(error: unknown): unknown {
  if (error instanceof DomainError || !(error instanceof Error)) return error;
  if (error.name === 'ConditionalCheckFailedException') {
    return new ConditionFailedError('The conditional write lost.', { cause: error });
  }
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const code = (error as { code?: string }).code;
  if (
    UNAVAILABLE_ERRORS.has(error.name) ||
    (status !== undefined && status >= 500) ||
    (code !== undefined && NETWORK_CODES.has(code))
  ) {
    return new StoreUnavailableError({ cause: error });
  }
  return error;
}
