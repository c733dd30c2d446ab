import { MCP_TRANSPORTS } from '@livekit-mcp-dispatch/contract';
import {
  array,
  enum as enumOf,
  maxLength,
  minLength,
  nullable,
  optional,
  pipe,
  record,
  regex,
  string,
  transform,
} from 'zod/mini';

// The input rules of one MCP server that `mcp` (admin-input.ts) and the catalog's `mcp_servers`
// (catalog-input.ts) share: header names and values, token, transport, allowed tools.

/**
 * No C0/C1 control character (Unicode `Cc`), spelled so that ECMAScript and Python's `re` (and
 * so the OpenAPI document's validators and fuzzers) read the published pattern alike.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what it refuses
export const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]+$/;
/** Most extra headers one MCP configuration may carry. */
export const MAX_MCP_HEADERS = 32;
/** Longest header name and value accepted. */
export const MAX_HEADER_NAME_LENGTH = 128;
export const MAX_HEADER_VALUE_LENGTH = 4096;

// docs/api.md §6, compared case-insensitively: set by the token (Authorization) or by the HTTP
// client, meaningful only hop by hop, or owned by the MCP transport (its content negotiation,
// session and protocol version, and what a proxy or browser would vouch for). A stored header
// must never override them (request smuggling, credential confusion, cookie injection, a
// hijacked MCP session).
const FORBIDDEN_HEADERS = new Set([
  'host',
  'cookie',
  'set-cookie',
  'authorization',
  'origin',
  'forwarded',
  // hop-by-hop (RFC 9110 §7.6.1; Proxy-* below)
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  // the MCP streamable HTTP / SSE transport's own
  'content-type',
  'content-length',
  'content-encoding',
  'accept',
  'mcp-session-id',
  'mcp-protocol-version',
]);
const FORBIDDEN_PREFIXES = ['proxy-', 'x-forwarded-'];

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible ASCII, space and tab; no CR, LF or NUL (header injection), no leading/trailing space.
const HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/**
 * True for a key that means something to a JavaScript object besides being a key: `__proto__`
 * (JSON.parse makes it an own property, and assigning it to a plain object replaces the
 * prototype), `constructor`, `prototype` and every other `Object.prototype` member.
 */
export function isPrototypeKey(key: string): boolean {
  return key === 'prototype' || Object.hasOwn(Object.prototype, key);
}

/**
 * Why a header name may not be stored for an MCP server, or `null` when it may.
 * Refused: prototype keys ({@link isPrototypeKey}), invalid tokens, and, case-insensitively,
 * `Host`, `Cookie`, `Set-Cookie`, `Authorization` (the token sets it), `Origin`, `Forwarded`,
 * `X-Forwarded-*`, the hop-by-hop headers (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`,
 * `Trailer`, `Transfer-Encoding`, `Upgrade`, `Expect`) and the MCP transport's own
 * (`Content-Type`, `Content-Length`, `Content-Encoding`, `Accept`, `Mcp-Session-Id`,
 * `MCP-Protocol-Version`).
 */
export function headerNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > MAX_HEADER_NAME_LENGTH) {
    return `must be 1 to ${MAX_HEADER_NAME_LENGTH} characters`;
  }
  if (isPrototypeKey(name)) return 'is a reserved name';
  if (!HEADER_NAME.test(name)) return 'is not a valid header name';
  const lower = name.toLowerCase();
  if (FORBIDDEN_HEADERS.has(lower) || FORBIDDEN_PREFIXES.some((p) => lower.startsWith(p))) {
    return 'may not be set';
  }
  return null;
}

/** Why a header value may not be stored, or `null`. The value itself is never echoed. */
export function headerValueProblem(value: string): string | null {
  if (value.length > MAX_HEADER_VALUE_LENGTH) return `must be at most ${MAX_HEADER_VALUE_LENGTH} characters`;
  if (!HEADER_VALUE.test(value)) return 'must be printable ASCII without leading or trailing spaces';
  return null;
}

/**
 * Checks a whole headers object: count, names (also case-insensitive duplicates) and values.
 * Reads the object's own keys, so an own `__proto__` (as JSON.parse makes it) is seen and refused.
 * Returns the problems keyed by header name (names only; never values). Empty when valid.
 */
export function mcpHeadersProblems(headers: Record<string, unknown>): { name: string; message: string }[] {
  const problems: { name: string; message: string }[] = [];
  const names = Object.keys(headers);
  if (names.length > MAX_MCP_HEADERS) {
    problems.push({ name: '', message: `at most ${MAX_MCP_HEADERS} headers` });
    return problems;
  }
  const seen = new Set<string>();
  for (const name of names) {
    const shown = name.slice(0, MAX_HEADER_NAME_LENGTH);
    const nameProblem = headerNameProblem(name);
    if (nameProblem !== null) {
      problems.push({ name: shown, message: nameProblem });
      continue;
    }
    if (seen.has(name.toLowerCase())) {
      problems.push({ name: shown, message: 'is given twice (names are case-insensitive)' });
      continue;
    }
    seen.add(name.toLowerCase());
    const value = headers[name];
    const valueProblem = typeof value === 'string' ? headerValueProblem(value) : 'must be a string';
    if (valueProblem !== null) problems.push({ name: shown, message: valueProblem });
  }
  return problems;
}

/**
 * A header map: {@link mcpHeadersProblems} runs on the raw JSON object, before zod's record
 * parsing, which skips an own `__proto__` key silently (a silent clear is not a refusal).
 * Each problem is a 422 issue at `…headers.<name>`.
 */
export const headerMapSchema = pipe(
  transform((input: unknown, ctx) => {
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
      for (const p of mcpHeadersProblems(input as Record<string, unknown>)) {
        ctx.issues.push({
          code: 'custom',
          message: p.message,
          input: p.name,
          path: p.name === '' ? [] : [p.name],
        });
      }
    }
    return input;
  }),
  record(
    string().check(minLength(1), maxLength(MAX_HEADER_NAME_LENGTH)),
    string().check(maxLength(MAX_HEADER_VALUE_LENGTH)),
  ),
);

/** A string of `min` to `max` characters. */
export const bounded = (min: number, max: number) => string().check(minLength(min), maxLength(max));
/** A non-empty string of at most `max` characters and no control character. */
export const printable = (max: number) =>
  string().check(minLength(1), maxLength(max), regex(PRINTABLE, 'must not contain control characters'));

/** An MCP transport: `streamable_http` or `sse`. */
export const transportSchema = enumOf(MCP_TRANSPORTS);

/** The fields one MCP server's settings share: token, headers, transport, allowed tools, name. */
export const mcpFields = {
  // The URL guard does the real check; the schema only bounds the size.
  token: optional(
    nullable(
      string().check(
        minLength(1),
        maxLength(4096),
        regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
      ),
    ),
  ),
  headers: optional(nullable(headerMapSchema)),
  transport: optional(transportSchema),
  allowed_tools: optional(
    array(string().check(regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 characters [A-Za-z0-9_.-]'))).check(
      maxLength(200),
    ),
  ),
  name: optional(string().check(regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters [A-Za-z0-9_-]'))),
};
