import { generateKeyPairSync, randomBytes } from 'node:crypto';

/**
 * CloudFormation custom resource that gives a freshly created Secrets Manager secret its first
 * value, once: a keyring in the contract's JSON (`GenerateSecretString` cannot produce that
 * shape) or the LiveKit credentials placeholder the operator fills. A secret that already has
 * a value is never overwritten, on create, update or replacement; deleting the resource leaves
 * the secret to its own removal policy. Runs on the Node.js 22 runtime (AWS SDK v3 built in).
 */

/** Key id for a key generated at `now`: `k<yyyy>-<mm>` (UTC). */
export function keyIdFor(now) {
  return `k${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** A one-key keyring `{"current","keys"}` with 32 random bytes, base64url. */
export function newKeyring(now, random = randomBytes) {
  const kid = keyIdFor(now);
  return JSON.stringify({ current: kid, keys: { [kid]: random(32).toString('base64url') } });
}

/** A one-key `OAUTH_CLIENT_KEYS` keyring: `{"current","keys":[<private P-256 JWK with kid>]}`. */
export function newClientKeyring(now) {
  const kid = keyIdFor(now);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y, d } = privateKey.export({ format: 'jwk' });
  return JSON.stringify({ current: kid, keys: [{ kty, crv, x, y, d, kid }] });
}

/** The first value of a secret of the given seed kind. */
export function seedValue(seed, now, random = randomBytes) {
  if (seed === 'keyring') return newKeyring(now, random);
  if (seed === 'livekit-credentials') return JSON.stringify({ api_key: '', api_secret: '' });
  if (seed === 'oauth-client-keys') return newClientKeyring(now);
  throw new Error(`unknown seed "${String(seed)}"`);
}

/**
 * Handles one custom resource event and always answers CloudFormation (a missing answer would
 * hang the stack for an hour). The answer never carries the secret value.
 */
export async function onEvent(event, deps) {
  const props = event.ResourceProperties ?? {};
  // A new SecretArn (the secret was replaced) gives a new id; CloudFormation then deletes the old one.
  const physicalId =
    event.RequestType === 'Delete' ? (event.PhysicalResourceId ?? 'seed') : `seed:${String(props.SecretArn)}`;
  let status = 'SUCCESS';
  let reason = 'ok';
  try {
    if (event.RequestType === 'Create' || event.RequestType === 'Update') {
      if (typeof props.SecretArn !== 'string' || props.SecretArn.length === 0)
        throw new Error('SecretArn is required');
      const hasValue = await deps.secrets.hasValue(props.SecretArn);
      if (hasValue) {
        reason = 'secret already has a value; left as it is';
      } else {
        await deps.secrets.putValue(props.SecretArn, seedValue(props.Seed, deps.now()), event.RequestId);
        reason = 'seeded';
      }
    }
  } catch (error) {
    status = event.RequestType === 'Delete' ? 'SUCCESS' : 'FAILED';
    reason = `seeding failed: ${error instanceof Error ? `${error.name}: ${error.message}` : 'error'}`;
  }
  await deps.respond(event.ResponseURL, {
    Status: status,
    Reason: reason,
    PhysicalResourceId: physicalId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    NoEcho: true,
    Data: {},
  });
  return { status, reason };
}

/** Secrets Manager through the SDK the runtime ships. */
export async function sdkSecrets() {
  const { SecretsManagerClient, DescribeSecretCommand, PutSecretValueCommand } = await import(
    '@aws-sdk/client-secrets-manager'
  );
  const client = new SecretsManagerClient({});
  return {
    async hasValue(arn) {
      const out = await client.send(new DescribeSecretCommand({ SecretId: arn }));
      return Object.keys(out.VersionIdsToStages ?? {}).length > 0;
    },
    async putValue(arn, value, requestId) {
      // The request id as token makes a retried seed of the same event idempotent.
      const token = requestId
        .replace(/[^A-Za-z0-9-]/g, '')
        .padEnd(32, '0')
        .slice(0, 64);
      await client.send(
        new PutSecretValueCommand({ SecretId: arn, SecretString: value, ClientRequestToken: token }),
      );
    },
  };
}

/** PUTs the answer to the pre-signed S3 URL CloudFormation gave. */
export async function respondTo(url, body) {
  const payload = JSON.stringify(body);
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': '' }, body: payload });
  if (!res.ok) throw new Error(`CloudFormation response rejected: HTTP ${res.status}`);
}

/** Lambda entry point. */
export async function handler(event) {
  return onEvent(event, { secrets: await sdkSecrets(), respond: respondTo, now: () => new Date() });
}
