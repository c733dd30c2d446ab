import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  DISPATCH_ERROR_CODES,
  type DispatchErrorCode,
  DispatchMetadataError,
  KeyringError,
  type McpServerGrant,
  openDispatchMetadata,
  parseDispatchKeyring,
} from '@livekit-mcp-dispatch/worker';
import fc from 'fast-check';
import { compactDecrypt } from 'jose';
import { describe, expect, it } from 'vitest';
import { DomainError, ValidationError } from '../../functions/core/errors.js';
import type { Keyring } from '../../functions/core/keyring.js';
import {
  createDispatchSealer,
  createSecretBox,
  type DispatchSealInput,
  type SecretBinding,
  SecretBoxError,
} from '../../functions/core/sealing.js';

const NOW = new Date('2026-11-29T12:00:00.000Z');
const NOW_S = NOW.getTime() / 1000;
const clock = () => NOW;

const K1 = new Uint8Array(randomBytes(32));
const K2 = new Uint8Array(randomBytes(32));
const K3 = new Uint8Array(randomBytes(32));

function ring(current: string, keys: Record<string, Uint8Array>): Keyring {
  return { current, keys: new Map(Object.entries(keys)) };
}
function ringJson(current: string, keys: Record<string, Uint8Array>): string {
  const encoded = Object.fromEntries(
    Object.entries(keys).map(([kid, k]) => [kid, Buffer.from(k).toString('base64url')]),
  );
  return JSON.stringify({ current, keys: encoded });
}

const SECRET_TOKEN = 'Bearer tok-7f3a9c-SECRET';
const SECRET_URL = 'https://mcp.example.com/u/alice-SECRETPATH';
const SECRET_HEADER = 'hdr-value-SECRET-42';
const SECRETS = [SECRET_TOKEN, 'tok-7f3a9c', SECRET_URL, 'SECRETPATH', SECRET_HEADER, 'SECRET'];

const SERVERS: McpServerGrant[] = [
  {
    name: 'primary',
    url: SECRET_URL,
    transport: 'streamable_http',
    headers: { Authorization: SECRET_TOKEN, 'X-Tenant-Key': SECRET_HEADER },
    allowed_tools: ['search', 'read'],
  },
];

const INPUT: DispatchSealInput = {
  agentName: 'mcp-agent',
  userId: 'alice',
  tenantId: 'acme',
  roomName: 'lk-mcp-room-1',
  participantIdentity: 'alice-phone',
  mcpServers: SERVERS,
  client: '{"voice":"calm"}',
  ttlSeconds: 7200,
};

const OPEN = {
  keyring: ringJson('k1', { k1: K1 }),
  agentName: 'mcp-agent',
  roomName: 'lk-mcp-room-1',
  now: NOW,
};
const EXACT_HEADER = '{"alg":"dir","enc":"A256GCM","kid":"k1","typ":"lk-mcp-dispatch+jwt"}';

const sealer = createDispatchSealer(ring('k1', { k1: K1 }), clock);

function b64(s: string | Uint8Array): string {
  return Buffer.from(s).toString('base64url');
}

/** Claims as the sealer would write them, for hand-made tokens. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'livekit-mcp-dispatch',
    aud: 'mcp-agent',
    sub: 'alice',
    tid: 'acme',
    room: 'lk-mcp-room-1',
    pid: 'alice-phone',
    iat: NOW_S,
    exp: NOW_S + 600,
    jti: 'jti-1',
    mcp_servers: SERVERS,
    ...overrides,
  };
}

/** A correctly encrypted compact JWE with any header text and plaintext (bypasses jose's checks). */
function rawSeal(
  headerText: string,
  plaintext: string | Record<string, unknown>,
  key: Uint8Array = K1,
): string {
  const header = b64(headerText);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(header, 'ascii'));
  const body = typeof plaintext === 'string' ? plaintext : JSON.stringify(plaintext);
  const ciphertext = Buffer.concat([cipher.update(body, 'utf8'), cipher.final()]);
  return `${header}..${b64(iv)}.${b64(ciphertext)}.${b64(cipher.getAuthTag())}`;
}

async function rejection(metadata: string, opts: Partial<typeof OPEN> & Record<string, unknown> = {}) {
  try {
    await openDispatchMetadata(metadata, { ...OPEN, ...opts });
  } catch (err) {
    return err as DispatchMetadataError;
  }
  throw new Error('expected openDispatchMetadata to reject');
}

