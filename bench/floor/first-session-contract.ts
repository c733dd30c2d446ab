import { randomBytes } from 'node:crypto';
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { AccessToken } from 'livekit-server-sdk';
import { answer, dispatchFor, type HttpEvent, livekitCreds, putNew } from './first-common.js';

/**
 * Explanatory variant (not a budget target): the session floor plus the DynamoDB requests the
 * contract adds to a session and the issue's floor leaves out, in our order: the rate window
 * (GetItem, then a conditional put, docs/api.md §4) and the active marker (§10) before the
 * dispatch, the fence re-read of tenant ‖ user after the session write (§10). So the first
 * request's excess splits into "contract I/O" and "everything else of ours".
 */
const env = process.env;
const jwks = createRemoteJWKSet(new URL(env.AUTH_JWKS_URL ?? ''));
const table = env.TABLE_NAME ?? 'livekit-mcp-dispatch';
const dynamo = new DynamoDBClient({});
const S = (v: string): AttributeValue => ({ S: v });
const get = (pk: string, sk: string) =>
  dynamo.send(new GetItemCommand({ TableName: table, Key: { pk: S(pk), sk: S(sk) }, ConsistentRead: true }));

export async function handler(event: HttpEvent) {
  const auth = event.headers.authorization ?? '';
  const { payload } = await jwtVerify(auth.slice(7), jwks, {
    issuer: env.AUTH_ISSUER ?? '',
    audience: env.AUTH_AUDIENCE ?? '',
  });
  const userId = String(payload.sub);
  const tenantId = String(payload.tenant_id);
  const room = `lk-mcp-${tenantId}-${randomBytes(15).toString('base64url')}`;
  const rateKey = `RATE#floor#${tenantId}#${userId}`;
  await get(rateKey, 'WINDOW');
  await dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: { pk: S(rateKey), sk: S('WINDOW'), admitted: { L: [{ N: String(Date.now()) }] } },
    }),
  );
  await putNew(`ACTIVE#floor#${tenantId}`, `${userId}#${randomBytes(8).toString('hex')}`);
  await dispatchFor(userId, tenantId, room);
  await Promise.all([get(`TENANT#${tenantId}`, 'TENANT'), get(`USER#${tenantId}#${userId}`, 'USER')]);
  const token = new AccessToken(livekitCreds.api_key, livekitCreds.api_secret, {
    identity: userId,
    ttl: 900,
  });
  token.addGrant({ roomJoin: true, room });
  return answer(201, { room_name: room, participant_token: await token.toJwt() });
}
