import fc from 'fast-check';

/** Keys that attack prototype handling, plus ordinary-looking ones. */
export const hostileKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '__defineGetter__',
    'lk.agent',
    'sip.trunkID',
    '',
    ' ',
    '\u0000',
    'a'.repeat(300),
  ),
  fc.string({ maxLength: 12 }),
);

/** Strings at the edges: unicode oddities, control characters, sizes just over the limits. */
export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40, unit: 'grapheme' }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20, unit: 'binary' }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      '\uD800',
      '\uDFFF',
      'a\uD800b',
      '\u0000',
      '\u202Eevil',
      '\uFEFF{}',
      '\u200B',
      'e\u0301',
      '👩‍👩‍👧‍👦',
      '\r\n',
      'Bearer x',
      '%23#',
      '../../etc/passwd',
      '<script>alert(1)</script>',
      "'; DROP TABLE x; --",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, literally
      '${jndi:ldap://x}',
      'https://169.254.169.254/latest/meta-data',
      'http://localhost:1/mcp',
      '+15551234567',
      'lk-mcp-x-y',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(129, 4097, 5000, 40_000).map((n) => 'x'.repeat(n)) },
);

/** Any JSON-ish value, built from hostile strings and keys, a few levels deep. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(1e308, -0, Number.MAX_SAFE_INTEGER + 2, 0.1),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** An object shaped like `fields` describes, with hostile values and extra hostile keys. */
export function shaped(
  fields: Record<string, fc.Arbitrary<unknown>>,
  options: { wellTypedWeight?: number; extraKeysFreq?: number; required?: string[] } = {},
): fc.Arbitrary<Record<string, unknown>> {
  // Mostly well-typed values, so most requests get past the schema to the code behind it.
  const weight = options.wellTypedWeight ?? 12;
  const entries = Object.entries(fields).map(([k, arb]) => {
    const value = fc.oneof({ weight, arbitrary: arb }, { weight: 1, arbitrary: hostileValue });
    const present = options.required?.includes(k)
      ? fc.option(value, { nil: undefined, freq: 20 })
      : fc.option(value, { nil: undefined, freq: 3 });
    return present.map((v) => [k, v] as const);
  });
  return fc
    .tuple(
      fc.tuple(...entries),
      fc
        .option(fc.dictionary(hostileKey, hostileValue, { minKeys: 1, maxKeys: 2 }), {
          nil: {},
          freq: options.extraKeysFreq ?? 1,
        })
        .map((extra) => extra ?? {}),
    )
    .map(([known, extra]) => {
      const out: Record<string, unknown> = {};
      // defineProperty, so a `__proto__` key becomes an own property, as JSON.parse makes it.
      for (const [k, v] of Object.entries(extra))
        Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
      for (const [k, v] of known) if (v !== undefined) out[k] = v;
      return out;
    });
}

/** Deeply nested JSON text (arrays or objects), which naive recursive code chokes on. */
export const deepNesting = fc
  .tuple(fc.constantFrom(50, 1_000, 10_000, 20_000), fc.boolean(), fc.constantFrom('', '"participant_name":'))
  .map(([depth, arrays, prefix]) => {
    const open = arrays ? '[' : '{"a":';
    const close = arrays ? ']' : '}';
    return `{${prefix === '' ? '"x":' : prefix}${open.repeat(depth)}1${close.repeat(depth)}}`;
  });

/** Text that is not (quite) a JSON object. */
export const malformedJson = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'null',
    '[]',
    '"str"',
    '1e999',
    'NaN',
    '{',
    '{"a":1,}',
    "{'a':1}",
    '{"a":1}{"b":2}',
    '\uFEFF{}',
    '{"a":"\\ud800"}',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"a":1,"a":2}',
    '\u0000',
    'true',
  ),
  fc.string({ maxLength: 30 }),
  fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
);

/** A request body: malformed text, deep nesting, or a hostile shaped object serialised. */
export function bodyText(
  shape: fc.Arbitrary<Record<string, unknown>>,
  shapedWeight = 6,
): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: shapedWeight, arbitrary: shape.map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: malformedJson },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: hostileValue.map((v) => JSON.stringify(v) ?? 'undefined') },
  );
}

/** Names of properties that must never appear on Object.prototype (pollution check). */
export function prototypeSnapshot(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}