function expectNoSecrets(err: unknown, secrets: string[] = SECRETS): void {
  const e = err as Error;
  const views = [
    e.message,
    String(e),
    JSON.stringify(e),
    e.stack ?? '',
    inspect(e, { depth: 10, showHidden: true }),
  ];
  for (const view of views) {
    for (const secret of secrets) expect(view).not.toContain(secret);
  }
  expect(e.cause).toBeUndefined();
}

function segments(token: string): string[] {
  return token.split('.');
}

function flipBit(segment: string, byteIndex: number, bit = 0): string {
  const bytes = Buffer.from(segment, 'base64url');
  bytes[byteIndex % bytes.length]! ^= 1 << bit;
  return bytes.toString('base64url');
}

function withSegment(token: string, index: number, value: string): string {
  const parts = segments(token);
  parts[index] = value;
  return parts.join('.');
}

describe('createDispatchSealer → openDispatchMetadata', () => {
  it('round-trips the grant through the worker opener', async () => {
    // Prepare
    const { metadata, jti, expiresAt } = await sealer.seal(INPUT);

    // Act
    const grant = await openDispatchMetadata(metadata, OPEN);

    // Assess
    expect(grant).toEqual({
      userId: 'alice',
      tenantId: 'acme',
      participantIdentity: 'alice-phone',
      roomName: 'lk-mcp-room-1',
      agentName: 'mcp-agent',
      mcpServers: SERVERS,
      client: '{"voice":"calm"}',
      expiresAt: new Date(NOW.getTime() + 7200_000),
      jti,
    });
    expect(expiresAt).toEqual(grant.expiresAt);
  });

  it('emits exactly the contract header, an empty encrypted key and the contract claims', async () => {
    // Act
    const { metadata, jti } = await sealer.seal(INPUT);

    // Assess
    const [header, encryptedKey] = segments(metadata);
    expect(Buffer.from(header!, 'base64url').toString('utf8')).toBe(EXACT_HEADER);
    expect(header).toBe(b64(EXACT_HEADER));
    expect(encryptedKey).toBe('');
    const { plaintext } = await compactDecrypt(metadata, K1);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual(
      claims({ exp: NOW_S + 7200, jti, client: '{"voice":"calm"}' }),
    );
  });

  it('omits client when none is given and uses a fresh jti each time', async () => {
    // Act
    const a = await sealer.seal({ ...INPUT, client: undefined });
    const b = await sealer.seal({ ...INPUT, client: undefined });

    // Assess
    expect(a.jti).not.toBe(b.jti);
    expect(a.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const { plaintext } = await compactDecrypt(a.metadata, K1);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).not.toHaveProperty('client');
    expect((await openDispatchMetadata(a.metadata, OPEN)).client).toBeUndefined();
  });

  it('does not seal fields beyond the contract grant', async () => {
    // Prepare
    const extra = { ...SERVERS[0]!, secret_note: 'x' } as McpServerGrant;

    // Act
    const { metadata } = await sealer.seal({ ...INPUT, mcpServers: [extra] });

    // Assess
    const { plaintext } = await compactDecrypt(metadata, K1);
    expect(new TextDecoder().decode(plaintext)).not.toContain('secret_note');
  });

  it('accepts client metadata of exactly 4 KiB in UTF-8 bytes and refuses one byte more', async () => {
    // Prepare
    const fits = 'é'.repeat(2048);
    const tooBig = `${fits}x`;

    // Act
    const ok = await sealer.seal({ ...INPUT, client: fits });
    const refused = await sealer.seal({ ...INPUT, client: tooBig }).catch((err: unknown) => err);

    // Assess
    expect((await openDispatchMetadata(ok.metadata, OPEN)).client).toBe(fits);
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({ code: 'invalid_request' });
  });

  it.each([
    ['empty agentName', { agentName: '' }],
    ['empty roomName', { roomName: '' }],
    ['zero ttl', { ttlSeconds: 0 }],
    ['fractional ttl', { ttlSeconds: 1.5 }],
    ['bad transport', { mcpServers: [{ ...SERVERS[0]!, transport: 'ws' }] }],
    ['non-string header', { mcpServers: [{ ...SERVERS[0]!, headers: { A: 1 } }] }],
  ])('refuses to seal with %s', async (_name, override) => {
    await expect(
      sealer.seal({ ...INPUT, ...(override as Partial<DispatchSealInput>) }),
    ).rejects.toBeInstanceOf(TypeError);
  });

  it('opens with the keyring as JSON text, as a JSON object, or already parsed', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);
    const asObject = JSON.parse(ringJson('k1', { k1: K1 }));

    // Act
    const grants = await Promise.all([
      openDispatchMetadata(metadata, OPEN),
      openDispatchMetadata(metadata, { ...OPEN, keyring: asObject }),
      openDispatchMetadata(metadata, { ...OPEN, keyring: ring('k1', { k1: K1 }) }),
    ]);

    // Assess
    for (const grant of grants) expect(grant.userId).toBe('alice');
  });

  it('accepts the contract header members in another order, as another JOSE library may write them', async () => {
    // Prepare: a header with the members reordered is still exactly the contract's members.
    const reordered = '{"kid":"k1","typ":"lk-mcp-dispatch+jwt","enc":"A256GCM","alg":"dir"}';

    // Act
    const grant = await openDispatchMetadata(rawSeal(reordered, claims()), OPEN);

    // Assess
    expect(grant.jti).toBe('jti-1');
  });
});

