import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import {
  CLIENT_METADATA_MAX_BYTES,
  createClaimsSealer,
  DISPATCH_ALG,
  DISPATCH_ENC,
  DISPATCH_ISSUER,
  type DispatchClaims,
  type McpServerGrant,
  parseExactHeader,
  parseMcpServerGrant,
  type UnavailableServer,
} from '@livekit-mcp-dispatch/contract';
import { CompactEncrypt, type CryptoKey, compactDecrypt } from 'jose';
import { DomainError, ValidationError } from './errors.js';
import type { Keyring } from './keyring.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** What one dispatch is sealed for. */
export interface DispatchSealInput {
  agentName: string;
  userId: string;
  tenantId: string;
  roomName: string;
  participantIdentity: string;
  mcpServers: McpServerGrant[];
  /** The app's own agent metadata, sealed as `client` (at most 4 KiB of UTF-8). */
  client?: string;
  ttlSeconds: number;
  /** The session id, sealed as `sid` (docs/api.md §9). */
  sid?: string;
  /** Renewal: `refresh_at` is sealed as min(iat + this, earliest `expires_at` − 60) (docs/api.md §9). */
  refresh?: { url: string | undefined; seconds: number };
  /** Servers a renewal left out, sealed as `unavailable`. */
  unavailable?: UnavailableServer[];
}

/** How long before a server's `expires_at` a worker renews (docs/api.md §9). */
export const REFRESH_BEFORE_EXPIRY_SECONDS = 60;

/**
 * `refresh_at` (docs/api.md §9): min(`iat` + `refreshSeconds`, the earliest `expires_at` − 60), and
 * never before `iat` (a credential about to expire is renewed at once).
 */
export function refreshAtOf(iat: number, refreshSeconds: number, servers: McpServerGrant[]): number {
  let at = iat + refreshSeconds;
  for (const s of servers) {
    if (s.expires_at !== undefined) at = Math.min(at, s.expires_at - REFRESH_BEFORE_EXPIRY_SECONDS);
  }
  return Math.max(iat, Math.floor(at));
}

/** Sealed dispatch metadata, ready for `CreateDispatch`. */
export interface SealedDispatch {
  /** The compact JWE. */
  metadata: string;
  jti: string;
  expiresAt: Date;
}

/** Seals dispatch metadata with the dispatch keyring's current key. */
export interface DispatchSealer {
  seal(input: DispatchSealInput): Promise<SealedDispatch>;
}

/**
 * Creates the sealer of dispatch metadata (docs/api.md §3): a compact JWE whose protected header is
 * exactly `{"alg":"dir","enc":"A256GCM","kid":<current>,"typ":"lk-mcp-dispatch+jwt"}`, sealed by
 * the contract package's claims sealer.
 *
 * @throws ValidationError from `seal` when `client` exceeds 4 KiB.
 * @throws TypeError from `seal` for inputs no caller should pass (empty ids, bad servers, bad TTL).
 */
export function createDispatchSealer(keyring: Keyring, clock: () => Date = () => new Date()): DispatchSealer {
  const sealClaims = createClaimsSealer(keyring);

  return {
    async seal(input) {
      for (const field of ['agentName', 'userId', 'tenantId', 'roomName', 'participantIdentity'] as const) {
        if (typeof input[field] !== 'string' || input[field].length === 0) {
          throw new TypeError(`seal: ${field} must be a non-empty string`);
        }
      }
      if (!Number.isSafeInteger(input.ttlSeconds) || input.ttlSeconds <= 0) {
        throw new TypeError('seal: ttlSeconds must be a positive integer');
      }
      if (input.client !== undefined) {
        if (typeof input.client !== 'string') throw new TypeError('seal: client must be a string');
        if (Buffer.byteLength(input.client, 'utf8') > CLIENT_METADATA_MAX_BYTES) {
          throw new ValidationError(`Agent metadata must be at most ${CLIENT_METADATA_MAX_BYTES} bytes.`, {
            details: { fields: { metadata: `at most ${CLIENT_METADATA_MAX_BYTES} bytes` } },
          });
        }
      }
      const iat = Math.floor(clock().getTime() / 1000);
      const exp = iat + input.ttlSeconds;
      const jti = randomBytes(16).toString('base64url');
      const claims: DispatchClaims = {
        iss: DISPATCH_ISSUER,
        aud: input.agentName,
        sub: input.userId,
        tid: input.tenantId,
        room: input.roomName,
        pid: input.participantIdentity,
        iat,
        exp,
        jti,
        mcp_servers: input.mcpServers.map(copyServer),
        ...(input.client === undefined ? {} : { client: input.client }),
        ...(input.sid === undefined ? {} : { sid: input.sid }),
        ...(input.refresh === undefined
          ? {}
          : {
              refresh_at: refreshAtOf(iat, input.refresh.seconds, input.mcpServers),
              ...(input.refresh.url === undefined ? {} : { refresh_url: input.refresh.url }),
            }),
        ...(input.unavailable === undefined
          ? {}
          : {
              unavailable: input.unavailable.map((u) => ({ name: u.name, status: u.status, code: u.code })),
            }),
      };
      const metadata = await sealClaims(claims);
      return { metadata, jti, expiresAt: new Date(exp * 1000) };
    },
  };
}

