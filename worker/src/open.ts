import {
  canonicalDecode,
  checkDispatchHeader,
  DISPATCH_ALG,
  DISPATCH_ENC,
  type DispatchErrorCode,
  EXP_LEEWAY_SECONDS,
  InvalidClaimsError,
  KEY_BYTES,
  type Keyring,
  type KeyringJson,
  type McpServerGrant,
  parseDispatchClaims,
  parseKeyring,
} from '@livekit-mcp-dispatch/contract';
import { type CryptoKey, compactDecrypt, errors } from 'jose';

export type { KeyringJson } from '@livekit-mcp-dispatch/contract';

/** A parsed keyring: key id to 32 raw key bytes (the contract's `Keyring`). */
export type ParsedKeyring = Keyring;

/** The keyring given to the worker is invalid. Lists every problem; never contains key material. */
export class KeyringError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid dispatch keyring:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'KeyringError';
    this.problems = problems;
  }
}

/**
 * Sealed dispatch metadata was refused. `code` is the contract's shared error code. The message is
 * fixed text per reason: it never contains claims, tokens, header values or the metadata itself,
 * and no underlying error (jose's errors can hold the decrypted payload) is kept as `cause`.
 */
export class DispatchMetadataError extends Error {
  readonly code: DispatchErrorCode;
  /** The jose error code (e.g. `ERR_JWE_DECRYPTION_FAILED`) when jose refused, for diagnostics. */
  readonly joseCode: string | undefined;

  constructor(code: DispatchErrorCode, message: string, joseCode?: string) {
    super(message);
    this.name = 'DispatchMetadataError';
    this.code = code;
    this.joseCode = joseCode;
  }

  /** A log-safe JSON form. */
  toJSON(): { name: string; code: DispatchErrorCode; message: string; joseCode?: string } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.joseCode === undefined ? {} : { joseCode: this.joseCode }),
    };
  }
}

/** What a job may do, opened from its dispatch metadata. */
export interface DispatchGrant {
  userId: string;
  tenantId: string;
  /** The only participant this job serves. */
  participantIdentity: string;
  roomName: string;
  agentName: string;
  /** The user's MCP servers, with their secret headers. */
  mcpServers: McpServerGrant[];
  /** The app's own agent metadata string, if it sent one. */
  client: string | undefined;
  expiresAt: Date;
  jti: string;
  /** The session id the renewal endpoint knows the job by (docs/api.md §9); absent from an older server. */
  sid?: string;
  /** When the worker should renew (`refresh_at`). */
  refreshAt?: Date;
  /** The absolute URL of `POST /v1/worker/credentials` (`refresh_url`). */
  refreshUrl?: string;
}

/** Options for {@link openDispatchMetadata}. */
export interface OpenDispatchOptions {
  /** The dispatch keyring (JSON text, parsed JSON, or already parsed). */
  keyring: string | KeyringJson | ParsedKeyring;
  /** This worker's agent name; must equal `aud`. */
  agentName: string;
  /** The job's room name; must equal `room`. */
  roomName: string;
  /** The current time (tests). */
  now?: Date;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
// ignoreBOM keeps a leading U+FEFF in the text (the default strips it), so JSON.parse refuses
// it as Python's json does: both openers must give the same code for the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses and validates keyring JSON (text or object) with the contract's keyring parser. Throws a
 * {@link KeyringError} listing every problem: not JSON, bad key id, key not base64url, key not 32
 * bytes, `current` not in `keys`.
 */
export function parseDispatchKeyring(input: string | KeyringJson): ParsedKeyring {
  const { keyring, problems } = parseKeyring('', input);
  if (keyring === undefined) throw new KeyringError(problems);
  return keyring;
}

/**
 * Opens sealed dispatch metadata (docs/api.md §3) and returns the job's grant.
 *
 * Checks, in order: five compact segments (`malformed`); the protected header is exactly
 * `{"alg":"dir","enc":"A256GCM","kid":…,"typ":"lk-mcp-dispatch+jwt"}` in minimal JSON, with no
 * other member such as `zip` or `crit` (`bad_header`); `kid` is in the keyring (`unknown_kid`);
 * canonical base64url, empty encrypted key, 12-byte IV, 16-byte tag (`malformed`); AES-GCM
 * decryption (`decrypt_failed`); claims are UTF-8 JSON nested at most 32 deep with every field
 * of the right type, `iat`/`exp`/`nbf` NumericDates up to year 9999 and
 * `iss` = `livekit-mcp-dispatch` (`malformed`, also for an empty plaintext); `aud` = `agentName`
 * (`wrong_audience`); `room` = `roomName` (`wrong_room`); `exp` at most 30 s in the past and,
 * when present, `nbf` at most 30 s in the future (`expired`).
 *
 * @throws DispatchMetadataError with the failing check's code.
 * @throws KeyringError when the keyring itself is invalid (a configuration error, not the metadata's).
 */
export async function openDispatchMetadata(
  metadata: string,
  opts: OpenDispatchOptions,
): Promise<DispatchGrant> {
  const keyring = resolveKeyring(opts.keyring);
  if (typeof metadata !== 'string') fail('malformed', 'Sealed dispatch metadata must be a string.');
  const segments = metadata.split('.');
  if (segments.length !== 5)
    fail('malformed', 'Sealed dispatch metadata is not a compact JWE (five segments).');
  const [headerSegment, encryptedKey, iv, ciphertext, tag] = segments as [
    string,
    string,
    string,
    string,
    string,
  ];

  const kid = checkHeader(headerSegment);
  const key = keyring.keys.get(kid);
  if (key === undefined)
    fail('unknown_kid', 'Sealed dispatch metadata names a key id that is not in the keyring.');

  if (encryptedKey !== '')
    fail('malformed', 'Sealed dispatch metadata must have an empty encrypted key (alg "dir").');
  if (
    canonicalLength(iv) !== IV_BYTES ||
    canonicalLength(tag) !== TAG_BYTES ||
    canonicalLength(ciphertext) < 0
  ) {
    fail('malformed', 'Sealed dispatch metadata has an invalid IV, ciphertext or tag encoding.');
  }

  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(metadata, await cryptoKeyFor(key), {
      keyManagementAlgorithms: [DISPATCH_ALG],
      contentEncryptionAlgorithms: [DISPATCH_ENC],
      maxDecompressedLength: 0,
    }));
  } catch (err) {
    // Keep only jose's code: its errors may reference the token or, for JWT errors, the payload.
    const joseCode = err instanceof errors.JOSEError ? err.code : undefined;
    fail('decrypt_failed', 'Sealed dispatch metadata could not be decrypted with the keyring.', joseCode);
  }

  const claims = parseClaims(plaintext);
  if (claims.aud !== opts.agentName) fail('wrong_audience', 'Sealed dispatch metadata is for another agent.');
  if (claims.room !== opts.roomName) fail('wrong_room', 'Sealed dispatch metadata is for another room.');
  const nowSeconds = (opts.now ?? new Date()).getTime() / 1000;
  // Exactly 30 s past `exp` is still good; 30.001 s is not. The Python opener compares the same way.
  if (nowSeconds - claims.exp > EXP_LEEWAY_SECONDS) fail('expired', 'Sealed dispatch metadata has expired.');
  // The contract has no code of its own for "not yet valid": the metadata is outside its validity
  // window either way, and a worker refuses the job the same way.
  if (claims.nbf !== undefined && claims.nbf - nowSeconds > EXP_LEEWAY_SECONDS)
    fail('expired', 'Sealed dispatch metadata is not valid yet.');

  return {
    userId: claims.sub,
    tenantId: claims.tid,
    participantIdentity: claims.pid,
    roomName: claims.room,
    agentName: claims.aud,
    mcpServers: claims.mcp_servers,
    client: claims.client,
    expiresAt: new Date(claims.exp * 1000),
    jti: claims.jti,
    ...(claims.sid === undefined ? {} : { sid: claims.sid }),
    ...(claims.refresh_at === undefined ? {} : { refreshAt: new Date(claims.refresh_at * 1000) }),
    ...(claims.refresh_url === undefined ? {} : { refreshUrl: claims.refresh_url }),
  };
}

