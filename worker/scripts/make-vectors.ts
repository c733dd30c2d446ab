/**
 * Writes test vectors of sealed dispatch metadata (docs/api.md §3) for the Python opener's tests:
 * valid ones sealed by the contract package's claims sealer (the one the server's sealer,
 * functions/core/sealing.ts, seals with) and every kind of invalid one, the bad headers hand-built with node:crypto so any header can be expressed.
 * Each named vector's expected outcome is written here and checked against the TypeScript opener
 * before the file is written; the fuzz vectors (fast-check) expect whatever code the TypeScript
 * opener gives, so the Python suite holds the two openers to the same verdict for the same bytes.
 * worker/test/vectors.test.ts runs the same checks in the TypeScript suite.
 *
 * Usage (from the repository root): npx tsx worker/scripts/make-vectors.ts <outdir>
 * Writes <outdir>/dispatch-vectors.json. `VECTORS_SEED` fixes the fuzz seed (else random; the
 * file records it).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createClaimsSealer,
  DISPATCH_ISSUER,
  type DispatchErrorCode,
  MAX_CLAIMS_DEPTH,
  MAX_NUMERIC_DATE,
  type McpServerGrant,
  makeWorkerAssertion,
  parseKeyring,
} from '@livekit-mcp-dispatch/contract';
import fc from 'fast-check';
import { DispatchMetadataError, openDispatchMetadata } from '../src/open.js';

const AGENT = 'mcp-agent';
const ROOM = 'lk-mcp-acme-7f3k2q';
const HEADER = { alg: 'dir', enc: 'A256GCM', kid: 'k2026-11', typ: 'lk-mcp-dispatch+jwt' };

/** One vector: metadata bytes and the outcome both openers must give. */
export interface Vector {
  name: string;
  metadata: string;
  /** Open as this agent (default: the file's agent_name). */
  agent_name?: string;
  /** Open for this room (default: the file's room_name). */
  room_name?: string;
  expect: { ok: true } | { code: DispatchErrorCode };
}

const b64 = (data: Uint8Array | string) => Buffer.from(data).toString('base64url');
const randomKey = () => b64(randomBytes(32));

/** The keyring every vector is opened with. */
export const keyringJson = {
  current: 'k2026-11',
  keys: { 'k2026-11': randomKey(), 'k2026-05': randomKey() },
};
const otherKeyringJson = { current: 'k2026-11', keys: { 'k2026-11': randomKey() } };
const strangerKeyringJson = { current: 'k-unknown', keys: { 'k-unknown': randomKey() } };

function parsed(json: { current: string; keys: Record<string, string> }) {
  const { keyring, problems } = parseKeyring('vectors', json);
  if (!keyring) throw new Error(problems.join('; '));
  return keyring;
}

/** The time every vector is opened at, in epoch seconds. */
export const now = Math.floor(Date.now() / 1000);
const servers: McpServerGrant[] = [
  {
    name: 'notes',
    url: 'https://mcp.example.com/mcp',
    transport: 'streamable_http',
    headers: { Authorization: 'Bearer tok-alice-secret', 'X-Tenant': 'acme' },
    allowed_tools: ['whoami', 'notes_search'],
    auth: 'oauth',
    expires_at: now + 900,
  },
  {
    name: 'legacy',
    url: 'https://legacy.example.com/sse',
    transport: 'sse',
    headers: { Authorization: 'Bearer tok-alice-legacy' },
  },
];
const claimsBase = {
  iss: DISPATCH_ISSUER,
  aud: AGENT,
  sub: 'alice',
  tid: 'acme',
  room: ROOM,
  pid: 'alice',
  iat: now,
  exp: now + 600,
  jti: 'jti-0001',
  mcp_servers: servers,
};
const SID = 'sid-3q9f7w2k5m8x1c4v6b0n';
const REFRESH_URL = 'https://dispatch.example.com/v1/worker/credentials';

