import { base64url } from 'jose';
import {
  DISPATCH_ALG,
  DISPATCH_ENC,
  DISPATCH_HEADER_KEYS,
  DISPATCH_TYP,
  type DispatchProtectedHeader,
} from './format.js';

const B64URL = /^[A-Za-z0-9_-]*$/;
// With the u flag a surrogate pair is one code point, so this matches only unpaired surrogates.
const LONE_SURROGATE = /\p{Cs}/u;
// ignoreBOM keeps a leading U+FEFF in the text (the default strips it), so JSON.parse refuses
// it as Python's json does: both openers must give the same code for the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The protected header the sealer emits for key `kid`, members in the contract's order. */
export function dispatchHeader(kid: string): DispatchProtectedHeader {
  return { alg: DISPATCH_ALG, enc: DISPATCH_ENC, kid, typ: DISPATCH_TYP };
}

/**
 * Decoded bytes of a canonical base64url segment (no padding, no stray bits), else `undefined`.
 * Re-encoding must give the same text, so no two encodings of one value are accepted.
 */
export function canonicalDecode(segment: string): Uint8Array | undefined {
  if (!B64URL.test(segment) || segment.length % 4 === 1) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(segment);
  } catch {
    return undefined;
  }
  return base64url.encode(bytes) === segment ? bytes : undefined;
}

/**
 * The one exact-header parser of the wire format: the JSON object a JOSE protected-header segment
 * holds when the segment is canonical base64url of minimal JSON (no duplicate member, which
 * JSON.parse would silently merge) with exactly the members `names` (any order, nothing else,
 * no `zip` or `crit`), else `undefined`. Used for dispatch metadata, stored secrets and worker
 * assertions; each caller then checks its own values.
 */
export function parseExactHeader(
  segment: string,
  names: readonly string[],
): Record<string, unknown> | undefined {
  let header: unknown;
  let text: string;
  try {
    const bytes = canonicalDecode(segment);
    if (bytes === undefined) return undefined;
    text = utf8.decode(bytes);
    header = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  const h = header as Record<string, unknown>;
  if (Object.keys(h).length !== names.length || !names.every((k) => Object.hasOwn(h, k))) return undefined;
  if (JSON.stringify(h) !== text) return undefined;
  return h;
}

/**
 * The exact-header check of sealed dispatch metadata (docs/api.md §3): returns the header's
 * `kid` when the segment is canonical base64url of exactly
 * `{"alg":"dir","enc":"A256GCM","kid":…,"typ":"lk-mcp-dispatch+jwt"}` in minimal JSON (no other
 * member such as `zip` or `crit`, no duplicate member) and `kid` is a non-empty string of Unicode
 * text (no lone surrogate), else `undefined`.
 */
export function checkDispatchHeader(segment: string): string | undefined {
  const h = parseExactHeader(segment, DISPATCH_HEADER_KEYS);
  if (h === undefined) return undefined;
  const { alg, enc, kid, typ } = h;
  if (alg !== DISPATCH_ALG || enc !== DISPATCH_ENC || typ !== DISPATCH_TYP) return undefined;
  // A lone surrogate (`"\ud800"`) is no Unicode text (RFC 8259 §8.2, I-JSON RFC 7493 §2.1): no
  // key id can be one, and Python cannot even hold the header's text, so it is a bad header.
  if (typeof kid !== 'string' || kid.length === 0 || LONE_SURROGATE.test(kid)) return undefined;
  return kid;
}
