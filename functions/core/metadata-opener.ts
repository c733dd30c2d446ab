import {
  canonicalDecode,
  checkDispatchHeader,
  DISPATCH_ALG,
  DISPATCH_ENC,
  type DispatchClaims,
  type DispatchErrorCode,
  InvalidClaimsError,
  parseDispatchClaims,
} from '@livekit-mcp-dispatch/contract';
import { type CryptoKey, compactDecrypt } from 'jose';
import type { Keyring } from './keyring.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sealed metadata a renewal refused, with the opener's code (docs/api.md §3). Quotes nothing. */
export class MetadataRefusedError extends Error {
  readonly code: DispatchErrorCode;
  constructor(code: DispatchErrorCode) {
    super(`Sealed dispatch metadata refused: ${code}.`);
    this.name = 'MetadataRefusedError';
    this.code = code;
  }
}

/**
 * Opens sealed dispatch metadata as the TypeScript worker opener does (worker/src/open.ts), from
 * the same contract pieces: five segments; the exact protected header (`bad_header`); a `kid` of
 * the keyring (`unknown_kid`); an empty encrypted key, 12-byte IV and 16-byte tag in canonical
 * base64url (`malformed`); AES-GCM (`decrypt_failed`); the contract's claims (`malformed`).
 * The job-bound checks (`aud`, `room`, `exp`) are the caller's: a renewal makes them against the
 * session record, not against what the metadata says (docs/api.md §9).
 *
 * @throws MetadataRefusedError with the first check that failed.
 */
export function createMetadataOpener(keyring: Keyring): (metadata: string) => Promise<DispatchClaims> {
  const keys = new Map<string, Promise<CryptoKey>>();
  const keyFor = (kid: string): Promise<CryptoKey> | undefined => {
    if (!Object.hasOwn(Object.fromEntries(keyring.keys), kid)) return undefined;
    let key = keys.get(kid);
    if (key === undefined) {
      key = crypto.subtle.importKey(
        'raw',
        new Uint8Array(keyring.keys.get(kid)!),
        { name: 'AES-GCM', length: 256 },
        false,
        ['decrypt'],
      );
      keys.set(kid, key);
    }
    return key;
  };
  const refuse = (code: DispatchErrorCode): never => {
    throw new MetadataRefusedError(code);
  };

  return async (metadata) => {
    if (typeof metadata !== 'string') refuse('malformed');
    const segments = metadata.split('.');
    if (segments.length !== 5) refuse('malformed');
    const [header, encryptedKey, iv, ciphertext, tag] = segments as [string, string, string, string, string];
    const kid = checkDispatchHeader(header) ?? refuse('bad_header');
    const key = keyFor(kid) ?? refuse('unknown_kid');
    if (
      encryptedKey !== '' ||
      canonicalDecode(iv)?.length !== IV_BYTES ||
      canonicalDecode(tag)?.length !== TAG_BYTES ||
      canonicalDecode(ciphertext) === undefined
    )
      refuse('malformed');
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await compactDecrypt(metadata, await key, {
        keyManagementAlgorithms: [DISPATCH_ALG],
        contentEncryptionAlgorithms: [DISPATCH_ENC],
        maxDecompressedLength: 0,
      }));
    } catch {
      return refuse('decrypt_failed');
    }
    try {
      return parseDispatchClaims(utf8.decode(plaintext));
    } catch (err) {
      if (err instanceof InvalidClaimsError || err instanceof TypeError) return refuse('malformed');
      throw err;
    }
  };
}
