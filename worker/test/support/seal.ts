import { randomUUID } from 'node:crypto';
import {
  DISPATCH_ALG,
  DISPATCH_ENC,
  DISPATCH_ISSUER,
  DISPATCH_TYP,
  type McpServerGrant,
} from '@livekit-mcp-dispatch/contract';
import { CompactEncrypt } from 'jose';

/** A keyring in the contract's JSON shape with one fresh key. */
export function testKeyring(kid = 'k-test'): { current: string; keys: Record<string, string> } {
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  return { current: kid, keys: { [kid]: key } };
}

/** What a test seals; the rest of the claims get sensible defaults. */
export interface SealInput {
  agentName: string;
  roomName: string;
  userId: string;
  participantIdentity?: string;
  tenantId?: string;
  mcpServers: McpServerGrant[];
  ttlSeconds?: number;
  /** The renewal claims (docs/api.md §9), sealed when `sid` is given. */
  sid?: string;
  refreshUrl?: string;
  refreshInSeconds?: number;
}

/** Seals dispatch metadata exactly as docs/api.md §3 describes, with jose (the server sealer's format). */
export async function sealForTest(
  keyring: { current: string; keys: Record<string, string> },
  input: SealInput,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: DISPATCH_ISSUER,
    aud: input.agentName,
    sub: input.userId,
    tid: input.tenantId ?? 'acme',
    room: input.roomName,
    pid: input.participantIdentity ?? input.userId,
    iat: now,
    exp: now + (input.ttlSeconds ?? 600),
    jti: randomUUID(),
    mcp_servers: input.mcpServers,
    ...(input.sid === undefined
      ? {}
      : { sid: input.sid, refresh_url: input.refreshUrl, refresh_at: now + (input.refreshInSeconds ?? 300) }),
  };
  const key = new Uint8Array(Buffer.from(keyring.keys[keyring.current] as string, 'base64url'));
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: DISPATCH_ALG, enc: DISPATCH_ENC, kid: keyring.current, typ: DISPATCH_TYP })
    .encrypt(key);
}