describe('openDispatchMetadata rejections', () => {
  it('unknown_kid: the kid is not in the keyring', async () => {
    // Prepare
    const { metadata } = await createDispatchSealer(ring('k9', { k9: K3 }), clock).seal(INPUT);

    // Act
    const err = await rejection(metadata);

    // Assess
    expect(err).toBeInstanceOf(DispatchMetadataError);
    expect(err.code).toBe('unknown_kid');
    expectNoSecrets(err, [...SECRETS, 'k9']);
  });

  const contract = { alg: 'dir', enc: 'A256GCM', kid: 'k1', typ: 'lk-mcp-dispatch+jwt' };
  it.each([
    ['zip', JSON.stringify({ ...contract, zip: 'DEF' })],
    ['crit', JSON.stringify({ ...contract, crit: ['exp'], exp: 1 })],
    ['crit alone', JSON.stringify({ ...contract, crit: [] })],
    ['alg A256KW', JSON.stringify({ ...contract, alg: 'A256KW' })],
    ['alg none', JSON.stringify({ ...contract, alg: 'none' })],
    ['enc A128GCM', JSON.stringify({ ...contract, enc: 'A128GCM' })],
    ['enc A256CBC-HS512', JSON.stringify({ ...contract, enc: 'A256CBC-HS512' })],
    ['typ JWT', JSON.stringify({ ...contract, typ: 'JWT' })],
    ['typ in upper case', JSON.stringify({ ...contract, typ: 'LK-MCP-DISPATCH+JWT' })],
    ['typ with application/ prefix', JSON.stringify({ ...contract, typ: 'application/lk-mcp-dispatch+jwt' })],
    ['typ missing', JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: 'k1' })],
    ['kid missing', JSON.stringify({ alg: 'dir', enc: 'A256GCM', typ: 'lk-mcp-dispatch+jwt' })],
    ['kid not a string', JSON.stringify({ ...contract, kid: 1 })],
    ['kid empty', JSON.stringify({ ...contract, kid: '' })],
    ['extra member cty', JSON.stringify({ ...contract, cty: 'JWT' })],
    ['extra member __proto__', `${JSON.stringify(contract).slice(0, -1)},"__proto__":{}}`],
    ['duplicate member', `{"alg":"dir","alg":"dir","enc":"A256GCM","kid":"k1","typ":"lk-mcp-dispatch+jwt"}`],
    ['whitespace', '{"alg": "dir","enc":"A256GCM","kid":"k1","typ":"lk-mcp-dispatch+jwt"}'],
    ['escaped value', '{"alg":"di\\u0072","enc":"A256GCM","kid":"k1","typ":"lk-mcp-dispatch+jwt"}'],
    ['not JSON', '{"alg":"dir",'],
    ['a JSON array', '["dir"]'],
    ['JSON null', 'null'],
  ])('bad_header: %s (correctly encrypted otherwise)', async (_name, headerText) => {
    // Act
    const err = await rejection(rawSeal(headerText, claims()));

    // Assess
    expect(err.code).toBe('bad_header');
    expectNoSecrets(err, [...SECRETS, headerText, 'A256KW', 'A128GCM', 'DEF']);
  });

  it('bad_header: the header segment is not base64url or not UTF-8', async () => {
    // Prepare
    const token = rawSeal(EXACT_HEADER, claims());
    const notUtf8 = b64(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));

    // Act
    const errs = await Promise.all([
      rejection(withSegment(token, 0, `${segments(token)[0]}=`)),
      rejection(withSegment(token, 0, 'eyJ+')),
      rejection(withSegment(token, 0, notUtf8)),
    ]);

    // Assess
    expect(errs.map((e) => e.code)).toEqual(['bad_header', 'bad_header', 'bad_header']);
  });

  it('the hand-made bad-header tokens are otherwise valid: the header check is what refuses them', async () => {
    // Prepare
    const token = rawSeal(JSON.stringify({ ...contract, cty: 'JWT' }), claims());

    // Act
    const { plaintext } = await compactDecrypt(token, K1);

    // Assess
    expect(JSON.parse(new TextDecoder().decode(plaintext)).sub).toBe('alice');
  });

  it('decrypt_failed: a flipped bit in the ciphertext, the tag or the IV', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);

    // Act
    const errs = await Promise.all([
      rejection(withSegment(metadata, 3, flipBit(segments(metadata)[3]!, 5))),
      rejection(withSegment(metadata, 4, flipBit(segments(metadata)[4]!, 0, 7))),
      rejection(withSegment(metadata, 2, flipBit(segments(metadata)[2]!, 11))),
    ]);

    // Assess
    for (const err of errs) {
      expect(err.code).toBe('decrypt_failed');
      expect(err.joseCode).toBe('ERR_JWE_DECRYPTION_FAILED');
      expectNoSecrets(err);
    }
  });

  it('decrypt_failed: the same kid holds other key material', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);

    // Act
    const err = await rejection(metadata, { keyring: ringJson('k1', { k1: K2 }) });

    // Assess
    expect(err.code).toBe('decrypt_failed');
  });

  it('decrypt_failed: a valid header re-encoded differently (the header is authenticated data)', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);
    const reordered = b64('{"kid":"k1","alg":"dir","enc":"A256GCM","typ":"lk-mcp-dispatch+jwt"}');

    // Act
    const err = await rejection(withSegment(metadata, 0, reordered));

    // Assess
    expect(err.code).toBe('decrypt_failed');
  });

  it.each([
    ['empty string', ''],
    ['plain text', 'not a jwe at all'],
    ['four segments', 'a.b.c.d'],
    ['six segments', 'a.b.c.d.e.f'],
    ['a JWS', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'],
  ])('malformed: garbage (%s)', async (_name, garbage) => {
    const err = await rejection(garbage);
    expect(err.code).toBe('malformed');
    expectNoSecrets(err);
  });

  it('malformed: a non-string metadata value', async () => {
    const err = await rejection(42 as unknown as string);
    expect(err.code).toBe('malformed');
  });

  it('malformed: a non-empty encrypted key, a short IV, a non-canonical tag', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);
    const tag = segments(metadata)[4]!;
    const lastBits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = tag.slice(0, -1) + lastBits[lastBits.indexOf(tag.at(-1)!) ^ 1];

    // Act
    const errs = await Promise.all([
      rejection(withSegment(metadata, 1, 'AAAA')),
      rejection(withSegment(metadata, 2, b64(randomBytes(8)))),
      rejection(withSegment(metadata, 4, sameBytes)),
    ]);

    // Assess
    expect(Buffer.from(sameBytes, 'base64url')).toEqual(Buffer.from(tag, 'base64url'));
    expect(errs.map((e) => e.code)).toEqual(['malformed', 'malformed', 'malformed']);
  });

  it.each([
    ['claims not JSON', 'not json'],
    ['claims a JSON array', '[1,2]'],
    ['claims not UTF-8', '\u00ff'],
  ])('malformed: %s', async (_name, body) => {
    const token =
      body === '\u00ff'
        ? (() => {
            const header = b64(EXACT_HEADER);
            const iv = randomBytes(12);
            const cipher = createCipheriv('aes-256-gcm', K1, iv).setAAD(Buffer.from(header));
            const ct = Buffer.concat([cipher.update(Buffer.from([0xc3, 0x28])), cipher.final()]);
            return `${header}..${b64(iv)}.${b64(ct)}.${b64(cipher.getAuthTag())}`;
          })()
        : rawSeal(EXACT_HEADER, body);
    expect((await rejection(token)).code).toBe('malformed');
  });

  it.each(['iss', 'aud', 'sub', 'tid', 'room', 'pid', 'iat', 'exp', 'jti', 'mcp_servers'])(
    'malformed: claim %s missing',
    async (name) => {
      // Prepare
      const body = claims();
      delete body[name];

      // Act
      const err = await rejection(rawSeal(EXACT_HEADER, body));

      // Assess
      expect(err.code).toBe('malformed');
      expect(err.message).toContain(`"${name}"`);
      expectNoSecrets(err);
    },
  );

  const server = SERVERS[0]!;
  it.each([
    ['iss wrong', { iss: 'someone-else' }],
    ['aud an array', { aud: ['mcp-agent'] }],
    ['sub a number', { sub: 7 }],
    ['exp a string', { exp: String(NOW_S + 600) }],
    ['exp not finite', { exp: null }],
    ['client a number', { client: 5 }],
    ['mcp_servers an object', { mcp_servers: { a: server } }],
    ['server not an object', { mcp_servers: ['x'] }],
    ['server without url', { mcp_servers: [{ ...server, url: undefined }] }],
    ['server with transport ws', { mcp_servers: [{ ...server, transport: 'ws' }] }],
    ['server header value a number', { mcp_servers: [{ ...server, headers: { Authorization: 1 } }] }],
    ['server headers an array', { mcp_servers: [{ ...server, headers: [SECRET_TOKEN] }] }],
    ['allowed_tools not strings', { mcp_servers: [{ ...server, allowed_tools: [1] }] }],
  ])('malformed: %s', async (_name, override) => {
    const err = await rejection(rawSeal(EXACT_HEADER, claims(override)));
    expect(err.code).toBe('malformed');
    expectNoSecrets(err, [...SECRETS, 'someone-else']);
  });

  it('wrong_audience: aud is another agent', async () => {
    // Prepare
    const { metadata } = await sealer.seal({ ...INPUT, agentName: 'other-agent' });

    // Act
    const err = await rejection(metadata);

    // Assess
    expect(err.code).toBe('wrong_audience');
    expectNoSecrets(err, [...SECRETS, 'other-agent', 'alice', 'acme']);
  });

  it('wrong_room: room is not the job room', async () => {
    // Prepare
    const { metadata } = await sealer.seal({ ...INPUT, roomName: 'lk-mcp-room-2' });

    // Act
    const err = await rejection(metadata);

    // Assess
    expect(err.code).toBe('wrong_room');
    expectNoSecrets(err, [...SECRETS, 'lk-mcp-room-2', 'alice']);
  });

  it('expired: exp 31 s in the past', async () => {
    // Prepare
    const { metadata } = await sealer.seal({ ...INPUT, ttlSeconds: 60 });

    // Act
    const err = await rejection(metadata, { now: new Date(NOW.getTime() + (60 + 31) * 1000) });

    // Assess
    expect(err.code).toBe('expired');
    expectNoSecrets(err);
  });

  it.each([29, 30])('accepted: exp %i s in the past (30 s leeway)', async (past) => {
    // Prepare
    const { metadata } = await sealer.seal({ ...INPUT, ttlSeconds: 60 });

    // Act
    const grant = await openDispatchMetadata(metadata, {
      ...OPEN,
      now: new Date(NOW.getTime() + (60 + past) * 1000),
    });

    // Assess
    expect(grant.userId).toBe('alice');
  });

  it('every rejection is a DispatchMetadataError with one of the shared codes and a log-safe JSON form', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);

    // Act
    const err = await rejection(metadata, { roomName: 'elsewhere' });

    // Assess
    expect(DISPATCH_ERROR_CODES).toContain(err.code);
    expect(err.name).toBe('DispatchMetadataError');
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      name: 'DispatchMetadataError',
      code: 'wrong_room',
      message: err.message,
    });
    expect(String(err)).toBe(`DispatchMetadataError: ${err.message}`);
  });
});

