import { tableSchema } from '../schema.js';

/**
 * The one builder of condition and update expressions. Every attribute name and value gets a
 * placeholder numbered by the {@link Placeholders} of the command being built (`#n0`, `:v0`, …),
 * so two parts that name the same attribute or use the same value can never overwrite each
 * other's placeholder. Parts are small named functions combined with {@link allOf} /
 * {@link anyOf}, so a write reads like a sentence:
 * `anyOf(itemAbsent(), expiredAt(now), allOf(claimInProgress(), leaseEndedAt(now)))`.
 */
export class Placeholders {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private n = 0;
  private v = 0;

  /** A fresh `#nX` placeholder for an attribute name. */
  name(attribute: string): string {
    const placeholder = `#n${this.n++}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  /** A fresh `:vX` placeholder for a value. */
  value(value: unknown): string {
    const placeholder = `:v${this.v++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  /** The placeholder maps a command takes (values only when there are any). */
  maps() {
    return {
      ExpressionAttributeNames: this.names,
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

/** A condition: renders its text, taking placeholders from the command's {@link Placeholders}. */
export type Cond = (p: Placeholders) => string;

const combine =
  (op: 'AND' | 'OR', parts: Cond[]): Cond =>
  (p) =>
    parts.map((part) => `(${part(p)})`).join(` ${op} `);

/** Every part holds. */
export const allOf = (...parts: Cond[]): Cond => combine('AND', parts);
/** At least one part holds. */
export const anyOf = (...parts: Cond[]): Cond => combine('OR', parts);
/** `attribute = value`. */
export const eq =
  (attribute: string, value: unknown): Cond =>
  (p) =>
    `${p.name(attribute)} = ${p.value(value)}`;
/** `a.b… = value`: a document path, each part its own name placeholder. */
export const eqPath =
  (path: readonly string[], value: unknown): Cond =>
  (p) =>
    `${path.map((part) => p.name(part)).join('.')} = ${p.value(value)}`;
/** `attribute < value`. */
export const lessThan =
  (attribute: string, value: unknown): Cond =>
  (p) =>
    `${p.name(attribute)} < ${p.value(value)}`;
/** The attribute is absent. */
export const absent =
  (attribute: string): Cond =>
  (p) =>
    `attribute_not_exists(${p.name(attribute)})`;
/** The attribute is present. */
export const present =
  (attribute: string): Cond =>
  (p) =>
    `attribute_exists(${p.name(attribute)})`;

/** No item at the key. */
export const itemAbsent = () => absent(tableSchema.partitionKey);
/** An item at the key. */
export const itemPresent = () => present(tableSchema.partitionKey);
/** The record's version is `version`. */
export const versionIs = (version: number) => eq('version', version);
/** The record belongs to the tenant. */
export const tenantIs = (tenantId: string) => eq('tenant_id', tenantId);
/** The TTL has passed (DynamoDB deletes lazily; dynalite never does). */
export const expiredAt = (nowSeconds: number) => lessThan(tableSchema.ttlAttribute, nowSeconds);

/** Renders a condition into a command's `ConditionExpression` (sharing `p` with an update). */
export function condition(when: Cond, p: Placeholders = new Placeholders()) {
  return { ConditionExpression: when(p), ...p.maps() };
}

/** An update: attributes (or paths, as name lists) to set, counters to add to, attributes to remove. */
export interface Changes {
  set?: [path: string | string[], value: unknown][];
  add?: [attribute: string, value: number][];
  remove?: string[];
}

/** Renders an update (and its condition) with one set of placeholders; undefined when it changes nothing. */
export function update(changes: Changes, when?: Cond) {
  const p = new Placeholders();
  const path = (a: string | string[]) => (typeof a === 'string' ? [a] : a).map((n) => p.name(n)).join('.');
  const clauses: string[] = [];
  const sets = (changes.set ?? []).map(([a, v]) => `${path(a)} = ${p.value(v)}`);
  const adds = (changes.add ?? []).map(([a, v]) => `${p.name(a)} ${p.value(v)}`);
  const removes = (changes.remove ?? []).map((a) => p.name(a));
  if (adds.length > 0) clauses.push(`ADD ${adds.join(', ')}`);
  if (sets.length > 0) clauses.push(`SET ${sets.join(', ')}`);
  if (removes.length > 0) clauses.push(`REMOVE ${removes.join(', ')}`);
  if (clauses.length === 0) return undefined;
  const conditionText = when === undefined ? {} : { ConditionExpression: when(p) };
  return { UpdateExpression: clauses.join(' '), ...conditionText, ...p.maps() };
}
