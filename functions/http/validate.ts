import type { Context } from 'hono';
import { type infer as Infer, safeParse, type ZodMiniType } from 'zod/mini';
import type { $ZodIssue } from 'zod/v4/core';
import { ValidationError } from '../core/errors.js';

/** One failing field: a dotted path (`mcp.headers.X-Api-Key`, `""` for the whole body) and why. */
export interface FieldError {
  path: string;
  message: string;
}

/** Most field errors reported in one problem document. */
const MAX_ERRORS = 20;

// Messages are built here, not taken from zod: zod/mini ships no locale, and an issue's `input`
// may be a secret (a token, a header value) that must never reach a response.
function messageFor(issue: $ZodIssue): string {
  // A message a schema set itself (`regex(re, 'must be …')`, refinements) says it best.
  const own = issue.message && issue.message !== 'Invalid input' ? issue.message : undefined;
  if (own !== undefined && (issue.code === 'custom' || issue.code === 'invalid_format')) return own;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `at most ${issue.maximum} characters`
        : issue.origin === 'array' || issue.origin === 'set'
          ? `at most ${issue.maximum} items`
          : `at most ${issue.maximum}`;
    case 'too_small':
      return issue.origin === 'string'
        ? `at least ${issue.minimum} characters`
        : issue.origin === 'array' || issue.origin === 'set'
          ? `at least ${issue.minimum} items`
          : `at least ${issue.minimum}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'has an invalid format' : `must be a valid ${issue.format}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => k.slice(0, 64)).join(', ')}`;
    case 'invalid_key':
      return 'has an invalid key';
    case 'invalid_union':
      return 'matches none of the allowed shapes';
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    default:
      return issue.message && issue.message !== 'Invalid input' ? issue.message : 'is invalid';
  }
}

function pathOf(prefix: string, path: PropertyKey[]): string {
  const parts = [prefix, ...path.map((p) => String(p).slice(0, 128))].filter((p) => p !== '');
  return parts.join('.');
}

/**
 * Validates `value` against a zod/mini schema. Throws {@link ValidationError}
 * (422 `invalid_request`, `details.errors` = {@link FieldError}[]) on failure.
 * `prefix` is prepended to each path (e.g. `query`).
 */
export function validate<S extends ZodMiniType>(schema: S, value: unknown, prefix = ''): Infer<S> {
  const result = safeParse(schema, value);
  if (result.success) return result.data as Infer<S>;
  const errors: FieldError[] = result.error.issues
    .slice(0, MAX_ERRORS)
    .map((issue) => ({ path: pathOf(prefix, issue.path), message: messageFor(issue) }));
  throw new ValidationError('The request is invalid.', { details: { errors } });
}

/** Options of {@link readJson}. */
export interface ReadJsonOptions {
  /** Value used for an empty body; when unset, an empty body is an error. */
  emptyAs?: unknown;
}

/**
 * Reads the request body as JSON without trusting it: an empty body (unless `emptyAs`), bad
 * JSON, or a non-object top level throw {@link ValidationError}. The body limit runs before.
 */
export async function readJson(c: Context, options: ReadJsonOptions = {}): Promise<unknown> {
  const text = await c.req.text();
  // Only JSON's own whitespace (RFC 8259 §2) makes a body empty: `trim()` would also take a form
  // feed or U+00A0, which are no JSON at all.
  if (/^[ \t\n\r]*$/.test(text)) {
    if ('emptyAs' in options) return options.emptyAs;
    throw new ValidationError('The request body is empty.', {
      details: { errors: [{ path: '', message: 'a JSON object is required' }] },
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError('The request body is not valid JSON.', {
      details: { errors: [{ path: '', message: 'is not valid JSON' }] },
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('The request body must be a JSON object.', {
      details: { errors: [{ path: '', message: 'expected object' }] },
    });
  }
  return value;
}

/** Reads the JSON body and validates it: {@link readJson} then {@link validate}. */
export async function parseBody<S extends ZodMiniType>(
  c: Context,
  schema: S,
  options?: ReadJsonOptions,
): Promise<Infer<S>> {
  return validate(schema, await readJson(c, options));
}

/** Validates the query string (single values) against a schema; paths are prefixed `query`. */
export function parseQuery<S extends ZodMiniType>(c: Context, schema: S): Infer<S> {
  return validate(schema, c.req.query(), 'query');
}
