import { MalformedItemError } from '../../core/errors.js';
import type { StoredMcp } from '../../core/model.js';
import type { Item } from './client.js';

/**
 * Checked reads of one item's attributes, for the aggregates' `fromItem`s: a missing or
 * mistyped attribute is a {@link MalformedItemError}, never a silently wrong record. The
 * `optional*` readers return undefined for an absent attribute (and their results are spread
 * with {@link defined} so a record never carries `key: undefined`).
 */
export function fields(item: Item, kind: string) {
  const bad = (name: string, expected: string): never => {
    throw new MalformedItemError(kind, name, expected);
  };
  const optional = <T>(name: string, check: (v: unknown) => v is T, expected: string): T | undefined => {
    const value = item[name];
    if (value === undefined) return undefined;
    return check(value) ? value : bad(name, expected);
  };
  const required = <T>(name: string, check: (v: unknown) => v is T, expected: string): T =>
    optional(name, check, expected) ?? bad(name, expected);
  return {
    string: (name: string) => required(name, isString, 'a string'),
    optionalString: (name: string) => optional(name, isString, 'a string'),
    number: (name: string) => required(name, isNumber, 'a number'),
    optionalNumber: (name: string) => optional(name, isNumber, 'a number'),
    boolean: (name: string) => required(name, isBoolean, 'a boolean'),
    strings: (name: string) => required(name, isStrings, 'a list of strings'),
    nullableString: (name: string): string | null =>
      item[name] === null ? null : required(name, isString, 'a string or null'),
    oneOf: <const V extends string>(name: string, values: readonly V[]): V =>
      required(name, (v: unknown): v is V => values.includes(v as V), values.join(' | ')),
    optionalOneOf: <const V extends string>(name: string, values: readonly V[]): V | undefined =>
      optional(name, (v: unknown): v is V => values.includes(v as V), values.join(' | ')),
    object: (name: string) => required(name, isObject, 'a map'),
    optionalObject: (name: string) => optional(name, isObject, 'a map'),
  };
}

/** The reader {@link fields} returns. */
export type Fields = ReturnType<typeof fields>;

/** `{ [name]: value }`, or `{}` when the value is undefined. */
export function defined<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

/** The stored MCP settings of a tenant or user item, checked. */
export function mcpFromItem(item: Item, kind: string): StoredMcp | undefined {
  const raw = fields(item, kind).optionalObject('mcp');
  if (raw === undefined) return undefined;
  const f = fields(raw, `${kind} mcp`);
  return {
    ...defined('url', f.optionalString('url')),
    ...defined('transport', f.optionalOneOf('transport', ['streamable_http', 'sse'])),
    ...defined('allowed_tools', raw.allowed_tools === undefined ? undefined : f.strings('allowed_tools')),
    ...defined('name', f.optionalString('name')),
    ...defined('token_sealed', f.optionalString('token_sealed')),
    ...defined('token_fingerprint', f.optionalString('token_fingerprint')),
    ...defined('headers_sealed', f.optionalString('headers_sealed')),
    ...defined('header_names', raw.header_names === undefined ? undefined : f.strings('header_names')),
    ...defined('credentials_origin', f.optionalString('credentials_origin')),
  };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isObject = (v: unknown): v is Item => typeof v === 'object' && v !== null && !Array.isArray(v);