function copyServer(server: McpServerGrant, index: number): McpServerGrant {
  const parsed = parseMcpServerGrant(server);
  if ('grant' in parsed) return parsed.grant;
  const { field, message } = parsed.problem;
  throw new TypeError(`seal: mcpServers[${index}]${field === undefined ? '' : `.${field}`} ${message}`);
}

/** Which stored secret a sealed value belongs to. */
export interface SecretBinding {
  tenantId: string;
  /** The user id, or `""` for a tenant-level value (the tenant's default MCP token/headers). */
  userId: string;
  field: SecretField;
}

/**
 * The stored secret fields: the `mcp` bearer token and the JSON object of extra headers; a catalog
 * entry's (`catalog:<server>:token|headers|client_secret`); a connection's
 * (`conn:<server>:token|refresh_token`); an OAuth client registration's
 * (`client:<issuer>:client_secret`) and a pending authorization (`oauth:state`). The binding keeps
 * a ciphertext from being moved to another tenant, user, server or field.
 */
export type SecretField =
  | 'token'
  | 'headers'
  | `catalog:${string}:${'token' | 'headers' | 'client_secret'}`
  | `conn:${string}:${'token' | 'refresh_token'}`
  | `client:${string}:client_secret`
  | 'oauth:state';

const FIELD_PATTERN =
  /^(token|headers|oauth:state|catalog:[a-z0-9_-]{1,32}:(token|headers|client_secret)|conn:[a-z0-9_-]{1,32}:(token|refresh_token)|client:[^\s]{1,2048}:client_secret)$/;

/** Seals MCP tokens and headers at rest with the storage keyring (never given to workers). */
export interface SecretBox {
  /** Seals `plaintext` as a compact JWE bound to `binding`. */
  seal(plaintext: string, binding: SecretBinding): Promise<string>;
  /** Opens a value sealed for exactly this `binding`; throws {@link SecretBoxError} otherwise. */
  open(sealed: string, binding: SecretBinding): Promise<string>;
  /** A display fingerprint of a secret value (`fp_` + 16 hex), stable while the current storage key is. */
  fingerprint(value: string): string;
}

/** Why a stored secret did not open; for logs only, never shown to clients. */
export type SecretBoxFailure =
  | 'malformed'
  | 'bad_header'
  | 'wrong_binding'
  | 'unknown_kid'
  | 'decrypt_failed';

/**
 * A stored secret could not be opened (code `secret_unreadable`). Carries no plaintext, no
 * ciphertext and no header values, and no underlying error as `cause`.
 */
export class SecretBoxError extends DomainError {
  readonly reason: SecretBoxFailure;
  constructor(reason: SecretBoxFailure) {
    super('secret_unreadable', `A stored secret could not be opened (${reason}).`);
    this.reason = reason;
  }
}

/** Protected header `typ` of secrets sealed at rest; distinct from dispatch metadata's. */
export const SECRET_TYP = 'lk-mcp-secret';
const SECRET_HEADER_KEYS = ['alg', 'enc', 'kid', 'typ', 'bnd'];
/** HKDF `info` for the fingerprint key. */
export const FINGERPRINT_INFO = 'lk-mcp-dispatch fingerprint v1';