describe('dispatch keyring rotation', () => {
  it('opens metadata sealed with k1 by a ring whose current key is k2', async () => {
    // Prepare
    const { metadata } = await createDispatchSealer(ring('k1', { k1: K1 }), clock).seal(INPUT);

    // Act
    const grant = await openDispatchMetadata(metadata, {
      ...OPEN,
      keyring: ringJson('k2', { k1: K1, k2: K2 }),
    });

    // Assess
    expect(grant.userId).toBe('alice');
  });

  it('seals with the current key after rotation', async () => {
    // Act
    const { metadata } = await createDispatchSealer(ring('k2', { k1: K1, k2: K2 }), clock).seal(INPUT);

    // Assess
    expect(JSON.parse(Buffer.from(segments(metadata)[0]!, 'base64url').toString()).kid).toBe('k2');
    const grant = await openDispatchMetadata(metadata, { ...OPEN, keyring: ringJson('k2', { k2: K2 }) });
    expect(grant.userId).toBe('alice');
  });

  it('fails closed with unknown_kid once k1 is removed', async () => {
    // Prepare
    const { metadata } = await createDispatchSealer(ring('k1', { k1: K1 }), clock).seal(INPUT);

    // Act
    const err = await rejection(metadata, { keyring: ringJson('k2', { k2: K2 }) });

    // Assess
    expect(err.code).toBe('unknown_kid');
  });
});

