import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSecretsManagerReader,
  SecretsManagerError,
  signRequest,
} from '../../functions/adapters/secrets-manager.js';

/** node:crypto as the SDK signer's hash constructor. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session-token-example',
};

describe('signRequest', () => {
  it.each([
    ['with a session token', CREDENTIALS],
    ['without a session token', { ...CREDENTIALS, sessionToken: undefined }],
  ])('matches the AWS SDK signer byte for byte (%s)', async (_, credentials) => {
    // Prepare
    const url = new URL('https://secretsmanager.eu-west-1.amazonaws.com/');
    const body = JSON.stringify({
      SecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf',
    });
    const date = new Date('2026-11-29T12:34:56.789Z');
    // applyChecksum off: only S3 needs x-amz-content-sha256; GetSecretValue is signed without it.
    const sdk = new SignatureV4({
      service: 'secretsmanager',
      region: 'eu-west-1',
      credentials,
      sha256: Sha256 as never,
      applyChecksum: false,
    });

    // Act
    const ours = signRequest({
      url,
      region: 'eu-west-1',
      service: 'secretsmanager',
      target: 'secretsmanager.GetSecretValue',
      body,
      credentials,
      date,
    });
    const { authorization, ...unsigned } = ours;
    const theirs: unknown = await sdk.sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname: url.hostname,
        path: '/',
        headers: { ...unsigned },
        body,
      } as never,
      { signingDate: date },
    );

    // Assess
    expect(authorization).toBe((theirs as { headers: Record<string, string> }).headers.authorization);
  });
});

interface Answer {
  status: number;
  body: unknown;
}

async function startSecretsManager(answers: (Answer | 'hang')[]) {
  const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      if (answer === 'hang') return;
      res
        .writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1' })
        .end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

describe('createSecretsManagerReader', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });
  const env = (endpoint: string) => ({
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
  });

  it('sends a signed GetSecretValue and returns the SecretString', async () => {
    // Prepare
    const sm = await startSecretsManager([{ status: 200, body: { ARN: 'arn:x', SecretString: '{"a":1}' } }]);
    stop = sm.stop;
    const reader = createSecretsManagerReader({ env: env(sm.url) });

    // Act
    const value = await reader.get('arn:x');

    // Assess
    expect(value).toBe('{"a":1}');
    expect(sm.seen).toHaveLength(1);
    expect(JSON.parse(sm.seen[0]!.body)).toEqual({ SecretId: 'arn:x' });
    expect(sm.seen[0]!.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(sm.seen[0]!.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
    expect(sm.seen[0]!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/secretsmanager\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
  });

  it('retries throttling and 5xx, then succeeds', async () => {
    // Prepare
    const sm = await startSecretsManager([
      { status: 400, body: { __type: 'com.amazonaws.secretsmanager#ThrottlingException' } },
      { status: 500, body: { __type: 'InternalServiceError' } },
      { status: 200, body: { SecretString: 'v' } },
    ]);
    stop = sm.stop;

    // Act
    const value = await createSecretsManagerReader({ env: env(sm.url) }).get('arn:x');

    // Assess
    expect(value).toBe('v');
    expect(sm.seen).toHaveLength(3);
  });

  it('fails at once, naming the AWS error, for a secret that does not exist', async () => {
    // Prepare
    const sm = await startSecretsManager([
      { status: 400, body: { __type: 'ResourceNotFoundException', message: 'no such secret' } },
    ]);
    stop = sm.stop;

    // Act
    const failure = await createSecretsManagerReader({ env: env(sm.url) })
      .get('arn:x')
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(SecretsManagerError);
    expect((failure as Error).name).toBe('ResourceNotFoundException');
    expect(sm.seen).toHaveLength(1);
  });

  it('gives up on a hung endpoint after its attempts', async () => {
    // Prepare
    const sm = await startSecretsManager(['hang']);
    stop = sm.stop;
    const started = Date.now();

    // Act
    const failure = await createSecretsManagerReader({
      env: env(sm.url),
      maxAttempts: 2,
      attemptTimeoutMs: 200,
    })
      .get('arn:x')
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).name).toBe('TimeoutError');
    expect(sm.seen).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses to run without credentials or region', async () => {
    // Act
    const failure = await createSecretsManagerReader({ env: {} })
      .get('arn:x')
      .catch((e: unknown) => e);

    // Assess
    expect((failure as Error).name).toBe('CredentialsOrRegionMissing');
  });
});