async function seal(
  keyring: { current: string; keys: Record<string, string> },
  options: { issuedAt?: number; ttlSeconds?: number; agentName?: string; roomName?: string } = {},
): Promise<string> {
  // The claims exactly as the server's sealer builds them (functions/core/sealing.ts).
  const iat = options.issuedAt ?? now;
  return createClaimsSealer(parsed(keyring))({
    iss: DISPATCH_ISSUER,
    aud: options.agentName ?? AGENT,
    sub: 'alice',
    tid: 'acme',
    room: options.roomName ?? ROOM,
    pid: 'alice',
    iat,
    exp: iat + (options.ttlSeconds ?? 600),
    jti: randomBytes(16).toString('base64url'),
    mcp_servers: servers,
    client: '{"locale":"de-DE"}',
    sid: SID,
    refresh_at: iat + 300,
    refresh_url: REFRESH_URL,
  });
}

/**
 * A compact JWE built by hand: any header, any payload, AES-GCM with the header as AAD. Text is
 * UTF-8 encoded (a lone surrogate becomes U+FFFD); bytes are taken as they are.
 */
function rawSeal(
  header: object | string | Uint8Array,
  payload: object | string | Uint8Array,
  key: string,
  tweak: { encryptedKey?: string } = {},
): string {
  const headerSegment = b64(
    typeof header === 'string' || header instanceof Uint8Array ? header : JSON.stringify(header),
  );
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64url'), iv);
  cipher.setAAD(Buffer.from(headerSegment, 'ascii'));
  const plaintext = Buffer.from(
    typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload),
  );
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [headerSegment, tweak.encryptedKey ?? '', b64(iv), b64(ciphertext), b64(cipher.getAuthTag())].join(
    '.',
  );
}

function flip(metadata: string, segment: number): string {
  const parts = metadata.split('.');
  const bytes = Buffer.from(parts[segment] as string, 'base64url');
  bytes[0] = (bytes[0] as number) ^ 0x01;
  parts[segment] = b64(bytes);
  return parts.join('.');
}