describe('parseDispatchKeyring (worker side)', () => {
  it('parses the contract shape', () => {
    const parsed = parseDispatchKeyring(ringJson('k2', { k1: K1, k2: K2 }));
    expect(parsed.current).toBe('k2');
    expect(parsed.keys.get('k1')).toEqual(K1);
  });

  it('lists every problem and never the key material', () => {
    // Prepare
    const short = b64(randomBytes(16));
    const input = JSON.stringify({
      current: 'k9',
      keys: { k1: 'not+base64', k2: short, 'bad id!': b64(K1) },
    });

    // Act
    let err: KeyringError | undefined;
    try {
      parseDispatchKeyring(input);
    } catch (e) {
      err = e as KeyringError;
    }

    // Assess
    expect(err).toBeInstanceOf(KeyringError);
    expect(err!.problems).toEqual([
      'key "k1" is not base64url',
      'key "k2" must be 32 bytes, got 16',
      'key id "bad id!" is not 1-64 characters [A-Za-z0-9._-]',
      '"current" key "k9" is not in "keys"',
    ]);
    expect(err!.message).not.toContain(short);
    expect(err!.message).not.toContain(b64(K1));
  });

  it.each([
    ['not JSON', '{', 'not valid JSON'],
    ['an array', '[]', 'must be an object {"current","keys"}'],
    ['no keys', '{"current":"k1","keys":{}}', '"keys" must be a non-empty object of key id to base64url key'],
    [
      'current inherited from Object.prototype',
      `{"current":"constructor","keys":{"k1":"${b64(K1)}"}}`,
      '"current" key "constructor" is not in "keys"',
    ],
  ])('refuses %s', (_name, input, problem) => {
    expect(() => parseDispatchKeyring(input)).toThrow(problem);
  });

  it('openDispatchMetadata refuses an invalid keyring with KeyringError, not a metadata code', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);

    // Act
    const opening = openDispatchMetadata(metadata, {
      ...OPEN,
      keyring: '{"current":"k1","keys":{"k1":"AAAA"}}',
    });

    // Assess
    await expect(opening).rejects.toBeInstanceOf(KeyringError);
  });

  it('openDispatchMetadata refuses a parsed keyring holding a key that is not 32 bytes', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);
    const bad = { current: 'k1', keys: new Map([['k1', new Uint8Array(16)]]) };

    // Act
    const opening = openDispatchMetadata(metadata, { ...OPEN, keyring: bad });

    // Assess
    await expect(opening).rejects.toBeInstanceOf(KeyringError);
  });
});

