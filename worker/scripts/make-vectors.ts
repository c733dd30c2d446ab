/**
 * Writes test vectors of sealed dispatch metadata (docs/api.md §3) for the Python opener's tests:
 * valid ones sealed by the contract package's claims sealer (the one the server's sealer,
 * functions/core/sealing.ts, seals with) and every kind of invalid one, the bad headers hand-built with node:crypto so any header can be expressed.
 * Each vector's expected outcome is checked against the TypeScript opener before it is written,
 * so the two openers are held to the same codes.
 *
 * Usage (from the repository root): npx tsx worker/scripts/make-vectors.ts <outdir>
 * Writes <outdir>/dispatch-vectors.json.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createClaimsSealer,
  DISPATCH_ISSUER,
  type DispatchErrorCode,
  type McpServerGrant,
  parseKeyring,
} from '@livekit-mcp-dispatch/contract';
import { DispatchMetadataError, openDispatchMetadata } from '../src/open.js';

const AGENT = 'mcp-agent';
const ROOM = 'lk-mcp-acme-7f3k2q';
const HEADER = { alg: 'dir', enc: 'A256GCM', kid: 'k2026-11', typ: 'lk-mcp-dispatch+jwt' };

interface Vector {
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

const keyringJson = { current: 'k2026-11', keys: { 'k2026-11': randomKey(), 'k2026-05': randomKey() } };
const otherKeyringJson = { current: 'k2026-11', keys: { 'k2026-11': randomKey() } };
const strangerKeyringJson = { current: 'k-unknown', keys: { 'k-unknown': randomKey() } };

function parsed(json: { current: string; keys: Record<string, string> }) {
  const { keyring, problems } = parseKeyring('vectors', json);
  if (!keyring) throw new Error(problems.join('; '));
  return keyring;
}

const now = Math.floor(Date.now() / 1000);
const servers: McpServerGrant[] = [
  {
    name: 'notes',
    url: 'https://mcp.example.com/mcp',
    transport: 'streamable_http',
    headers: { Authorization: 'Bearer tok-alice-secret', 'X-Tenant': 'acme' },
    allowed_tools: ['whoami', 'notes_search'],
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
  });
}

/** A compact JWE built by hand: any header text, any payload, AES-GCM with the header as AAD. */
function rawSeal(
  header: object | string,
  payload: object | string,
  key: string,
  tweak: { encryptedKey?: string } = {},
): string {
  const headerSegment = b64(typeof header === 'string' ? header : JSON.stringify(header));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64url'), iv);
  cipher.setAAD(Buffer.from(headerSegment, 'ascii'));
  const plaintext = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
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
  const withHeader = (header: object | string) => rawSeal(header, claimsBase, key);
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
  ];
}

async function outcome(vector: Vector): Promise<string> {
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

async function main(): Promise<void> {
  const outdir = process.argv[2];
  if (!outdir) throw new Error('usage: make-vectors.ts <outdir>');
  const vectors = await build();
  const mismatches: string[] = [];
  for (const vector of vectors) {
    const expected = 'ok' in vector.expect ? 'ok' : vector.expect.code;
    const actual = await outcome(vector);
    if (actual !== expected)
      mismatches.push(`${vector.name}: expected ${expected}, TypeScript opener gave ${actual}`);
  }
  if (mismatches.length > 0)
    throw new Error(`vectors disagree with the TypeScript opener:\n${mismatches.join('\n')}`);
  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, 'dispatch-vectors.json');
  const expected_grant = {
    user_id: 'alice',
    tenant_id: 'acme',
    participant_identity: 'alice',
    room_name: ROOM,
    agent_name: AGENT,
    client: '{"locale":"de-DE"}',
    mcp_servers: servers,
  };
  writeFileSync(
    file,
    `${JSON.stringify({ now, agent_name: AGENT, room_name: ROOM, keyring: keyringJson, expected_grant, vectors }, null, 2)}\n`,
  );
  process.stdout.write(`${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
