import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { AccessToken } from 'livekit-server-sdk';
import { answer, dispatchFor, type HttpEvent, livekitCreds } from './first-common.js';

/**
 * First-request floor of POST /v1/sessions: the bearer JWT verified against the issuer's remote
 * JWKS (fetched over TLS on first use), then {@link dispatchFor}, then the participant token.
 * A bare API Gateway v2 handler: no router, no validation, no logging.
 */
const env = process.env;
const jwks = createRemoteJWKSet(new URL(env.AUTH_JWKS_URL ?? ''));

export async function handler(event: HttpEvent) {
  const auth = event.headers.authorization ?? '';
  const { payload } = await jwtVerify(auth.slice(7), jwks, {
    issuer: env.AUTH_ISSUER ?? '',
    audience: env.AUTH_AUDIENCE ?? '',
  });
  const userId = String(payload.sub);
  const tenantId = String(payload.tenant_id);
  const room = `lk-mcp-${tenantId}-${randomBytes(15).toString('base64url')}`;
  await dispatchFor(userId, tenantId, room);
  const token = new AccessToken(livekitCreds.api_key, livekitCreds.api_secret, {
    identity: userId,
    ttl: 900,
  });
  token.addGrant({ roomJoin: true, room });
  return answer(201, { room_name: room, participant_token: await token.toJwt() });
}
