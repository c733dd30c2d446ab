import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadLambdaConfig } from '../../functions/adapters/secrets.js';
import { ConfigError } from '../../functions/core/errors.js';
import { parseKeyring } from '../../functions/core/keyring.js';
import {
  type CustomResourceEvent,
  type CustomResourceResponse,
  keyIdFor,
  onEvent,
  respondTo,
  type SeedSecrets,
  seedValue,
} from '../../infra/secret-seeder/index.mjs';

/** Secrets Manager as the seeder sees it: which secrets have a value, and what was put. */
class FakeSecrets implements SeedSecrets {
  readonly values = new Map<string, string>();
  readonly puts: { arn: string; value: string; requestId: string }[] = [];
  failWith: Error | undefined;

  async hasValue(arn: string): Promise<boolean> {
    if (this.failWith) throw this.failWith;
    return this.values.has(arn);
  }

  async putValue(arn: string, value: string, requestId: string): Promise<void> {
    this.puts.push({ arn, value, requestId });
    this.values.set(arn, value);
  }
}

// CloudFormation's pre-signed response URL, played by a loopback server.
let server: Server;
let responseUrl: string;
let answers: { method: string; contentType: string | undefined; body: CustomResourceResponse }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      answers.push({
        method: req.method ?? '',
        contentType: req.headers['content-type'],
        body: JSON.parse(body),
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cfn-response?X-Amz-Signature=x`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  answers = [];
});

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:DispatchKeys-AbCdEf';
const NOW = new Date('2026-11-29T12:00:00Z');

function event(
  type: CustomResourceEvent['RequestType'],
  overrides: Partial<CustomResourceEvent> = {},
): CustomResourceEvent {
  return {
    RequestType: type,
    ResponseURL: responseUrl,
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/LiveKitMcpDispatch/1',
    RequestId: '9f0e1d2c-3b4a-5968-7766-554433221100',
    LogicalResourceId: 'DispatchKeysSeed',
    ResourceProperties: { SecretArn: ARN, Seed: 'keyring' },
    ...(type === 'Create' ? {} : { PhysicalResourceId: `seed:${ARN}` }),
    ...overrides,
  };
}

const deps = (secrets: FakeSecrets) => ({ secrets, respond: respondTo, now: () => NOW });

describe('secret seeder', () => {
  it('gives an empty secret a keyring the functions accept, with a k<yyyy>-<mm> key id', async () => {
    // Prepare
    const secrets = new FakeSecrets();

    // Act
    const result = await onEvent(event('Create'), deps(secrets));

    // Assess
    expect(result.status).toBe('SUCCESS');
    expect(secrets.puts).toHaveLength(1);
    const parsed = parseKeyring('DISPATCH_KEYS', secrets.puts[0]!.value);
    expect(parsed.problems).toEqual([]);
    expect(parsed.keyring!.current).toBe('k2026-11');
    expect([...parsed.keyring!.keys.keys()]).toEqual(['k2026-11']);
    expect(secrets.puts[0]!.arn).toBe(ARN);
  });

  it('answers CloudFormation with SUCCESS, a stable physical id and never the value', async () => {
    // Prepare
    const secrets = new FakeSecrets();

    // Act
    await onEvent(event('Create'), deps(secrets));

    // Assess
    expect(answers).toHaveLength(1);
    expect(answers[0]!.method).toBe('PUT');
    expect(answers[0]!.body).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: `seed:${ARN}`,
      RequestId: '9f0e1d2c-3b4a-5968-7766-554433221100',
      LogicalResourceId: 'DispatchKeysSeed',
      NoEcho: true,
      Data: {},
    });
    const key = JSON.parse(secrets.puts[0]!.value).keys['k2026-11'];
    expect(JSON.stringify(answers[0]!.body)).not.toContain(key);
  });

  it('generates different key material for each keyring', async () => {
    // Prepare
    const secrets = new FakeSecrets();
    const other = `${ARN.slice(0, -6)}ZyXwVu`;

    // Act
    await onEvent(event('Create'), deps(secrets));
    await onEvent(
      event('Create', { ResourceProperties: { SecretArn: other, Seed: 'keyring' } }),
      deps(secrets),
    );

    // Assess
    const [a, b] = secrets.puts.map((p) => JSON.parse(p.value).keys['k2026-11']);
    expect(a).not.toBe(b);
  });

  it('never overwrites a secret that already has a value (create, update, replacement)', async () => {
    // Prepare
    const secrets = new FakeSecrets();
    secrets.values.set(ARN, '{"current":"k2025-01","keys":{"k2025-01":"kept"}}');

    // Act
    const created = await onEvent(event('Create'), deps(secrets));
    const updated = await onEvent(event('Update'), deps(secrets));

    // Assess
    expect([created.status, updated.status]).toEqual(['SUCCESS', 'SUCCESS']);
    expect(secrets.puts).toEqual([]);
    expect(secrets.values.get(ARN)).toContain('kept');
  });

  it('seeds the new secret when an update points at another one', async () => {
    // Prepare
    const secrets = new FakeSecrets();
    secrets.values.set(ARN, 'old');
    const replacement = `${ARN.slice(0, -6)}NeWsEc`;

    // Act
    await onEvent(
      event('Update', { ResourceProperties: { SecretArn: replacement, Seed: 'keyring' } }),
      deps(secrets),
    );

    // Assess
    expect(secrets.puts.map((p) => p.arn)).toEqual([replacement]);
    expect(answers[0]!.body.PhysicalResourceId).toBe(`seed:${replacement}`);
  });

  it('puts the LiveKit credentials placeholder the operator replaces', async () => {
    // Prepare
    const secrets = new FakeSecrets();

    // Act
    await onEvent(
      event('Create', { ResourceProperties: { SecretArn: ARN, Seed: 'livekit-credentials' } }),
      deps(secrets),
    );

    // Assess
    expect(JSON.parse(secrets.puts[0]!.value)).toEqual({ api_key: '', api_secret: '' });
  });

  it('does nothing on delete: the secret follows its own removal policy', async () => {
    // Prepare
    const secrets = new FakeSecrets();
    secrets.failWith = new Error('must not be called');

    // Act
    const result = await onEvent(event('Delete'), deps(secrets));

    // Assess
    expect(result.status).toBe('SUCCESS');
    expect(secrets.puts).toEqual([]);
    expect(answers[0]!.body).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: `seed:${ARN}` });
  });

  it('answers FAILED with the error name when Secrets Manager fails, so the stack does not hang', async () => {
    // Prepare
    const secrets = new FakeSecrets();
    secrets.failWith = Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' });

    // Act
    const result = await onEvent(event('Create'), deps(secrets));

    // Assess
    expect(result.status).toBe('FAILED');
    expect(answers[0]!.body.Status).toBe('FAILED');
    expect(answers[0]!.body.Reason).toContain('AccessDeniedException');
  });

  it('refuses an unknown seed kind', async () => {
    // Prepare
    const secrets = new FakeSecrets();

    // Act
    const result = await onEvent(
      event('Create', { ResourceProperties: { SecretArn: ARN, Seed: 'password' } }),
      deps(secrets),
    );

    // Assess
    expect(result.status).toBe('FAILED');
    expect(secrets.puts).toEqual([]);
  });

  it('names keys by UTC month', () => {
    // Assess
    expect(keyIdFor(new Date('2027-01-01T00:30:00Z'))).toBe('k2027-01');
    expect(keyIdFor(new Date('2026-12-31T23:59:59Z'))).toBe('k2026-12');
  });

  describe('seeds as the functions read them at cold start', () => {
    const env = {
      LIVEKIT_URL: 'wss://livekit.example.com',
      AUTH_JWKS_URL: 'https://id.example.com/.well-known/jwks.json',
      AUTH_ISSUER: 'https://id.example.com/',
      AUTH_AUDIENCE: 'livekit-mcp-dispatch',
      TABLE_NAME: 'table',
      LIVEKIT_CREDENTIALS_SECRET_ARN: 'arn:livekit',
      DISPATCH_KEYS_SECRET_ARN: 'arn:dispatch',
      STORAGE_KEYS_SECRET_ARN: 'arn:storage',
    };
    const provider = (values: Record<string, string>) => ({ get: async (arn: string) => values[arn] });

    it('two seeded keyrings are accepted (and share no key material)', async () => {
      // Prepare
      const values = {
        'arn:livekit': JSON.stringify({ api_key: 'APIkey', api_secret: 'secret' }),
        'arn:dispatch': seedValue('keyring', NOW),
        'arn:storage': seedValue('keyring', NOW),
      };

      // Act
      const config = await loadLambdaConfig(env, { dispatchKeys: true }, provider(values) as never);

      // Assess
      expect(config.dispatchKeys.current).toBe('k2026-11');
      expect(config.storageKeys.current).toBe('k2026-11');
    });

    it('the LiveKit placeholder keeps the functions from starting until the operator puts the pair', async () => {
      // Prepare
      const values = {
        'arn:livekit': seedValue('livekit-credentials', NOW),
        'arn:dispatch': seedValue('keyring', NOW),
        'arn:storage': seedValue('keyring', NOW),
      };

      // Act
      const failure = await loadLambdaConfig(env, { dispatchKeys: true }, provider(values) as never).catch(
        (error: unknown) => error,
      );

      // Assess
      expect(failure).toBeInstanceOf(ConfigError);
      expect((failure as ConfigError).problems.join('\n')).toMatch(/LIVEKIT_API_KEY/);
    });
  });
});