async function build(): Promise<Vector[]> {
  const key = keyringJson.keys['k2026-11'];
  const valid = await seal(keyringJson);
  const bad = (
    name: string,
    metadata: string,
    code: DispatchErrorCode,
    extra: Partial<Vector> = {},
  ): Vector => ({
    name,
    metadata,
    expect: { code },
    ...extra,
  });
  const ok = (name: string, metadata: string): Vector => ({ name, metadata, expect: { ok: true } });
  const withHeader = (header: object | string | Uint8Array) => rawSeal(header, claimsBase, key);
  const withClaims = (overrides: Record<string, unknown>) =>
    rawSeal(HEADER, { ...claimsBase, ...overrides }, key);
  // Claims with one member given as raw JSON text (number literals JSON.stringify cannot write).
  const withRawClaim = (name: string, raw: string) =>
    rawSeal(HEADER, JSON.stringify({ ...claimsBase, [name]: '\u0000RAW' }).replace('"\\u0000RAW"', raw), key);
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const headerWithKid = (kidJson: string) =>
    `{"alg":"dir","enc":"A256GCM","kid":${kidJson},"typ":"lk-mcp-dispatch+jwt"}`;
  return [
    ok('valid', valid),
    ok('valid_previous_key', await seal({ current: 'k2026-05', keys: keyringJson.keys })),
    ok('valid_exp_within_leeway', await seal(keyringJson, { issuedAt: now - 80, ttlSeconds: 60 })),
    ok('valid_hand_built', withHeader(HEADER)),
    ok(
      'valid_header_members_reordered',
      withHeader({ typ: HEADER.typ, kid: HEADER.kid, enc: 'A256GCM', alg: 'dir' }),
    ),
    bad('wrong_room', valid, 'wrong_room', { room_name: 'lk-mcp-acme-otherroom' }),
    bad('wrong_agent', valid, 'wrong_audience', { agent_name: 'other-agent' }),
    bad('expired', await seal(keyringJson, { issuedAt: now - 3600, ttlSeconds: 600 }), 'expired'),
    bad(
      'expired_just_past_leeway',
      await seal(keyringJson, { issuedAt: now - 100, ttlSeconds: 60 }),
      'expired',
    ),
    bad('unknown_kid', await seal(strangerKeyringJson), 'unknown_kid'),
    bad('wrong_key_same_kid', await seal(otherKeyringJson), 'decrypt_failed'),
    bad('flipped_ciphertext_byte', flip(valid, 3), 'decrypt_failed'),
    bad('flipped_tag_byte', flip(valid, 4), 'decrypt_failed'),
    bad('flipped_iv_byte', flip(valid, 2), 'decrypt_failed'),
    bad('zip_header', withHeader({ ...HEADER, zip: 'DEF' }), 'bad_header'),
    bad('crit_header', withHeader({ ...HEADER, crit: ['exp'], exp: now + 600 }), 'bad_header'),
    bad('alg_A256KW', withHeader({ ...HEADER, alg: 'A256KW' }), 'bad_header'),
    bad('alg_none', withHeader({ ...HEADER, alg: 'none' }), 'bad_header'),
    bad('enc_A128GCM', withHeader({ ...HEADER, enc: 'A128GCM' }), 'bad_header'),
    bad('enc_A256CBC_HS512', withHeader({ ...HEADER, enc: 'A256CBC-HS512' }), 'bad_header'),
    bad('typ_JWT', withHeader({ ...HEADER, typ: 'JWT' }), 'bad_header'),
    bad('typ_missing', withHeader({ alg: 'dir', enc: 'A256GCM', kid: HEADER.kid }), 'bad_header'),
    bad('extra_member_cty', withHeader({ ...HEADER, cty: 'JWT' }), 'bad_header'),
    bad('header_not_minimal_json', withHeader(JSON.stringify(HEADER, null, 1)), 'bad_header'),
    bad(
      'header_duplicate_member',
      withHeader('{"alg":"A256KW","alg":"dir","enc":"A256GCM","kid":"k2026-11","typ":"lk-mcp-dispatch+jwt"}'),
      'bad_header',
    ),
    bad('header_not_json', withHeader('not json'), 'bad_header'),
    bad('kid_not_string', withHeader({ ...HEADER, kid: 7 }), 'bad_header'),
    bad('empty_string', '', 'malformed'),
    bad('four_segments', valid.split('.').slice(0, 4).join('.'), 'malformed'),
    bad(
      'encrypted_key_present',
      rawSeal(HEADER, claimsBase, key, { encryptedKey: b64(randomBytes(32)) }),
      'malformed',
    ),
    bad('ciphertext_padded_base64', `${valid}=`, 'malformed'),
    bad('payload_not_json', rawSeal(HEADER, 'not json', key), 'malformed'),
    bad('payload_json_array', rawSeal(HEADER, '[1,2]', key), 'malformed'),
    bad('wrong_iss', rawSeal(HEADER, { ...claimsBase, iss: 'someone-else' }, key), 'malformed'),
    bad('missing_mcp_servers', rawSeal(HEADER, { ...claimsBase, mcp_servers: undefined }, key), 'malformed'),
    bad('exp_not_number', rawSeal(HEADER, { ...claimsBase, exp: String(now + 600) }, key), 'malformed'),
    bad(
      'bad_transport',
      rawSeal(HEADER, { ...claimsBase, mcp_servers: [{ ...servers[0], transport: 'websocket' }] }, key),
      'malformed',
    ),
    bad(
      'header_value_not_string',
      rawSeal(HEADER, { ...claimsBase, mcp_servers: [{ ...servers[0], headers: { 'X-N': 1 } }] }, key),
      'malformed',
    ),
    bad('client_null', rawSeal(HEADER, { ...claimsBase, client: null }, key), 'malformed'),
    bad(
      'allowed_tools_null',
      rawSeal(HEADER, { ...claimsBase, mcp_servers: [{ ...servers[0], allowed_tools: null }] }, key),
      'malformed',
    ),
    bad(
      'payload_nan_literal',
      rawSeal(HEADER, JSON.stringify(claimsBase).replace('{', '{"x":NaN,'), key),
      'malformed',
    ),
    bad('payload_lone_surrogate', rawSeal(HEADER, '\ud800', key), 'malformed'),
    // A UTF-8 byte order mark is not JSON: Python's json refuses it, so TextDecoder must keep it.
    bad('header_leading_bom', withHeader(`\ufeff${JSON.stringify(HEADER)}`), 'bad_header'),
    bad('payload_leading_bom', rawSeal(HEADER, `\ufeff${JSON.stringify(claimsBase)}`, key), 'malformed'),
    // The leeway boundary (CONTRACT §3: `exp` more than 30 s in the past is expired).
    ok('valid_exp_exactly_30_s_past', withClaims({ exp: now - 30 })),
    bad('expired_exp_30_5_s_past', withClaims({ exp: now - 30.5 }), 'expired'),
    bad('expired_exp_31_s_past', await seal(keyringJson, { issuedAt: now - 91, ttlSeconds: 60 }), 'expired'),
    ok('valid_exp_fractional', withClaims({ exp: now + 0.25 })),
    // NumericDate bounds: 0 to 9999-12-31T23:59:59Z; beyond is malformed, never an overflow.
    ok('valid_exp_latest_numeric_date', withClaims({ exp: MAX_NUMERIC_DATE })),
    bad('exp_after_year_9999', withClaims({ exp: MAX_NUMERIC_DATE + 1 }), 'malformed'),
    bad('exp_1e300', withClaims({ exp: 1e300 }), 'malformed'),
    bad('exp_400_digit_integer', withRawClaim('exp', '9'.repeat(400)), 'malformed'),
    bad('exp_5000_digit_integer', withRawClaim('exp', '9'.repeat(5000)), 'malformed'),
    bad('exp_1e400_overflows_to_infinity', withRawClaim('exp', '1e400'), 'malformed'),
    bad('exp_negative', withClaims({ exp: -1 }), 'malformed'),
    bad('exp_true', withClaims({ exp: true }), 'malformed'),
    bad('iat_1e300', withClaims({ iat: 1e300 }), 'malformed'),
    bad('iat_negative', withClaims({ iat: -1 }), 'malformed'),
    bad('iat_missing', withClaims({ iat: undefined }), 'malformed'),
    ok('valid_nbf_past', withClaims({ nbf: now - 3600 })),
    ok('valid_nbf_30_s_ahead', withClaims({ nbf: now + 30 })),
    bad('nbf_31_s_ahead', withClaims({ nbf: now + 31 }), 'expired'),
    bad('nbf_string', withClaims({ nbf: String(now) }), 'malformed'),
    bad('nbf_null', withClaims({ nbf: null }), 'malformed'),
    bad('nbf_1e300', withClaims({ nbf: 1e300 }), 'malformed'),
    // Number literals Python would parse differently from JavaScript, in a claim no one reads.
    ok('valid_unknown_claim_5000_digit_integer', withRawClaim('x', '1'.repeat(5000))),
    ok('valid_unknown_claim_1e400', withRawClaim('x', '-1e400')),
    // Nesting: 32 levels at most (the claims object is the first).
    ok('valid_nesting_at_limit', withRawClaim('x', nested(MAX_CLAIMS_DEPTH - 1))),
    bad('nesting_past_limit', withRawClaim('x', nested(MAX_CLAIMS_DEPTH)), 'malformed'),
    bad('nesting_100000_deep', withRawClaim('x', nested(100_000)), 'malformed'),
    ok('valid_brackets_inside_strings', withClaims({ x: `\\"${'['.repeat(100)}`, y: '{{{{' })),
    bad('header_nesting_100000_deep', withHeader(nested(100_000)), 'bad_header'),
    // An empty plaintext decrypts (the tag is valid) but holds no claims.
    bad('empty_plaintext', rawSeal(HEADER, '', key), 'malformed'),
    bad('whitespace_plaintext', rawSeal(HEADER, ' \n', key), 'malformed'),
    // kid spellings: a lone surrogate is no Unicode text; an escaped pair is not minimal JSON.
    bad('kid_lone_surrogate_escaped', withHeader(headerWithKid('"\\ud800"')), 'bad_header'),
    bad('kid_lone_low_surrogate_escaped', withHeader(headerWithKid('"k\\udc00"')), 'bad_header'),
    bad(
      'kid_surrogate_as_utf8_bytes',
      withHeader(
        Buffer.concat([
          Buffer.from('{"alg":"dir","enc":"A256GCM","kid":"'),
          Buffer.from([0xed, 0xa0, 0x80]),
          Buffer.from('","typ":"lk-mcp-dispatch+jwt"}'),
        ]),
      ),
      'bad_header',
    ),
    bad('kid_surrogate_pair_escaped', withHeader(headerWithKid('"\\ud83d\\ude00"')), 'bad_header'),
    bad('kid_emoji', withHeader(headerWithKid('"\u{1f600}"')), 'unknown_kid'),
    bad('kid_empty', withHeader(headerWithKid('""')), 'bad_header'),
    // Lone surrogates inside claims are strings both openers keep (the server never seals one).
    ok('valid_client_lone_surrogate', withRawClaim('client', '"\\ud800"')),
    // The renewal claims (docs/api.md §3, §9): optional, but of the right type when present.
    ok('valid_without_renewal_claims', withClaims({})),
    ok('valid_renewal_claims', withClaims({ sid: SID, refresh_at: now + 300, refresh_url: REFRESH_URL })),
    ok('valid_refresh_at_past', withClaims({ refresh_at: now - 3600 })),
    ok('valid_refresh_at_fractional', withClaims({ refresh_at: now + 0.5 })),
    bad('sid_empty', withClaims({ sid: '' }), 'malformed'),
    bad('sid_number', withClaims({ sid: 7 }), 'malformed'),
    bad('sid_null', withClaims({ sid: null }), 'malformed'),
    bad('refresh_url_empty', withClaims({ refresh_url: '' }), 'malformed'),
    bad('refresh_url_object', withClaims({ refresh_url: { href: REFRESH_URL } }), 'malformed'),
    bad('refresh_at_string', withClaims({ refresh_at: String(now) }), 'malformed'),
    bad('refresh_at_negative', withClaims({ refresh_at: -1 }), 'malformed'),
    bad('refresh_at_after_year_9999', withClaims({ refresh_at: MAX_NUMERIC_DATE + 1 }), 'malformed'),
    bad('refresh_at_true', withClaims({ refresh_at: true }), 'malformed'),
    bad('refresh_at_null', withClaims({ refresh_at: null }), 'malformed'),
    ...(['static', 'oauth', 'user_token', 'none'] as const).map((auth) =>
      ok(`valid_server_auth_${auth}`, withClaims({ mcp_servers: [{ ...servers[0], auth }] })),
    ),
    bad(
      'server_auth_unknown',
      withClaims({ mcp_servers: [{ ...servers[0], auth: 'password' }] }),
      'malformed',
    ),
    bad(
      'server_auth_uppercase',
      withClaims({ mcp_servers: [{ ...servers[0], auth: 'OAUTH' }] }),
      'malformed',
    ),
    bad('server_auth_null', withClaims({ mcp_servers: [{ ...servers[0], auth: null }] }), 'malformed'),
    ok(
      'valid_server_expires_at_fractional',
      withClaims({ mcp_servers: [{ ...servers[0], expires_at: now + 0.5 }] }),
    ),
    bad(
      'server_expires_at_string',
      withClaims({ mcp_servers: [{ ...servers[0], expires_at: String(now) }] }),
      'malformed',
    ),
    bad(
      'server_expires_at_negative',
      withClaims({ mcp_servers: [{ ...servers[0], expires_at: -1 }] }),
      'malformed',
    ),
    bad(
      'server_expires_at_1e300',
      withClaims({ mcp_servers: [{ ...servers[0], expires_at: 1e300 }] }),
      'malformed',
    ),
    bad(
      'server_expires_at_null',
      withClaims({ mcp_servers: [{ ...servers[0], expires_at: null }] }),
      'malformed',
    ),
  ];
}