describe('sealing properties', () => {
  const text = (minLength = 0) => fc.string({ unit: 'binary', minLength, maxLength: 40 });
  const serverArb: fc.Arbitrary<McpServerGrant> = fc.record(
    {
      name: text(1),
      url: text(1),
      transport: fc.constantFrom('streamable_http' as const, 'sse' as const),
      headers: fc.dictionary(text(1), text(), { maxKeys: 4 }),
      allowed_tools: fc.array(text(), { maxLength: 3 }),
    },
    { requiredKeys: ['name', 'url', 'transport', 'headers'] },
  );

  it('round-trips arbitrary unicode URLs, tokens, header maps, ids and client metadata', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(serverArb, { maxLength: 3 }),
        text(1),
        text(1),
        fc.option(text(), { nil: undefined }),
        async (mcpServers, userId, agentName, client) => {
          // Prepare
          const input = { ...INPUT, mcpServers, userId, agentName, client };

          // Act
          const { metadata } = await sealer.seal(input);
          const grant = await openDispatchMetadata(metadata, { ...OPEN, agentName });

          // Assess
          expect(grant.mcpServers).toEqual(mcpServers);
          expect(grant.userId).toBe(userId);
          expect(grant.client).toBe(client);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rejects any single-character change in any of the five segments', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é'.split('');
    const allowed: DispatchErrorCode[] = ['bad_header', 'unknown_kid', 'decrypt_failed', 'malformed'];

    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.nat(),
        fc.constantFrom(...alphabet),
        async (index, position, char) => {
          // Act: replace one character, or insert one into the empty encrypted-key segment.
          const segment = segments(metadata)[index]!;
          const at = segment.length === 0 ? 0 : position % segment.length;
          fc.pre(segment[at] !== char);
          const changed = segment.length === 0 ? char : segment.slice(0, at) + char + segment.slice(at + 1);
          const err = await rejection(withSegment(metadata, index, changed));

          // Assess
          expect(err).toBeInstanceOf(DispatchMetadataError);
          expect(allowed).toContain(err.code);
          expectNoSecrets(err);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('rejects any single-bit change in the decoded bytes of any segment', async () => {
    // Prepare
    const { metadata } = await sealer.seal(INPUT);

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 2, 3, 4),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (index, byte, bit) => {
          // Act
          const err = await rejection(
            withSegment(metadata, index, flipBit(segments(metadata)[index]!, byte, bit)),
          );

          // Assess
          expect(err.code).toEqual(
            index === 0
              ? expect.stringMatching(/^(bad_header|unknown_kid|decrypt_failed)$/)
              : 'decrypt_failed',
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('createSecretBox', () => {
  const box = createSecretBox(ring('s1', { s1: K2 }));
  const USER: SecretBinding = { tenantId: 'acme', userId: 'alice', field: 'token' };

  async function boxRejection(sealed: string, binding: SecretBinding, b = box): Promise<SecretBoxError> {
    try {
      await b.open(sealed, binding);
    } catch (err) {
      return err as SecretBoxError;
    }
    throw new Error('expected open to reject');
  }

  it('round-trips a value bound to tenant, user and field', async () => {
    // Act
    const sealed = await box.seal(SECRET_TOKEN, USER);

    // Assess
    expect(sealed).not.toContain('tok-7f3a9c');
    expect(await box.open(sealed, { ...USER })).toBe(SECRET_TOKEN);
  });

  it('puts kid and the binding in the protected header, as a JSON array', async () => {
    // Act
    const sealed = await box.seal(SECRET_TOKEN, { tenantId: 'acme', userId: '', field: 'headers' });

    // Assess
    expect(Buffer.from(segments(sealed)[0]!, 'base64url').toString()).toBe(
      '{"alg":"dir","enc":"A256GCM","kid":"s1","typ":"lk-mcp-secret","bnd":["acme","","headers"]}',
    );
  });

  it('round-trips arbitrary unicode values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.string({ minLength: 1 }),
        async (v, t) => {
          const binding: SecretBinding = { tenantId: t, userId: 'u', field: 'headers' };
          expect(await box.open(await box.seal(v, binding), binding)).toBe(v);
        },
      ),
      { numRuns: 100 },
    );
  });

  it.each([
    ['another tenant', { tenantId: 'globex' }],
    ['another user', { userId: 'bob' }],
    ['the tenant-level slot', { userId: '' }],
    ['another field', { field: 'headers' as const }],
    ['a separator-shifted binding', { tenantId: 'acme/alice', userId: '' }],
  ])('does not open when moved to %s', async (_name, change) => {
    // Prepare
    const sealed = await box.seal(SECRET_TOKEN, USER);

    // Act
    const err = await boxRejection(sealed, { ...USER, ...change });

    // Assess
    expect(err).toBeInstanceOf(SecretBoxError);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.code).toBe('secret_unreadable');
    expect(err.reason).toBe('wrong_binding');
    expectNoSecrets(err);
  });

  it('does not open when the header is rewritten to claim the other binding (the header is authenticated)', async () => {
    // Prepare
    const sealed = await box.seal(SECRET_TOKEN, USER);
    const forged = b64(
      '{"alg":"dir","enc":"A256GCM","kid":"s1","typ":"lk-mcp-secret","bnd":["globex","bob","token"]}',
    );

    // Act
    const err = await boxRejection(withSegment(sealed, 0, forged), {
      tenantId: 'globex',
      userId: 'bob',
      field: 'token',
    });

    // Assess
    expect(err.reason).toBe('decrypt_failed');
    expectNoSecrets(err);
  });

  it.each([
    ['garbage', () => 'nope', 'malformed'],
    [
      'a flipped ciphertext bit',
      (s: string) => withSegment(s, 3, flipBit(segments(s)[3]!, 0)),
      'decrypt_failed',
    ],
    [
      'an extra header member',
      (s: string) =>
        withSegment(
          s,
          0,
          b64(
            '{"alg":"dir","enc":"A256GCM","kid":"s1","typ":"lk-mcp-secret","bnd":["acme","alice","token"],"zip":"DEF"}',
          ),
        ),
      'bad_header',
    ],
  ])('refuses %s', async (_name, tamper, reason) => {
    // Prepare
    const sealed = await box.seal(SECRET_TOKEN, USER);

    // Act
    const err = await boxRejection(tamper(sealed), USER);

    // Assess
    expect(err.reason).toBe(reason);
    expectNoSecrets(err);
  });

  it('is not interchangeable with dispatch metadata under the same key', async () => {
    // Prepare
    const sameKeyBox = createSecretBox(ring('k1', { k1: K1 }));
    const sealedSecret = await sameKeyBox.seal(SECRET_TOKEN, USER);
    const { metadata } = await sealer.seal(INPUT);

    // Act
    const asMetadata = await rejection(sealedSecret);
    const asSecret = await boxRejection(metadata, USER, sameKeyBox);

    // Assess
    expect(asMetadata.code).toBe('bad_header');
    expect(asSecret.reason).toBe('bad_header');
  });

  it('rotates: k1 values open under a ring with current k2; new values use k2; k1 removed fails closed', async () => {
    // Prepare
    const old = createSecretBox(ring('s1', { s1: K2 }));
    const rotated = createSecretBox(ring('s2', { s1: K2, s2: K3 }));
    const retired = createSecretBox(ring('s2', { s2: K3 }));
    const sealedOld = await old.seal(SECRET_TOKEN, USER);

    // Act
    const reopened = await rotated.open(sealedOld, USER);
    const sealedNew = await rotated.seal(SECRET_TOKEN, USER);
    const err = await boxRejection(sealedOld, USER, retired);

    // Assess
    expect(reopened).toBe(SECRET_TOKEN);
    expect(JSON.parse(Buffer.from(segments(sealedNew)[0]!, 'base64url').toString()).kid).toBe('s2');
    expect(await retired.open(sealedNew, USER)).toBe(SECRET_TOKEN);
    expect(err.reason).toBe('unknown_kid');
  });

  it('refuses a binding without a tenant or with an unknown field', async () => {
    await expect(box.seal('x', { ...USER, tenantId: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(box.seal('x', { ...USER, field: 'url' as 'token' })).rejects.toBeInstanceOf(TypeError);
  });
});

describe('SecretBox.fingerprint', () => {
  const box = createSecretBox(ring('s1', { s1: K2 }));

  it('is stable for a value, across boxes over the same keyring', () => {
    const again = createSecretBox(ring('s1', { s1: K2 }));
    expect(box.fingerprint(SECRET_TOKEN)).toBe(again.fingerprint(SECRET_TOKEN));
    expect(box.fingerprint(SECRET_TOKEN)).toMatch(/^fp_[0-9a-f]{16}$/);
  });

  it('differs per value', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        expect(box.fingerprint(a)).not.toBe(box.fingerprint(b));
      }),
    );
  });

  it('is not an HMAC keyed by the raw AES key, and changes with the current storage key', () => {
    // Prepare
    const rawKeyed = `fp_${createHmac('sha256', K2).update(SECRET_TOKEN).digest('hex').slice(0, 16)}`;

    // Act
    const fp = box.fingerprint(SECRET_TOKEN);
    const otherKey = createSecretBox(ring('s2', { s1: K2, s2: K3 })).fingerprint(SECRET_TOKEN);

    // Assess
    expect(fp).not.toBe(rawKeyed);
    expect(otherKey).not.toBe(fp);
  });

  it('does not contain the value', () => {
    expect(box.fingerprint('abcdef0123456789')).not.toContain('abcdef0123456789');
  });
});
