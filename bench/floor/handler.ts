import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import { CompactEncrypt, createRemoteJWKSet, jwtVerify } from 'jose';
import { AccessToken, AgentDispatchClient, WebhookReceiver } from 'livekit-server-sdk';

/**
 * The cold-start floor: a Lambda handler built from the same four libraries the functions use
 * (hono, @aws-sdk/client-dynamodb, livekit-server-sdk, jose), calling the same APIs so tree
 * shaking keeps comparable code, with nothing of ours. Like the real handlers it builds its
 * clients at module load and talks to no network until a request comes.
 */
const env = process.env;
const dynamo = new DynamoDBClient({});
const dispatch = new AgentDispatchClient(env.LIVEKIT_URL ?? 'http://127.0.0.1:7880', 'key', 'secret');
const receiver = new WebhookReceiver('key', 'secret');
const jwks = createRemoteJWKSet(new URL(env.AUTH_JWKS_URL ?? 'http://127.0.0.1:1/jwks.json'));
const key = new Uint8Array(32);

const app = new Hono();
app.post('/session', async (c) => {
  const { payload } = await jwtVerify((c.req.header('authorization') ?? '').slice(7), jwks);
  const user = await dynamo.send(
    new GetItemCommand({ TableName: 't', Key: { pk: { S: String(payload.sub) }, sk: { S: 'USER' } } }),
  );
  const metadata = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(user.Item ?? {})))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .encrypt(key);
  const created = await dispatch.createDispatch('room', 'agent', { metadata });
  await dynamo.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: created.id }, sk: { S: 'S' } } }));
  const token = new AccessToken('key', 'secret', { identity: String(payload.sub) });
  token.addGrant({ roomJoin: true, room: 'room' });
  return c.json({ token: await token.toJwt() }, 201);
});
app.post('/webhook', async (c) => {
  const event = await receiver.receive(await c.req.text(), c.req.header('authorization'));
  return c.json({ ok: true, event: event.event });
});

/** API Gateway HTTP API entry, as the functions export it. */
export const handler = handle(app);
