/**
 * Room names and participant facts the dispatcher decides on. Pure functions, no I/O.
 */
import { E164, TENANT_ID } from '@livekit-mcp-dispatch/contract';

/** Characters of the random room suffix: lowercase base32, so the suffix never holds a `-`. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Random bytes in a room suffix: 120 bits, unguessable. */
const ROOM_RANDOM_BYTES = 15;

/**
 * A server-chosen room name `<prefix><tenant>-<random>`. The random part is 120 bits of
 * lowercase base32 with no `-`, so the tenant is everything between the prefix and the last `-`.
 */
export function newRoomName(prefix: string, tenantId: string, random: (n: number) => Uint8Array): string {
  const bytes = random(ROOM_RANDOM_BYTES);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return `${prefix}${tenantId}-${out}`;
}

/** Random bytes from the platform CSPRNG. */
export function cryptoRandom(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/**
 * Tenant ids a room name may belong to under the `<prefix><tenant>-<rest>` scheme, longest
 * first. Tenant ids may contain `-`, so `lk-mcp-acme-corp-x` could be tenant `acme-corp` or
 * `acme`; the owner is the longest one that exists. At most `limit` candidates.
 */
export function roomTenantCandidates(roomName: string, prefix: string, limit = 32): string[] {
  if (!roomName.startsWith(prefix)) return [];
  const rest = roomName.slice(prefix.length);
  const out: string[] = [];
  for (let i = rest.lastIndexOf('-'); i > 0; i = rest.lastIndexOf('-', i - 1)) {
    const candidate = rest.slice(0, i);
    if (TENANT_ID.test(candidate)) out.push(candidate);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Normalises a SIP caller number to E.164: separators dropped, a `+` added to bare digits.
 * Returns undefined when the result is not `+` and 2 to 15 digits.
 */
export function normalizeE164(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const compact = raw.trim().replace(/[\s().-]/g, '');
  const e164 = /^\d+$/.test(compact) ? `+${compact}` : compact;
  return E164.test(e164) ? e164 : undefined;
}

/** `ParticipantInfo.Kind` values of the LiveKit protocol. */
export const ParticipantKind = {
  STANDARD: 0,
  INGRESS: 1,
  EGRESS: 2,
  SIP: 3,
  AGENT: 4,
  CONNECTOR: 7,
} as const;

/** Participants that never get an agent: agents themselves, egress and ingress. */
export function isServiceParticipant(kind: number): boolean {
  return (
    kind === ParticipantKind.AGENT || kind === ParticipantKind.EGRESS || kind === ParticipantKind.INGRESS
  );
}
