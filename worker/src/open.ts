import { base64url, type CryptoKey, compactDecrypt, errors } from 'jose';
import {
  DISPATCH_ALG,
  DISPATCH_ENC,
  DISPATCH_HEADER_KEYS,
  DISPATCH_ISSUER,
  DISPATCH_TYP,
  type DispatchErrorCode,
  EXP_LEEWAY_SECONDS,
  MCP_TRANSPORTS,
  type McpServerGrant,
  type McpTransport,
} from './format.js';

/** Keyring JSON as the contract defines it: `{"current":"<kid>","keys":{"<kid>":"<base64url 32 bytes>"}}`. */
export interface KeyringJson {
  current: string;
  keys: Record<string, string>;
}

/** A parsed keyring: key id to 32 raw key bytes. Structurally the same as the server's `Keyring`. */
export interface ParsedKeyring {
  current: string;
  keys: ReadonlyMap<string, Uint8Array>;
}

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

const KID = /^[A-Za-z0-9._-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
// ignoreBOM keeps a leading U+FEFF in the text (the default strips it), so JSON.parse refuses
// it as Python's json does: both openers must give the same code for the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses and validates keyring JSON (text or object). Throws a {@link KeyringError} listing every
 * problem: not JSON, bad key id, key not base64url, key not 32 bytes, `current` not in `keys`.
 */
export function parseDispatchKeyring(input: string | KeyringJson): ParsedKeyring {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw new KeyringError(['not valid JSON']);
    }
  }
  if (!isPlainObject(value)) throw new KeyringError(['must be an object {"current","keys"}']);
  const problems: string[] = [];
  const { current, keys } = value;
  if (typeof current !== 'string' || !KID.test(current)) {
    problems.push('"current" must be a key id of 1-64 characters [A-Za-z0-9._-]');
  }
  if (!isPlainObject(keys) || Object.keys(keys).length === 0) {
    problems.push('"keys" must be a non-empty object of key id to base64url key');
    throw new KeyringError(problems);
  }
  const map = new Map<string, Uint8Array>();
  for (const [kid, encoded] of Object.entries(keys)) {
    if (!KID.test(kid)) {
      problems.push(`key id "${kid.slice(0, 64)}" is not 1-64 characters [A-Za-z0-9._-]`);
      continue;
    }
    let bytes: Uint8Array;
    try {
      if (typeof encoded !== 'string' || encoded.length === 0 || !B64URL.test(encoded)) throw new Error();
      bytes = base64url.decode(encoded);
    } catch {
      problems.push(`key "${kid}" is not base64url`);
      continue;
    }
    if (bytes.length !== KEY_BYTES) {
      problems.push(`key "${kid}" must be ${KEY_BYTES} bytes, got ${bytes.length}`);
      continue;
    }
    map.set(kid, bytes);
  }
  if (typeof current === 'string' && KID.test(current) && !Object.hasOwn(keys, current)) {
    problems.push(`"current" key "${current}" is not in "keys"`);
  }
  if (problems.length > 0) throw new KeyringError(problems);
  return { current: current as string, keys: map };
}

/**
 * Opens sealed dispatch metadata (CONTRACT §3) and returns the job's grant.
 *
 * Checks, in order: five compact segments (`malformed`); the protected header is exactly
 * `{"alg":"dir","enc":"A256GCM","kid":…,"typ":"lk-mcp-dispatch+jwt"}` in minimal JSON, with no
 * other member such as `zip` or `crit` (`bad_header`); `kid` is in the keyring (`unknown_kid`);
 * canonical base64url, empty encrypted key, 12-byte IV, 16-byte tag (`malformed`); AES-GCM
 * decryption (`decrypt_failed`); claims are JSON with every field of the right type and
 * `iss` = `livekit-mcp-dispatch` (`malformed`); `aud` = `agentName` (`wrong_audience`);
 * `room` = `roomName` (`wrong_room`); `exp` at most 30 s in the past (`expired`).
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
  if (nowSeconds - claims.exp > EXP_LEEWAY_SECONDS) fail('expired', 'Sealed dispatch metadata has expired.');

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
  };
}

function fail(code: DispatchErrorCode, message: string, joseCode?: string): never {
  throw new DispatchMetadataError(code, message, joseCode);
}

/** Returns the header's kid, or throws `bad_header`. */
function checkHeader(segment: string): string {
  const bad = () => fail('bad_header', 'Sealed dispatch metadata has an unexpected protected header.');
  let header: unknown;
  let text: string;
  try {
    const bytes = canonicalDecode(segment);
    if (bytes === undefined) return bad();
    text = utf8.decode(bytes);
    header = JSON.parse(text);
  } catch {
    return bad();
  }
  if (!isPlainObject(header)) return bad();
  const names = Object.keys(header);
  if (
    names.length !== DISPATCH_HEADER_KEYS.length ||
    !DISPATCH_HEADER_KEYS.every((k) => Object.hasOwn(header, k))
  ) {
    return bad();
  }
  const { alg, enc, kid, typ } = header;
  if (alg !== DISPATCH_ALG || enc !== DISPATCH_ENC || typ !== DISPATCH_TYP) return bad();
  if (typeof kid !== 'string' || kid.length === 0) return bad();
  // Minimal JSON only: this refuses duplicate members, which JSON.parse would silently merge.
  if (JSON.stringify(header) !== text) return bad();
  return kid;
}

