import { describe, expect, it } from 'vitest';
import { createCursorCodec } from '../../functions/core/cursor.js';
import { parseKeyring } from '../../functions/core/keyring.js';

const keyring = (byte: number) =>
  parseKeyring('STORAGE_KEYS', { current: 'k', keys: { k: Buffer.alloc(32, byte).toString('base64url') } })
    .keyring!;

describe('createCursorCodec', () => {
  const codec = createCursorCodec(keyring(1));
  const position = { pk: 'USER#alice', sk: 'USER', gsi1pk: 'TENANT#acme#USERS', gsi1sk: 'alice' };

  it('round-trips a position for the same scope and hides it', () => {
    // Act
    const cursor = codec.encode('users:acme', position);

    // Assess
    expect(codec.decode('users:acme', cursor)).toEqual(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(cursor, 'base64url').toString('latin1')).not.toContain('alice');
  });

  it('refuses a cursor of another scope, another key, a tampered one and junk', () => {
    // Prepare
    const cursor = codec.encode('users:acme', position);
    const raw = Buffer.from(cursor, 'base64url');
    raw[14] = (raw[14] ?? 0) ^ 1;
    const tampered = raw.toString('base64url');

    // Act + Assess
    for (const [scope, value] of [
      ['users:other', cursor],
      ['audit:acme', cursor],
      ['users:acme', tampered],
      ['users:acme', 'abc'],
      ['users:acme', 'not base64!'],
      ['users:acme', 'x'.repeat(5000)],
    ] as const) {
      expect(() => codec.decode(scope, value)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
    expect(() => createCursorCodec(keyring(2)).decode('users:acme', cursor)).toThrow();
  });
});
