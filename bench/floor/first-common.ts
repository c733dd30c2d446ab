import { randomBytes } from 'node:crypto';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { AgentDispatchClient } from 'livekit-server-sdk';

/**
 * The first-request floor's shared part (not a budget target itself): what a session or a
 * dispatching webhook must do, written with the bare libraries and nothing of ours. Secrets are
 * read at init exactly as the functions read them (Powertools over the Secrets Manager client,
 * same client options); DynamoDB, LiveKit and the JWKS are reached over TLS on first use.
 */
const env = process.env;
const provider = new SecretsProvider({
  clientConfig: {
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  },
});
const [livekitJson, dispatchJson, storageJson] = (await Promise.all(
  ['LIVEKIT_CREDENTIALS_SECRET_ARN', 'DISPATCH_KEYS_SECRET_ARN', 'STORAGE_KEYS_SECRET_ARN'].map((name) =>
    provider.get(env[name] ?? '', { maxAge: 300 }),
  ),
)) as string[];
const rawKey = (json: string) => {
  const ring = JSON.parse(json) as { current: string; keys: Record<string, string> };
  return { kid: ring.current, key: Buffer.from(ring.keys[ring.current]!, 'base64url') };
};
export const livekitCreds = JSON.parse(livekitJson!) as { api_key: string; api_secret: string };
const dispatchKey = rawKey(dispatchJson!);
const storageKey = rawKey(storageJson!);
const table = env.TABLE_NAME ?? 'livekit-mcp-dispatch';
const dynamo = new DynamoDBClient({});
const httpUrl = (env.LIVEKIT_URL ?? '').replace(/^ws/, 'http');
const dispatch = new AgentDispatchClient(httpUrl, livekitCreds.api_key, livekitCreds.api_secret);

const S = (v: string): AttributeValue => ({ S: v });
const get = (pk: string, sk: string) =>
  dynamo.send(new GetItemCommand({ TableName: table, Key: { pk: S(pk), sk: S(sk) }, ConsistentRead: true }));

/** A conditional put of a new item (a claim or a session record). */
export async function putNew(
  pk: string,
  sk: string,
  extra: Record<string, AttributeValue> = {},
): Promise<void> {
  await dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: { pk: S(pk), sk: S(sk), ...extra },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

/**
 * The required work of one dispatch: user and tenant read strongly consistent (in parallel),
 * the stored MCP token opened, the metadata sealed (JWE dir/A256GCM), CreateDispatch, the
 * session record written. Returns the room's dispatch id.
 */
export async function dispatchFor(userId: string, tenantId: string, room: string): Promise<string> {
  const [user, tenant] = await Promise.all([
    get(`USER#${tenantId}#${userId}`, 'USER'),
    get(`TENANT#${tenantId}`, 'TENANT'),
  ]);
  if (!user.Item || !tenant.Item) throw new Error('user or tenant missing');
  const mcp = user.Item.mcp?.M ?? {};
  const sealedToken = mcp.token_sealed?.S ?? '';
  const { plaintext } = await compactDecrypt(sealedToken, storageKey.key);
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    aud: 'mcp-agent',
    sub: userId,
    tid: tenantId,
    room,
    pid: userId,
    iat: now,
    exp: now + 7200,
    jti: randomBytes(16).toString('base64url'),
    mcp_servers: [{ name: 'mcp', url: mcp.url?.S, token: new TextDecoder().decode(plaintext) }],
  };
  const metadata = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: dispatchKey.kid })
    .encrypt(dispatchKey.key);
  const created = await dispatch.createDispatch(room, 'mcp-agent', { metadata });
  await putNew(`ROOM#${room}`, `SESSION#mcp-agent#${userId}`, {
    dispatch_id: S(created.id),
    tenant_id: S(tenantId),
    user_id: S(userId),
  });
  return created.id;
}

/** An API Gateway HTTP API v2 answer. */
export function answer(statusCode: number, body: unknown) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The part of an API Gateway HTTP API v2 event the floor reads. */
export interface HttpEvent {
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}
