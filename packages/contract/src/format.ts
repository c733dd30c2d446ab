/**
 * The sealed dispatch metadata wire format (docs/api.md §3), shared by the server-side sealer and
 * the TypeScript worker opener. Constants and types only.
 */
import type { McpTransport } from './ids.js';

/** Protected header `alg`: direct use of a shared symmetric key. */
export const DISPATCH_ALG = 'dir';
/** Protected header `enc`: AES-256-GCM content encryption. */
export const DISPATCH_ENC = 'A256GCM';
/** Protected header `typ` of sealed dispatch metadata. */
export const DISPATCH_TYP = 'lk-mcp-dispatch+jwt';
/** The `iss` claim of every sealed dispatch metadata. */
export const DISPATCH_ISSUER = 'livekit-mcp-dispatch';
/** How far in the past `exp` may be before the metadata counts as expired (seconds). */
export const EXP_LEEWAY_SECONDS = 30;
/**
 * Latest `iat`/`exp`/`nbf` an opener accepts: 9999-12-31T23:59:59Z in epoch seconds, the last
 * second both JavaScript's `Date` and Python's `datetime` can hold. A later one is `malformed`.
 */
export const MAX_NUMERIC_DATE = 253_402_300_799;
/**
 * Deepest nesting of arrays and objects the claims may have (the contract's own claims need 4).
 * Deeper is `malformed` in both openers: Python's json would otherwise fail on its recursion limit,
 * which depends on the stack, not on the bytes.
 */
export const MAX_CLAIMS_DEPTH = 32;
/** Maximum size of the optional `client` claim, in UTF-8 bytes (4 KiB). */
export const CLIENT_METADATA_MAX_BYTES = 4096;
/** The names, in order, of the only members the protected header may have. */
export const DISPATCH_HEADER_KEYS = ['alg', 'enc', 'kid', 'typ'] as const;

/** The protected header of sealed dispatch metadata, exactly these members. */
export interface DispatchProtectedHeader {
  alg: typeof DISPATCH_ALG;
  enc: typeof DISPATCH_ENC;
  kid: string;
  typ: typeof DISPATCH_TYP;
}

/** One MCP server as it travels sealed to the worker (docs/api.md §3). */
export interface McpServerGrant {
  name: string;
  url: string;
  transport: McpTransport;
  /** Request headers for this server, e.g. `Authorization: Bearer …`. Secret. */
  headers: Record<string, string>;
  /** When present, only these tools may be exposed to the agent. */
  allowed_tools?: string[];
  /** How the credential in `headers` was obtained (docs/api.md §3, §6). */
  auth?: McpServerAuth;
  /** Epoch seconds when this server's credential stops working (OAuth access tokens). */
  expires_at?: number;
}

/** The `auth` of a sealed MCP server. */
export type McpServerAuth = 'static' | 'oauth' | 'user_token' | 'none';
/** Every {@link McpServerAuth}. */
export const MCP_SERVER_AUTHS: readonly McpServerAuth[] = ['static', 'oauth', 'user_token', 'none'];
/** At most this many MCP servers in one dispatch (`mcp` plus 7 catalog servers). */
export const MAX_DISPATCH_MCP_SERVERS = 8;

/** A server's status in a session or renewal (docs/api.md §8). */
export type ServerStatus = 'ready' | 'not_connected' | 'needs_reauth' | 'unavailable';

/**
 * The codes of servers a renewal left out (docs/api.md §9 `unavailable[].code`): the authorization
 * server could not be reached, the worker reported the token rejected, the user must reconnect.
 */
export const UNAVAILABLE_SERVER_CODES = [
  'mcp_auth_unavailable',
  'mcp_auth_rejected',
  'mcp_reauth_required',
] as const;

/** One server a renewal left out of `mcp_servers`, and why. */
export interface UnavailableServer {
  name: string;
  status: Exclude<ServerStatus, 'ready'>;
  code: (typeof UNAVAILABLE_SERVER_CODES)[number];
}

/** The JWT claims set inside sealed dispatch metadata (docs/api.md §3). */
export interface DispatchClaims {
  /** Always {@link DISPATCH_ISSUER}. */
  iss: typeof DISPATCH_ISSUER;
  /** The agent name the dispatch targets. */
  aud: string;
  /** The user id. */
  sub: string;
  /** The tenant id. */
  tid: string;
  /** The room name. */
  room: string;
  /** The participant identity the job serves. */
  pid: string;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /**
   * Not before, seconds since the epoch. The sealer never sets it; an opener honours it when
   * present (RFC 7519 §4.1.5).
   */
  nbf?: number;
  /** Unique id of this sealed metadata. */
  jti: string;
  mcp_servers: McpServerGrant[];
  /** The app's own agent metadata string (not secret, at most 4 KiB). */
  client?: string;
  /** The session id (≥ 128 random bits, stable across renewals; docs/api.md §9). */
  sid?: string;
  /** Epoch seconds after which the worker should renew (§9). */
  refresh_at?: number;
  /** The absolute URL of `POST /v1/worker/credentials`. */
  refresh_url?: string;
  /**
   * Servers a renewal left out (docs/api.md §9); the worker closes them. Informational: the
   * openers do not check it (so both keep giving the same verdict for the same bytes).
   */
  unavailable?: UnavailableServer[];
}