/**
 * Creates the storage secret box.
 *
 * Sealed form: compact JWE, `dir` + `A256GCM`, protected header
 * `{"alg":"dir","enc":"A256GCM","kid":<kid>,"typ":"lk-mcp-secret","bnd":[<tenantId>,<userId>,<field>]}`.
 * The header is the AES-GCM additional authenticated data, and `open` also requires `bnd` to
 * equal the expected binding, so a ciphertext copied to another tenant, user or field does not
 * open. Tenant-level values are bound with `userId: ""`. Opening accepts any key of the ring.
 *
 * Fingerprints: HMAC-SHA256 keyed by HKDF-SHA256(current storage key, info
 * `lk-mcp-dispatch fingerprint v1`), never by the AES key itself; they change when the current
 * storage key rotates.
 */
export function createSecretBox(storageKeys: Keyring): SecretBox {
  const current = currentKey(storageKeys);
  const keys = new Map<string, Promise<CryptoKey>>();
  const keyFor = (kid: string): Promise<CryptoKey> | undefined => {
    let cached = keys.get(kid);
    const raw = storageKeys.keys.get(kid);
    if (cached === undefined && raw !== undefined) {
      cached = importAesKey(raw);
      keys.set(kid, cached);
    }
    return cached;
  };
  const fingerprintKey = Buffer.from(hkdfSync('sha256', current, new Uint8Array(0), FINGERPRINT_INFO, 32));

  return {
    async seal(plaintext, binding) {
      if (typeof plaintext !== 'string') throw new TypeError('SecretBox.seal: plaintext must be a string');
      const header = {
        alg: DISPATCH_ALG,
        enc: DISPATCH_ENC,
        kid: storageKeys.current,
        typ: SECRET_TYP,
        bnd: bindingTuple(binding),
      };
      return new CompactEncrypt(encoder.encode(plaintext))
        .setProtectedHeader(header)
        .encrypt(await keyFor(storageKeys.current)!);
    },

    async open(sealed, binding) {
      const expected = bindingTuple(binding);
      const segments = typeof sealed === 'string' ? sealed.split('.') : [];
      if (segments.length !== 5) throw new SecretBoxError('malformed');
      const header = parseSecretHeader(segments[0]!);
      if (header === undefined) throw new SecretBoxError('bad_header');
      if (!header.bnd.every((part, i) => part === expected[i])) throw new SecretBoxError('wrong_binding');
      const key = keyFor(header.kid);
      if (key === undefined) throw new SecretBoxError('unknown_kid');
      try {
        const { plaintext } = await compactDecrypt(sealed, await key, {
          keyManagementAlgorithms: [DISPATCH_ALG],
          contentEncryptionAlgorithms: [DISPATCH_ENC],
          maxDecompressedLength: 0,
        });
        return utf8.decode(plaintext);
      } catch {
        throw new SecretBoxError('decrypt_failed');
      }
    },

    fingerprint(value) {
      return `fp_${createHmac('sha256', fingerprintKey).update(value, 'utf8').digest('hex').slice(0, 16)}`;
    },
  };
}

function bindingTuple(binding: SecretBinding): [string, string, string] {
  const { tenantId, userId, field } = binding;
  if (typeof tenantId !== 'string' || tenantId.length === 0)
    throw new TypeError('SecretBox: tenantId is required');
  if (typeof userId !== 'string')
    throw new TypeError('SecretBox: userId must be a string ("" for the tenant)');
  if (typeof field !== 'string' || !FIELD_PATTERN.test(field))
    throw new TypeError('SecretBox: field is not a known secret field');
  return [tenantId, userId, field];
}

function parseSecretHeader(segment: string): { kid: string; bnd: [string, string, string] } | undefined {
  const h = parseExactHeader(segment, SECRET_HEADER_KEYS);
  if (h === undefined) return undefined;
  if (h.alg !== DISPATCH_ALG || h.enc !== DISPATCH_ENC || h.typ !== SECRET_TYP) return undefined;
  if (typeof h.kid !== 'string' || h.kid.length === 0) return undefined;
  const bnd = h.bnd;
  if (!Array.isArray(bnd) || bnd.length !== 3 || !bnd.every((p) => typeof p === 'string')) return undefined;
  return { kid: h.kid, bnd: bnd as [string, string, string] };
}

function currentKey(keyring: Keyring): Uint8Array {
  const key = keyring.keys.get(keyring.current);
  if (key === undefined || key.length !== 32)
    throw new TypeError('keyring: the current key must be 32 bytes');
  return key;
}

function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', new Uint8Array(raw), { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
}
