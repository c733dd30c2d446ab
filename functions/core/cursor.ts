import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { ValidationError } from './errors.js';
import type { Keyring } from './keyring.js';

/** HKDF `info` of the cursor key; distinct from every other key derived from the storage keyring. */
export const CURSOR_INFO = 'lk-mcp-dispatch cursor v1';

/** Longest cursor accepted from a client. */
export const MAX_CURSOR_LENGTH = 2048;

/**
 * Turns a store's raw position (DynamoDB `LastEvaluatedKey`) into an opaque list cursor and back.
 * A cursor is bound to its `scope` (e.g. `users:acme`): one issued for another tenant or list
 * does not open.
 */
export interface CursorCodec {
  encode(scope: string, position: Record<string, unknown>): string;
  /** @throws ValidationError (422, path `query.cursor`) for a cursor that is not valid for `scope`. */
  decode(scope: string, cursor: string): Record<string, unknown>;
}

function invalidCursor(): ValidationError {
  return new ValidationError('The cursor is not valid for this list.', {
    details: { errors: [{ path: 'query.cursor', message: 'is not a cursor of this list' }] },
  });
}

/**
 * Creates the cursor codec: AES-256-GCM under a key derived with HKDF-SHA256 from the current
 * storage key (never the storage key itself), the scope as additional authenticated data. The
 * position is encrypted, so a cursor neither shows nor lets a client choose key values.
 * Cursors issued before a storage key rotation stop opening; a client starts the list again.
 */
export function createCursorCodec(storageKeys: Keyring): CursorCodec {
  const current = storageKeys.keys.get(storageKeys.current);
  if (current === undefined) throw new TypeError('cursor: the current storage key is missing');
  const key = Buffer.from(hkdfSync('sha256', current, new Uint8Array(0), CURSOR_INFO, 32));

  return {
    encode(scope, position) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(scope, 'utf8'));
      const body = Buffer.concat([cipher.update(JSON.stringify(position), 'utf8'), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    },
    decode(scope, cursor) {
      if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
      const raw = Buffer.from(cursor, 'base64url');
      if (raw.length < 12 + 16 + 2) throw invalidCursor();
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAAD(Buffer.from(scope, 'utf8'));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
        const value: unknown = JSON.parse(text.toString('utf8'));
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidCursor();
        return value as Record<string, unknown>;
      } catch {
        throw invalidCursor();
      }
    },
  };
}