/** The TypeScript opener's verdict on `vector`: `ok` or its code. Anything else it throws is a bug. */
export async function outcome(
  vector: Pick<Vector, 'metadata' | 'agent_name' | 'room_name'>,
): Promise<string> {
  try {
    await openDispatchMetadata(vector.metadata, {
      keyring: keyringJson,
      agentName: vector.agent_name ?? AGENT,
      roomName: vector.room_name ?? ROOM,
      now: new Date(now * 1000),
    });
    return 'ok';
  } catch (error) {
    if (error instanceof DispatchMetadataError) return error.code;
    throw error;
  }
}

// Any UTF-16 code unit, lone surrogates included; fast-check's own units never yield those.
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const anyText = fc.oneof(fc.string({ unit: codeUnit, maxLength: 12 }), fc.string({ maxLength: 12 }));
const anyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.double({ min: now - 100, max: now + 100, noNaN: true }),
  fc.constantFrom(0, -0, now - 31, now - 30, now + 30, now + 31, MAX_NUMERIC_DATE, MAX_NUMERIC_DATE + 1),
);
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), anyText, anyNumber);
const CLAIMS = [
  'iss',
  'aud',
  'sub',
  'tid',
  'room',
  'pid',
  'iat',
  'exp',
  'nbf',
  'jti',
  'mcp_servers',
  'client',
  'sid',
  'refresh_at',
  'refresh_url',
];
const B64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=';