/** Decoded bytes of a canonical base64url segment (no padding, no stray bits), else undefined. */
function canonicalDecode(segment: string): Uint8Array | undefined {
  if (!B64URL.test(segment) || segment.length % 4 === 1) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(segment);
  } catch {
    return undefined;
  }
  // Re-encoding must give the same text, so no two encodings of one value are accepted.
  return base64url.encode(bytes) === segment ? bytes : undefined;
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
  jti: string;
  mcp_servers: McpServerGrant[];
  client: string | undefined;
}

function parseClaims(plaintext: Uint8Array): OpenedClaims {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(plaintext));
  } catch {
    return fail('malformed', 'Sealed dispatch metadata claims are not JSON.');
  }
  if (!isPlainObject(value))
    return fail('malformed', 'Sealed dispatch metadata claims are not a JSON object.');
  const invalid = (name: string) =>
    fail('malformed', `Sealed dispatch metadata claim "${name}" is missing or invalid.`);
  if (value.iss !== DISPATCH_ISSUER) return invalid('iss');
  const strings = ['aud', 'sub', 'tid', 'room', 'pid', 'jti'] as const;
  for (const name of strings) {
    const v = value[name];
    if (typeof v !== 'string' || v.length === 0) return invalid(name);
  }
  for (const name of ['iat', 'exp'] as const) {
    const v = value[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return invalid(name);
  }
  if (value.client !== undefined && typeof value.client !== 'string') return invalid('client');
  const servers = value.mcp_servers;
  if (!Array.isArray(servers)) return invalid('mcp_servers');
  const mcpServers: McpServerGrant[] = [];
  for (const server of servers) {
    const grant = parseServer(server);
    if (grant === undefined) return invalid('mcp_servers');
    mcpServers.push(grant);
  }
  return {
    aud: value.aud as string,
    sub: value.sub as string,
    tid: value.tid as string,
    room: value.room as string,
    pid: value.pid as string,
    exp: value.exp as number,
    jti: value.jti as string,
    mcp_servers: mcpServers,
    client: value.client as string | undefined,
  };
}

function parseServer(server: unknown): McpServerGrant | undefined {
  if (!isPlainObject(server)) return undefined;
  const { name, url, transport, headers, allowed_tools: allowedTools } = server;
  if (typeof name !== 'string' || name.length === 0) return undefined;
  if (typeof url !== 'string' || url.length === 0) return undefined;
  if (typeof transport !== 'string' || !(MCP_TRANSPORTS as readonly string[]).includes(transport))
    return undefined;
  if (!isPlainObject(headers) || !Object.values(headers).every((v) => typeof v === 'string'))
    return undefined;
  if (
    allowedTools !== undefined &&
    !(Array.isArray(allowedTools) && allowedTools.every((t) => typeof t === 'string'))
  ) {
    return undefined;
  }
  // Object.fromEntries defines own properties, so a header named "__proto__" stays a header.
  const grant: McpServerGrant = {
    name,
    url,
    transport: transport as McpTransport,
    headers: Object.fromEntries(Object.entries(headers)) as Record<string, string>,
  };
  if (allowedTools !== undefined) grant.allowed_tools = [...(allowedTools as string[])];
  return grant;
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
