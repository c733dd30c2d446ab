import { createHash } from 'node:crypto';
import type { ClaimRef } from '../core/ports.js';

/**
 * The one definition of the table's key schema, shared by the store, local table creation,
 * the tests and the CDK stack. Plain data: no AWS imports (only a type from the core ports).
 *
 * Every key is built by {@link key}, which escapes each part so that `#` inside a user id or
 * room name can never forge another key (keys are injective for any input).
 */
export const tableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB TTL deletes lazily, so every condition also checks it. */
  ttlAttribute: 'ttl',
  indexes: {
    /** Lists per tenant: users, sessions, audit (sorted by gsi1sk); all tenants. */
    byTenant: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    /**
     * Sparse: only a session that is still active carries these keys, so a tenant's (and, by
     * sort-key prefix, a user's) live sessions are found without reading its history.
     */
    activeSessions: { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  },
} as const;

/**
 * Escapes one key part: `%` → `%25`, `#` → `%23`, and a lone UTF-16 surrogate (which UTF-8
 * cannot carry, so DynamoDB would turn it into U+FFFD) → `%uXXXX`. Since every `%` in the
 * output starts an escape, the mapping is injective; everything else stays as it is, so a key
 * is at most about as long in UTF-8 as its parts (DynamoDB limits keys to 2048/1024 bytes).
 */