/** What one fuzz case does to otherwise valid metadata. */
type FuzzCase =
  | { kind: 'claim'; name: string; value: unknown; drop: boolean }
  | { kind: 'header'; name: string; value: unknown }
  | { kind: 'payload'; text: string }
  | { kind: 'server'; name: string; value: unknown }
  | { kind: 'edit'; at: number; char: string; cut: boolean };

const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  fc.record({
    kind: fc.constant('claim' as const),
    name: fc.oneof({ arbitrary: fc.constantFrom(...CLAIMS), weight: 4 }, { arbitrary: anyText, weight: 1 }),
    value: fc.oneof(anyJson, fc.constantFrom(AGENT, ROOM, '', 'alice')),
    drop: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('claim' as const),
    name: fc.constantFrom('iat', 'exp', 'nbf', 'refresh_at'),
    value: anyNumber,
    drop: fc.constant(false),
  }),
  fc.record({
    kind: fc.constant('header' as const),
    name: fc.oneof(fc.constantFrom('alg', 'enc', 'kid', 'typ', 'zip', 'crit'), anyText),
    value: anyJson,
  }),
  fc.record({
    kind: fc.constant('payload' as const),
    text: fc.oneof(fc.json({ maxDepth: 3 }), anyText),
  }),
  fc.record({
    kind: fc.constant('server' as const),
    name: fc.constantFrom('name', 'url', 'transport', 'headers', 'allowed_tools', 'auth', 'expires_at'),
    value: anyJson,
  }),
  fc.record({
    kind: fc.constant('edit' as const),
    at: fc.nat(),
    char: fc.constantFrom(...B64URL_CHARS),
    cut: fc.boolean(),
  }),
);

