import { Agent, createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tableSchema } from '../../functions/adapters/schema.js';
import { type IndexKeys, type Item, itemSize, readUnits, writeUnits } from './capacity.js';

/** Requests per DynamoDB operation, by outcome. */
export interface OpCounts {
  ok: number;
  /** ConditionalCheckFailedException: a conditional write that lost (still billed). */
  conditionFailed: number;
  error: number;
}

/** What the proxy saw since it started (diff two snapshots for one phase). */
export interface DynamoCounts {
  requests: number;
  /** By operation name (`GetItem`, `PutItem`, …). */
  ops: Record<string, OpCounts>;
  /** Conditional writes (any outcome): PutItem/UpdateItem/DeleteItem with a ConditionExpression. */
  conditionalWrites: number;
  /** Capacity units, counted only while accounting is on. */
  rru: number;
  wru: number;
  /** Of `wru`, the GSI share. */
  wruIndexes: number;
  /**
   * Requests that arrived while no other was in flight: with one client request at a time, the
   * number of DynamoDB round trips it waited for one after another (parallel ones overlap).
   */
  sequentialRoundTrips: number;
}

/** A counting HTTP proxy in front of a DynamoDB-compatible server. */
export interface CountingProxy {
  endpoint: string;
  snapshot(): DynamoCounts;
  /**
   * With accounting on, every write is bracketed by uncounted consistent reads of its item so
   * capacity units can be computed from the item before and after (slower; serial phases only).
   */
  setAccounting(on: boolean): void;
  /** Holds every counted request this long before forwarding it (a modeled round trip). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
const INDEXES: IndexKeys = Object.values(tableSchema.indexes).map((i) => ({
  partitionKey: i.partitionKey,
  sortKey: i.sortKey,
}));

/**
 * Starts the proxy on 127.0.0.1 in front of `upstream` (e.g. dynalite). With
 * `emulateReturnValues` (default on) it also answers `ReturnValuesOnConditionCheckFailure:
 * ALL_OLD` as DynamoDB does, which dynalite does not implement.
 */
export async function startCountingProxy(
  upstream: string,
  options: { emulateReturnValues?: boolean } = {},
): Promise<CountingProxy> {
  const emulateReturnValues = options.emulateReturnValues ?? true;
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let accounting = false;
  let delay = 0;
  const counts: DynamoCounts = {
    requests: 0,
    ops: {},
    conditionalWrites: 0,
    rru: 0,
    wru: 0,
    wruIndexes: 0,
    sequentialRoundTrips: 0,
  };
  let inFlight = 0;

  function opCounts(op: string): OpCounts {
    counts.ops[op] ??= { ok: 0, conditionFailed: 0, error: 0 };
    return counts.ops[op];
  }

  function forward(
    headers: IncomingMessage['headers'],
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
    return new Promise((ok, fail) => {
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          method: 'POST',
          path: '/',
          headers: { ...headers, host: target.host, 'content-length': String(body.length) },
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(body);
    });
  }

  // Uncounted consistent read of one item, for accounting.
  async function peek(
    headers: IncomingMessage['headers'],
    table: string,
    key: Item,
  ): Promise<Item | undefined> {
    const res = await forward(
      { ...headers, 'x-amz-target': 'DynamoDB_20120810.GetItem' },
      Buffer.from(JSON.stringify({ TableName: table, Key: key, ConsistentRead: true })),
    );
    return (JSON.parse(res.body.toString('utf8')) as { Item?: Item }).Item;
  }

  function keyOf(op: string, input: Record<string, unknown>): Item {
    if (op !== 'PutItem') return input.Key as Item;
    const item = input.Item as Item;
    return {
      [tableSchema.partitionKey]: item[tableSchema.partitionKey]!,
      [tableSchema.sortKey]: item[tableSchema.sortKey]!,
    };
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (inFlight === 0) counts.sequentialRoundTrips += 1;
      inFlight += 1;
      // Decremented before the answer is written, so a request the client sends after reading
      // it always finds this one finished.
      let settled = false;
      const settle = () => {
        if (!settled) inFlight -= 1;
        settled = true;
      };
      res.once('close', settle);
      const body = Buffer.concat(chunks);
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown';
      let input: Record<string, unknown> = {};
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        // forwarded as is
      }
      try {
        const account = accounting && typeof input.TableName === 'string';
        const before =
          account && WRITES.has(op)
            ? await peek(req.headers, input.TableName as string, keyOf(op, input))
            : undefined;
        if (delay > 0) await new Promise((ok) => setTimeout(ok, delay));
        const out = await forward(req.headers, body);
        let text = out.body.toString('utf8');
        const conditionFailed = out.status === 400 && text.includes('ConditionalCheckFailedException');
        if (
          conditionFailed &&
          emulateReturnValues &&
          input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD'
        ) {
          // dynalite ignores this parameter; DynamoDB returns the item with the error, inside
          // the one (billed) write. Supply it the same way: this read is not counted.
          const error = JSON.parse(text) as Record<string, unknown>;
          if (error.Item === undefined && typeof input.TableName === 'string') {
            const item = await peek(req.headers, input.TableName, keyOf(op, input));
            if (item !== undefined) {
              text = JSON.stringify({ ...error, Item: item });
              out.body = Buffer.from(text);
              out.headers['content-length'] = String(out.body.length);
              delete out.headers['x-amz-crc32'];
            }
          }
        }
        const c = opCounts(op);
        counts.requests += 1;
        if (out.status === 200) c.ok += 1;
        else if (conditionFailed) c.conditionFailed += 1;
        else c.error += 1;
        if (WRITES.has(op) && typeof input.ConditionExpression === 'string') counts.conditionalWrites += 1;
        if (account && (out.status === 200 || conditionFailed)) {
          if (WRITES.has(op)) {
            const after = await peek(req.headers, input.TableName as string, keyOf(op, input));
            const units = writeUnits(before, conditionFailed ? before : after, INDEXES, conditionFailed);
            counts.wru += units.table + units.indexes;
            counts.wruIndexes += units.indexes;
          } else if (op === 'GetItem') {
            const item = (JSON.parse(text) as { Item?: Item }).Item;
            counts.rru += readUnits(itemSize(item), input.ConsistentRead === true);
          } else if (op === 'Query') {
            const items = (JSON.parse(text) as { Items?: Item[] }).Items ?? [];
            counts.rru += readUnits(
              items.reduce((n, i) => n + itemSize(i), 0),
              input.ConsistentRead === true,
            );
          }
        }
        settle();
        res.writeHead(out.status, out.headers).end(out.body);
      } catch (err) {
        counts.requests += 1;
        opCounts(op).error += 1;
        settle();
        res.writeHead(502).end(String(err));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    snapshot: () => structuredClone(counts),
    setAccounting(on) {
      accounting = on;
    },
    setDelay(ms) {
      delay = ms;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

/** `after − before`, per field. */
export function diffCounts(after: DynamoCounts, before: DynamoCounts): DynamoCounts {
  const ops: Record<string, OpCounts> = {};
  for (const [op, c] of Object.entries(after.ops)) {
    const b = before.ops[op] ?? { ok: 0, conditionFailed: 0, error: 0 };
    const d = {
      ok: c.ok - b.ok,
      conditionFailed: c.conditionFailed - b.conditionFailed,
      error: c.error - b.error,
    };
    if (d.ok + d.conditionFailed + d.error > 0) ops[op] = d;
  }
  return {
    requests: after.requests - before.requests,
    ops,
    conditionalWrites: after.conditionalWrites - before.conditionalWrites,
    rru: after.rru - before.rru,
    wru: after.wru - before.wru,
    wruIndexes: after.wruIndexes - before.wruIndexes,
    sequentialRoundTrips: after.sequentialRoundTrips - before.sequentialRoundTrips,
  };
}