function fail(code: DispatchErrorCode, message: string, joseCode?: string): never {
  throw new DispatchMetadataError(code, message, joseCode);
}

/** Returns the header's kid, or throws `bad_header`. */
function checkHeader(segment: string): string {
  const kid = checkDispatchHeader(segment);
  if (kid === undefined) fail('bad_header', 'Sealed dispatch metadata has an unexpected protected header.');
  return kid;
}

function canonicalLength(segment: string): number {
  return canonicalDecode(segment)?.length ?? -1;
}

interface OpenedClaims {
  aud: string;
  sub: string;
  tid: string;
  room: string;
  pid: string;
  exp: number;
  nbf?: number;
  jti: string;
  mcp_servers: McpServerGrant[];
  client: string | undefined;
  sid?: string;
  refresh_at?: number;
  refresh_url?: string;
}

function parseClaims(plaintext: Uint8Array): OpenedClaims {
  let text: string;
  try {
    text = utf8.decode(plaintext);
  } catch {
    return fail('malformed', 'Sealed dispatch metadata claims are not JSON.');
  }
  try {
    const claims = parseDispatchClaims(text);
    return { ...claims, client: claims.client };
  } catch (err) {
    if (err instanceof InvalidClaimsError) return fail('malformed', err.message);
    throw err;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const parsedStrings = new Map<string, ParsedKeyring>();
const parsedObjects = new WeakMap<object, ParsedKeyring>();
const cryptoKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();

function resolveKeyring(input: string | KeyringJson | ParsedKeyring): ParsedKeyring {
  if (typeof input === 'string') {
    let ring = parsedStrings.get(input);
    if (ring === undefined) {
      ring = parseDispatchKeyring(input);
      // A worker holds one or two keyrings; the bound only guards against misuse.
      if (parsedStrings.size >= 8) parsedStrings.clear();
      parsedStrings.set(input, ring);
    }
    return ring;
  }
  if (!isPlainObject(input)) throw new KeyringError(['must be an object {"current","keys"}']);
  let ring = parsedObjects.get(input);
  if (ring === undefined) {
    ring =
      input.keys instanceof Map
        ? checkParsedKeyring(input as ParsedKeyring)
        : parseDispatchKeyring(input as KeyringJson);
    parsedObjects.set(input, ring);
  }
  return ring;
}

function checkParsedKeyring(ring: ParsedKeyring): ParsedKeyring {
  const problems: string[] = [];
  for (const [kid, key] of ring.keys) {
    if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES)
      problems.push(`key "${kid}" must be ${KEY_BYTES} bytes`);
  }
  if (typeof ring.current !== 'string' || !ring.keys.has(ring.current))
    problems.push('"current" is not in "keys"');
  if (problems.length > 0) throw new KeyringError(problems);
  return ring;
}

function cryptoKeyFor(key: Uint8Array): Promise<CryptoKey> {
  let cached = cryptoKeys.get(key);
  if (cached === undefined) {
    cached = crypto.subtle.importKey('raw', key, { name: 'AES-GCM', length: 256 }, false, ['decrypt']);
    cryptoKeys.set(key, cached);
  }
  return cached;
}