export function escapeKeyPart(part: string): string {
  return part.replace(/[%#]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, (c) =>
    c === '%'
      ? '%25'
      : c === '#'
        ? '%23'
        : `%u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
  );
}

/**
 * Marks a hashed key part. An escaped part never holds `%h` (every `%` it holds starts `%25`,
 * `%23` or `%u`), so a hashed part can never equal an escaped one.
 */
const HASHED = '%h';

/**
 * One escaped key part, or, when its escape is longer than `maxBytes` in UTF-8, `%h` and the
 * sha256 (base64url) of the escape: deterministic per part (prefix queries still match) and
 * injective up to sha256, so every id the contract allows fits DynamoDB's key limits
 * (partition 2048, sort 1024 bytes) however many of its parts a key holds (docs/api.md §6).
 */
export function boundedPart(part: string, maxBytes: number): string {
  const escaped = escapeKeyPart(part);
  if (Buffer.byteLength(escaped, 'utf8') <= maxBytes) return escaped;
  return HASHED + createHash('sha256').update(escaped, 'utf8').digest('base64url');
}

/** Room for one id in a key: the budget of a part that shares a key with up to three others. */
const ID_BYTES = 400;

/** Joins key parts with `#`; each part is escaped so the separator cannot be forged. */
export function key(kind: string, ...parts: string[]): string {
  return [kind, ...parts.map(escapeKeyPart)].join('#');
}

/** Key builders for every item kind the table holds. */
export const keys = {
  tenant: (tenantId: string) => ({ pk: key('TENANT', tenantId), sk: 'TENANT' }),
  /**
   * A user's record, keyed by (tenant, user id): the same id in another tenant is another user
   * (docs/api.md §6). A deleted user leaves its item as a tombstone holding the last version.
   */
  user: (tenantId: string, userId: string) => ({
    pk: `${key('USER', tenantId)}#${boundedPart(userId, 1024)}`,
    sk: 'USER',
  }),
  /** Claim item making an E.164 number unique among the users of one tenant. */
  phone: (tenantId: string, e164: string) => ({ pk: key('PHONE', tenantId, e164), sk: 'PHONE' }),
  /** Claim item making a SIP trunk id belong to one tenant. */
  sipTrunk: (trunkId: string) => ({ pk: key('SIPTRUNK', trunkId), sk: 'SIPTRUNK' }),
  /** Sessions of a room: one item per (agent, participant). */
  session: (roomName: string, agentName: string, participant: string, roomSid?: string) => ({
    pk: key('ROOM', roomName),
    // A webhook session belongs to one incarnation of the room (its sid): a room name that is
    // used again later (a daily room) starts fresh sessions instead of meeting the ended ones.
    sk: [
      'SESSION',
      boundedPart(agentName, 200),
      boundedPart(participant, ID_BYTES),
      ...(roomSid ? [boundedPart(roomSid, 200)] : []),
    ].join('#'),
  }),
  roomPartition: (roomName: string) => key('ROOM', roomName),
  /** One dispatch per (room, agent[, participant]). */
  dispatchClaim: (room: string, agentName: string, participant?: string) => ({
    pk:
      participant === undefined
        ? key('DISPATCH', room, agentName)
        : `${key('DISPATCH', room, agentName)}#${boundedPart(participant, ID_BYTES)}`,
    sk: 'CLAIM',
  }),
  /** One webhook event processed at most once. */
  eventClaim: (eventId: string) => ({ pk: key('EVENT', eventId), sk: 'CLAIM' }),
  /** Idempotency-Key of one (tenant, user). */
  idempotency: (tenantId: string, userId: string, idemKey: string) => ({
    pk: `${key('IDEM', tenantId)}#${boundedPart(userId, ID_BYTES)}#${boundedPart(idemKey, ID_BYTES)}`,
    sk: 'CLAIM',
  }),
  /**
   * The sliding rate window of one (tenant, user): a single item holding the last admissions'
   * times, so one conditional write decides each admission (docs/api.md §4).
   */
  rateWindow: (tenantId: string, userId: string) => ({
    pk: `${key('RATE', tenantId)}#${boundedPart(userId, 1024)}`,
    sk: 'WINDOW',
  }),
  /**
   * Base-table index of a tenant's active sessions (docs/api.md §10): one item per session that
   * may be live, written before its dispatch is created and removed once it has ended. Read
   * strongly consistent by revoke, suspension and delete (an index, eventually consistent in AWS,
   * would let a session slip past them). The sort key starts with the user, so one user's items
   * share a prefix; the rest is a digest of the session's key, so long ids still fit.
   */
  activeMarker: (tenantId: string, userId: string, sessionDigest: string) => ({
    pk: key('ACTIVE', tenantId),
    sk: `${boundedPart(userId, ID_BYTES)}#${sessionDigest}`,
  }),
  activeMarkerPartition: (tenantId: string) => key('ACTIVE', tenantId),
  /** The sort-key prefix of one user's active-session markers (the escaped id holds no `#`). */
  activeMarkerUserPrefix: (userId: string) => `${boundedPart(userId, ID_BYTES)}#`,
  /**
   * The session id's pointer (docs/api.md §9): `sid` → the key of its session, so a renewal finds
   * the session with one strongly consistent GetItem. Written before the session's dispatch.
   */
  sessionPointer: (sid: string) => ({ pk: key('SID', sid), sk: 'SID' }),
  /** One worker assertion `jti` used once; `digest` hashes (sid, jti), so any jti fits. */
  assertionJti: (digest: string) => ({ pk: key('JTI', digest), sk: 'JTI' }),
  /** The sliding window of one session's renewals (docs/api.md §9: 20 per minute). */
  renewalRateWindow: (sid: string) => ({ pk: key('RATE', 'SID', sid), sk: 'WINDOW' }),
  /** Quota lease slot `slot` of a tenant. */
  lease: (tenantId: string, slot: number) => ({
    pk: key('LEASE', tenantId),
    sk: `SLOT#${String(slot).padStart(5, '0')}`,
  }),
  leasePartition: (tenantId: string) => key('LEASE', tenantId),
  /** Audit item keyed by target and the version a write produced: rewriting it is idempotent. */
  audit: (target: string, version: number) => ({
    pk: `AUDIT#${boundedPart(target, 1536)}`,
    sk: `V#${String(version).padStart(12, '0')}`,
  }),
  /** GSI partitions for per-tenant lists. */
  tenantUsers: (tenantId: string) => key('TENANT', tenantId, 'USERS'),
  tenantSessions: (tenantId: string) => key('TENANT', tenantId, 'SESSIONS'),
  tenantAudit: (tenantId: string) => key('TENANT', tenantId, 'AUDIT'),
  /** GSI1 partition of a tenant's connections across its users (docs/api.md §6). */
  tenantConnections: (tenantId: string) => key('TENANT', tenantId, 'CONNECTIONS'),
  /**
   * GSI1 sort key of a connection under its tenant: status first, so one status is one prefix
   * (`needs_reauth#`), then user and server. Every write that changes the status rewrites it.
   */
  connectionSort: (status: string, userId: string, server: string) =>
    `${status}#${boundedPart(userId, ID_BYTES)}#${escapeKeyPart(server)}`,
  connectionStatusPrefix: (status: string) => `${status}#`,
  /** GSI2 partition of a tenant's active sessions. */
  tenantActiveSessions: (tenantId: string) => key('TENANT', tenantId, 'ACTIVE'),
  /** GSI2 sort key of an active session: user first, so one user's sessions share a prefix. */
  activeSessionSort: (userId: string, createdAt: string) => `${boundedPart(userId, ID_BYTES)}#${createdAt}`,
  /** The GSI2 sort-key prefix of one user's active sessions (the escaped id holds no `#`). */
  activeSessionUserPrefix: (userId: string) => `${boundedPart(userId, ID_BYTES)}#`,
  /** GSI1 sort key of a user under its tenant: the id itself while it fits (list order). */
  userSort: (userId: string) => (Buffer.byteLength(userId, 'utf8') <= 1024 ? userId : boundedPart(userId, 0)),
  /** GSI1 sort key of an audit record under its tenant: by time, then target and version. */
  auditSort: (at: string, target: string, version: number) =>
    `${at}#${boundedPart(target, 600)}#${String(version).padStart(12, '0')}`,
  allTenants: () => 'TENANTS',
  /**
   * One user's connection to one catalog server (docs/api.md §8). The user's connections share a
   * partition, read with one strongly consistent query; their pending-authorization pointers sit
   * in the same partition under `PENDING#`.
   */
  connection: (tenantId: string, userId: string, server: string) => ({
    pk: key('CONN', tenantId, userId),
    sk: key('SERVER', server),
  }),
  connectionPartition: (tenantId: string, userId: string) => key('CONN', tenantId, userId),
  connectionPrefix: () => 'SERVER#',
  /** Which pending authorization (by state hash) is the user's current one for a server. */
  pendingPointer: (tenantId: string, userId: string, server: string) => ({
    pk: key('CONN', tenantId, userId),
    sk: key('PENDING', server),
  }),
  pendingPrefix: () => 'PENDING#',
  /** A pending authorization, keyed by a hash of its state (never the state itself). */
  oauthState: (stateHash: string) => ({ pk: key('OAUTHSTATE', stateHash), sk: 'STATE' }),
  /** A callback's one-time result, keyed by a hash of its handle. */
  oauthResult: (handleHash: string) => ({ pk: key('OAUTHRESULT', handleHash), sk: 'RESULT' }),
  /** A tenant's client at one authorization server (issuer hashed: issuers may be long). */
  oauthClient: (tenantId: string, issuerHash: string) => ({
    pk: key('OAUTHCLIENT', tenantId),
    sk: key('ISSUER', issuerHash),
  }),
  /** The sliding window of one (tenant, user)'s authorizations (10 per minute, docs/api.md §8). */
  authorizeRateWindow: (tenantId: string, userId: string) => ({
    pk: key('RATE', tenantId, userId),
    sk: 'AUTHORIZE',
  }),
} as const;

/** The key of the claim item a core {@link ClaimRef} names. */
export function claimKey(ref: ClaimRef): { pk: string; sk: string } {
  switch (ref.kind) {
    case 'event':
      return keys.eventClaim(ref.id);
    case 'dispatch':
      return keys.dispatchClaim(ref.room, ref.agent, ref.participant);
    case 'idempotency':
      return keys.idempotency(ref.tenant, ref.user, ref.key);
  }
}
