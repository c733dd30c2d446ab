/**
 * The one definition of the table's key schema, shared by the store, local table creation,
 * the tests and the CDK stack. Plain data: no AWS imports.
 *
 * Every key is built by {@link key}, which percent-encodes each part so that `#` inside a
 * user id or room name can never forge another key (keys are injective for any input).
 */
export const tableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB TTL deletes lazily, so every condition also checks it. */
  ttlAttribute: 'ttl',
  indexes: {
    /** Lists per tenant: users, sessions, audit (sorted by gsi1sk). */
    byTenant: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  },
} as const;

/** Joins key parts; each part is percent-encoded so the separator cannot be forged. */
export function key(kind: string, ...parts: string[]): string {
  return [kind, ...parts.map((p) => encodeURIComponent(p))].join('#');
}

/** Key builders for every item kind the table holds. */
export const keys = {
  tenant: (tenantId: string) => ({ pk: key('TENANT', tenantId), sk: 'TENANT' }),
  /** A user's record; keyed by user id alone, so a user id is unique across tenants by construction. */
  user: (userId: string) => ({ pk: key('USER', userId), sk: 'USER' }),
  /** Claim item making an E.164 number unique across users. */
  phone: (e164: string) => ({ pk: key('PHONE', e164), sk: 'PHONE' }),
  /** Claim item making a SIP trunk id belong to one tenant. */
  sipTrunk: (trunkId: string) => ({ pk: key('SIPTRUNK', trunkId), sk: 'SIPTRUNK' }),
  /** Sessions of a room: one item per (agent, participant). */
  session: (roomName: string, agentName: string, participant: string) => ({
    pk: key('ROOM', roomName),
    sk: key('SESSION', agentName, participant),
  }),
  roomPartition: (roomName: string) => key('ROOM', roomName),
  /** One dispatch per (room, agent[, participant]). */
  dispatchClaim: (room: string, agentName: string, participant?: string) => ({
    pk: participant === undefined ? key('DISPATCH', room, agentName) : key('DISPATCH', room, agentName, participant),
    sk: 'CLAIM',
  }),
  /** One webhook event processed at most once. */
  eventClaim: (eventId: string) => ({ pk: key('EVENT', eventId), sk: 'CLAIM' }),
  /** Idempotency-Key of one user. */
  idempotency: (userId: string, idemKey: string) => ({ pk: key('IDEM', userId, idemKey), sk: 'CLAIM' }),
  /** Per-user start counter for one minute window. */
  rate: (userId: string, minute: number) => ({ pk: key('RATE', userId, String(minute)), sk: 'COUNT' }),
  /** Quota lease slot `slot` of a tenant. */
  lease: (tenantId: string, slot: number) => ({ pk: key('LEASE', tenantId), sk: `SLOT#${String(slot).padStart(5, '0')}` }),
  leasePartition: (tenantId: string) => key('LEASE', tenantId),
  /** Audit item keyed by target and the version a write produced: rewriting it is idempotent. */
  audit: (target: string, version: number) => ({ pk: key('AUDIT', target), sk: `V#${String(version).padStart(12, '0')}` }),
  /** GSI partitions for per-tenant lists. */
  tenantUsers: (tenantId: string) => key('TENANT', tenantId, 'USERS'),
  tenantSessions: (tenantId: string) => key('TENANT', tenantId, 'SESSIONS'),
  tenantAudit: (tenantId: string) => key('TENANT', tenantId, 'AUDIT'),
  allTenants: () => 'TENANTS',
} as const;
