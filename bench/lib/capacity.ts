/** DynamoDB capacity accounting from item contents (on-demand rules, GSIs projecting ALL). */

/** A DynamoDB-JSON attribute value. */
type AttributeValue = Record<string, unknown>;
/** A DynamoDB-JSON item. */
export type Item = Record<string, AttributeValue>;

function valueSize(v: AttributeValue): number {
  const [type, raw] = Object.entries(v)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return Buffer.byteLength(String(raw), 'utf8');
    case 'N':
      return (
        Math.ceil(
          String(raw)
            .replace(/^-|\.|e.*$/gi, '')
            .replace(/^0+/, '').length / 2,
        ) + 1
      );
    case 'B':
      return Buffer.from(String(raw), 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
      return (raw as string[]).reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
    case 'NS':
      return (raw as string[]).reduce((n, s) => n + valueSize({ N: s }), 0);
    case 'L':
      return 3 + (raw as AttributeValue[]).reduce((n, e) => n + 1 + valueSize(e), 0);
    case 'M':
      return (
        3 +
        Object.entries(raw as Item).reduce(
          (n, [k, e]) => n + 1 + Buffer.byteLength(k, 'utf8') + valueSize(e),
          0,
        )
      );
    default:
      return 0;
  }
}

/** Item size as DynamoDB bills it: attribute names plus values (approximation for N). */
export function itemSize(item: Item | undefined): number {
  if (item === undefined) return 0;
  return Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k, 'utf8') + valueSize(v), 0);
}

/** Read units of one strongly (1) or eventually (0.5) consistent read of `bytes`, 4 KB each. */
export function readUnits(bytes: number, consistent: boolean): number {
  return Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);
}

function kb(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

/** The secondary indexes by their key attributes (all project ALL). */
export type IndexKeys = { partitionKey: string; sortKey: string }[];

function indexKey(item: Item | undefined, index: IndexKeys[number]): string | undefined {
  if (item === undefined) return undefined;
  const pk = item[index.partitionKey];
  const sk = item[index.sortKey];
  return pk !== undefined && sk !== undefined ? JSON.stringify([pk, sk]) : undefined;
}

/**
 * Write units of one write that changed `before` into `after` (undefined = absent): the table
 * charges 1 per KB of the larger version; each GSI charges 1 per KB for a put or a delete of
 * its entry and both when the entry's key changes. A write whose condition failed charges the
 * table only (1 per KB of the item as stored).
 */
export function writeUnits(
  before: Item | undefined,
  after: Item | undefined,
  indexes: IndexKeys,
  conditionFailed: boolean,
): { table: number; indexes: number } {
  const table = kb(Math.max(itemSize(before), itemSize(after)));
  if (conditionFailed) return { table: kb(itemSize(before)), indexes: 0 };
  let gsi = 0;
  for (const index of indexes) {
    const was = indexKey(before, index);
    const now = indexKey(after, index);
    if (was === undefined && now === undefined) continue;
    if (was !== undefined && now !== undefined && was === now) gsi += kb(itemSize(after));
    else
      gsi += (was !== undefined ? kb(itemSize(before)) : 0) + (now !== undefined ? kb(itemSize(after)) : 0);
  }
  return { table, indexes: gsi };
}
