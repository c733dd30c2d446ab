import { describe, expect, it } from 'vitest';
import {
  headerNameProblem,
  isPrototypeKey,
  mcpHeadersProblems,
  tenantBodySchema,
  userBodySchema,
} from '../../functions/core/admin-input.js';
import { ValidationError } from '../../functions/core/errors.js';
import { validate } from '../../functions/http/validate.js';

/** The failing paths of a body, parsed from raw JSON text as the admin API reads it. */
function refusedPaths(schema: typeof tenantBodySchema | typeof userBodySchema, raw: string): string[] {
  try {
    validate(schema, JSON.parse(raw));
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    const errors = (err as ValidationError).details?.errors as { path: string }[];
    return errors.map((e) => e.path);
  }
  throw new Error('expected a ValidationError');
}

const TRANSPORT_OWNED = [
  'Content-Type',
  'Content-Length',
  'Accept',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Content-Encoding',
  'Origin',
  'Set-Cookie',
  'X-Forwarded-For',
  'X-Forwarded-Host',
  'x-forwarded-proto',
  'Forwarded',
];
const HOP_BY_HOP_AND_CREDENTIALS = [
  'Host',
  'Cookie',
  'Authorization',
  'Connection',
  'Keep-Alive',
  'TE',
  'Trailer',
];

describe('MCP header names (CONTRACT §6)', () => {
  it.each([...TRANSPORT_OWNED, ...HOP_BY_HOP_AND_CREDENTIALS])('refuses %s in any letter case', (name) => {
    for (const spelling of [name, name.toLowerCase(), name.toUpperCase()]) {
      expect(headerNameProblem(spelling), spelling).toBe('may not be set');
    }
  });

  it.each([
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '__defineGetter__',
  ])('refuses the prototype key %s', (name) => {
    expect(isPrototypeKey(name)).toBe(true);
    expect(headerNameProblem(name)).toBe('is a reserved name');
  });

  it.each([
    'X-Api-Key',
    'Accept-Language',
    'X-Forwarded',
    'Originator',
    'Content-Language',
    'Mcp-Session-Hint',
  ])('allows %s', (name) => {
    expect(isPrototypeKey(name)).toBe(false);
    expect(headerNameProblem(name)).toBeNull();
  });

  it('sees an own __proto__ key that JSON.parse made', () => {
    // Prepare
    const parsed = JSON.parse('{"__proto__":"x","X-A":"1"}') as Record<string, unknown>;

    // Act
    const problems = mcpHeadersProblems(parsed);

    // Assess
    expect(problems).toEqual([{ name: '__proto__', message: 'is a reserved name' }]);
  });
});

describe('admin bodies from raw JSON text', () => {
  const mcp = (headers: string) =>
    `{"name":"T","mcp":{"url":"https://mcp.example.com/mcp","headers":${headers}}}`;

  it.each([
    ['a string', '{"__proto__":"x"}'],
    ['an object', '{"__proto__":{"X-Injected":"1"}}'],
    ['beside a good header', '{"X-Ok":"1","__proto__":"x"}'],
  ])(
    'refuses a header map with an own __proto__ holding %s, never clearing it silently',
    (_label, headers) => {
      expect(refusedPaths(tenantBodySchema, mcp(headers))).toEqual(['mcp.headers.__proto__']);
      expect(refusedPaths(userBodySchema, mcp(headers).replace('"name":"T",', ''))).toEqual([
        'mcp.headers.__proto__',
      ]);
    },
  );

  it('names every refused header of one map', () => {
    const paths = refusedPaths(
      tenantBodySchema,
      mcp('{"constructor":"a","prototype":"b","content-type":"c","MCP-PROTOCOL-VERSION":"d","X-Ok":"e"}'),
    );
    expect(paths).toEqual([
      'mcp.headers.constructor',
      'mcp.headers.prototype',
      'mcp.headers.content-type',
      'mcp.headers.MCP-PROTOCOL-VERSION',
    ]);
  });

  it('refuses __proto__ as a field of the body or of mcp', () => {
    expect(refusedPaths(tenantBodySchema, '{"name":"T","__proto__":{"status":"suspended"}}')).toEqual(['']);
    expect(
      refusedPaths(userBodySchema, '{"mcp":{"url":"https://mcp.example.com/mcp","__proto__":{"token":"t"}}}'),
    ).toEqual(['mcp']);
  });

  it('keeps a valid header map as it is', () => {
    const body = validate(tenantBodySchema, JSON.parse(mcp('{"X-Api-Key":"k","Accept-Language":"de"}')));
    expect(body.mcp?.headers).toEqual({ 'X-Api-Key': 'k', 'Accept-Language': 'de' });
    expect(Object.getPrototypeOf(body.mcp?.headers)).toBe(Object.prototype);
  });
});