async function fuzzMetadata(c: FuzzCase, valid: string): Promise<string> {
  const key = keyringJson.keys['k2026-11'];
  switch (c.kind) {
    case 'claim': {
      const claims: Record<string, unknown> = { ...claimsBase };
      if (c.drop) delete claims[c.name];
      // Own property, so a claim named "__proto__" is a claim.
      else Object.defineProperty(claims, c.name, { value: c.value, enumerable: true });
      return rawSeal(HEADER, claims, key);
    }
    case 'header': {
      const header: Record<string, unknown> = { ...HEADER };
      Object.defineProperty(header, c.name, { value: c.value, enumerable: true });
      return rawSeal(header, claimsBase, key);
    }
    case 'payload':
      return rawSeal(HEADER, c.text, key);
    case 'server': {
      const server: Record<string, unknown> = { ...servers[0] };
      Object.defineProperty(server, c.name, { value: c.value, enumerable: true });
      return rawSeal(HEADER, { ...claimsBase, mcp_servers: [server] }, key);
    }
    case 'edit': {
      // Cut no shorter than 32 characters: the suite also checks errors never quote the metadata.
      const at = 32 + (c.at % (valid.length - 31));
      return c.cut ? valid.slice(0, at) : `${valid.slice(0, at)}${c.char}${valid.slice(at + 1)}`;
    }
  }
}

