import { base64url, CompactEncrypt, type CryptoKey } from 'jose';
import type { DispatchClaims } from './format.js';
import { dispatchHeader } from './header.js';
import { KEY_BYTES, type Keyring } from './keyring.js';

const encoder = new TextEncoder();

/**
 * Creates the sealing half of the wire format (docs/api.md §3): a function that seals a claims set
 * as a compact JWE, `dir` + `A256GCM`, with the keyring's current key and exactly the protected
 * header {@link dispatchHeader} gives. The key is imported once. The server's sealer validates and
 * builds the claims; the test vectors the Python opener checks are sealed with this same function.
 *
 * @throws TypeError when the keyring's current key is not 32 bytes.
 */
export function createClaimsSealer(keyring: Keyring): (claims: DispatchClaims) => Promise<string> {
  const raw = keyring.keys.get(keyring.current);
  if (raw === undefined || raw.length !== KEY_BYTES) {
    throw new TypeError('keyring: the current key must be 32 bytes');
  }
  const header = dispatchHeader(keyring.current);
  const expectedHeaderSegment = base64url.encode(JSON.stringify(header));
  const key: Promise<CryptoKey> = crypto.subtle.importKey(
    'raw',
    new Uint8Array(raw),
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt'],
  );
  return async (claims) => {
    const metadata = await new CompactEncrypt(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ ...header })
      .encrypt(await key);
    // The header is part of the contract: refuse to emit anything jose might have added.
    if (!metadata.startsWith(`${expectedHeaderSegment}.`)) {
      throw new Error('seal: emitted protected header differs from the contract');
    }
    return metadata;
  };
}