/**
 * `count` vectors from fast-check cases (seeded with `seed`), each expecting the TypeScript
 * opener's own verdict: the Python suite then asserts it gives the same for the same bytes.
 */
export async function fuzzVectors(count: number, seed: number): Promise<Vector[]> {
  const valid = await seal(keyringJson);
  const cases = fc.sample(fuzzCase, { numRuns: count, seed });
  const vectors: Vector[] = [];
  for (const [i, c] of cases.entries()) {
    const metadata = await fuzzMetadata(c, valid);
    const verdict = await outcome({ metadata });
    vectors.push({
      name: `fuzz_${i}_${c.kind}`,
      metadata,
      expect: verdict === 'ok' ? { ok: true } : { code: verdict as DispatchErrorCode },
    });
  }
  return vectors;
}

/** One worker assertion (docs/api.md §9) and the exact bytes both libraries must make for it. */
export interface AssertionVector {
  name: string;
  keyring: { current: string; keys: Record<string, string> };
  agent_name: string;
  refresh_url: string;
  sid: string;
  now: number;
  lifetime?: number;
  jti: string;
  token: string;
}

/**
 * Assertions made by the contract's `makeWorkerAssertion`: the Python `make_worker_assertion` must
 * give the same token for the same inputs. Strings that JSON escapes, non-ASCII text, a lone
 * surrogate (JSON.stringify writes `\ud800`), a fractional `now`, a short lifetime, the other key.
 */
export async function assertionVectors(): Promise<AssertionVector[]> {
  const inputs: Omit<AssertionVector, 'token' | 'keyring'>[] = [
    { name: 'plain', agent_name: AGENT, refresh_url: REFRESH_URL, sid: SID, now, jti: 'jti-a1' },
    {
      name: 'fractional_now',
      agent_name: AGENT,
      refresh_url: REFRESH_URL,
      sid: SID,
      now: now + 0.999,
      jti: 'j',
    },
    {
      name: 'short_lifetime',
      agent_name: AGENT,
      refresh_url: REFRESH_URL,
      sid: SID,
      now,
      lifetime: 5,
      jti: 'j5',
    },
    {
      name: 'url_with_query_and_slashes',
      agent_name: AGENT,
      refresh_url: 'https://dispatch.example.com/v1/worker/credentials?x=1&y=a/b',
      sid: SID,
      now,
      jti: 'jti/+=',
    },
    {
      name: 'json_escapes',
      agent_name: 'agent "quoted" \\ back',
      refresh_url: REFRESH_URL,
      sid: 'tab\t nl\n cr\r bs\b ff\f nul\u0000 us\u001f del\u007f',
      now,
      jti: 'j-esc',
    },
    {
      name: 'non_ascii',
      agent_name: 'agént-ü-日本',
      refresh_url: 'https://dispatch.example.com/v1/worker/crédentials',
      sid: 'sid-\u{1f600}-\u2028-\u2029-\ufeff',
      now,
      jti: 'j-ü',
    },
    {
      name: 'lone_surrogates',
      agent_name: AGENT,
      refresh_url: REFRESH_URL,
      sid: 'a\ud800b\udc00c',
      now,
      jti: 'j',
    },
    { name: 'epoch_zero', agent_name: AGENT, refresh_url: REFRESH_URL, sid: SID, now: 0, jti: 'j0' },
  ];
  const vectors: AssertionVector[] = [];
  for (const [i, input] of inputs.entries()) {
    // The last one is made with the previous key as current.
    const keyring = i === inputs.length - 1 ? { ...keyringJson, current: 'k2026-05' } : keyringJson;
    const token = await makeWorkerAssertion({
      keyring: parsed(keyring),
      agentName: input.agent_name,
      refreshUrl: input.refresh_url,
      sid: input.sid,
      now: input.now,
      jti: input.jti,
      ...(input.lifetime === undefined ? {} : { lifetimeSeconds: input.lifetime }),
    });
    vectors.push({ ...input, keyring, token });
  }
  return vectors;
}

/** The vectors file: the named vectors, then the fuzz ones. */
export interface VectorsFile {
  now: number;
  agent_name: string;
  room_name: string;
  keyring: typeof keyringJson;
  fuzz_seed: number;
  expected_grant: Record<string, unknown>;
  vectors: Vector[];
  assertions: AssertionVector[];
}

/** Named vectors whose expectation the TypeScript opener does not meet (empty when all agree). */
export async function mismatches(vectors: Vector[]): Promise<string[]> {
  const found: string[] = [];
  for (const vector of vectors) {
    const expected = 'ok' in vector.expect ? 'ok' : vector.expect.code;
    const actual = await outcome(vector);
    if (actual !== expected)
      found.push(`${vector.name}: expected ${expected}, TypeScript opener gave ${actual}`);
  }
  return found;
}

/** Builds the whole file (`fuzz` fast-check vectors with `seed`), refusing one the TypeScript opener disagrees with. */
export async function buildVectorsFile(fuzz: number, seed: number): Promise<VectorsFile> {
  const named = await build();
  const disagree = await mismatches(named);
  if (disagree.length > 0)
    throw new Error(`vectors disagree with the TypeScript opener:\n${disagree.join('\n')}`);
  return {
    now,
    agent_name: AGENT,
    room_name: ROOM,
    keyring: keyringJson,
    fuzz_seed: seed,
    expected_grant: {
      user_id: 'alice',
      tenant_id: 'acme',
      participant_identity: 'alice',
      room_name: ROOM,
      agent_name: AGENT,
      client: '{"locale":"de-DE"}',
      mcp_servers: servers,
      sid: SID,
      refresh_at: now + 300,
      refresh_url: REFRESH_URL,
    },
    vectors: [...named, ...(await fuzzVectors(fuzz, seed))],
    assertions: await assertionVectors(),
  };
}

/** Named vectors (no fuzz), for the TypeScript suite. */
export { build as namedVectors };

async function main(): Promise<void> {
  const outdir = process.argv[2];
  if (!outdir) throw new Error('usage: make-vectors.ts <outdir>');
  const seed = process.env.VECTORS_SEED
    ? Number(process.env.VECTORS_SEED)
    : Math.floor(Math.random() * 2 ** 31);
  const file = join(outdir, 'dispatch-vectors.json');
  const contents = await buildVectorsFile(FUZZ_COUNT, seed);
  mkdirSync(outdir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(contents, null, 2)}\n`);
  process.stdout.write(`${file}\n`);
}

/** Fuzz vectors per file. */
export const FUZZ_COUNT = 400;

// Run only as a script: worker/test/vectors.test.ts imports this module.
if (
  process.argv[1] !== undefined &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
