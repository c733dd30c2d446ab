import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLambdaConfig } from '../../functions/adapters/secrets.js';
import { ConfigError } from '../../functions/core/errors.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type Stack, seedUserWithJwt, startSession, startStack } from './stack.js';

// Lambda's limit on a cold start's init; the JWKS fetch timeout (adapters/auth.ts).
const LAMBDA_INIT_LIMIT_MS = 10_000;
const JWKS_TIMEOUT_MS = 3_000;

describe('deadlines: the JWKS endpoint hangs', () => {
  let s: Stack;
  beforeAll(async () => {
    // A fresh server: its verifier has not cached the key set yet.
    s = await startStack();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('a request is refused within the JWKS timeout with nothing written; it works once the JWKS answers', async () => {
    // Prepare
    const { jwt } = await seedUserWithJwt(s);
    const before = await s.db.scan();
    s.jwksProxy.fail({ mode: 'hang', times: 1 });

    // Act
    const res = await startSession(s, jwt);
    const after = await s.db.scan();
    const livekitCalls = s.livekit.calls.length;
    const again = await startSession(s, jwt);

    // Assess
    // The verifier turns a JWKS timeout into 401 unauthenticated (see RELIABILITY.md: 503 would
    // tell the app to retry rather than to sign in again); what must hold is the deadline.
    expect([401, 503]).toContain(res.status);
    expect(res.ms).toBeGreaterThanOrEqual(JWKS_TIMEOUT_MS - 200);
    expect(res.ms).toBeLessThan(JWKS_TIMEOUT_MS + 1500);
    expect(after).toEqual(before);
    expect(livekitCalls).toBe(0);
    expect(res.text).not.toContain(jwt);
    expect(again.status, again.text).toBe(201);
  });
});

describe('deadlines: Secrets Manager hangs at a cold start', () => {
  let hanging: FaultProxy;
  const saved: Record<string, string | undefined> = {};
  const ENV = {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'hardening-test-not-a-real-secret',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
  };
  beforeAll(async () => {
    hanging = await startFaultProxy('http://127.0.0.1:9');
    hanging.fail({ mode: 'hang' });
    ENV.AWS_ENDPOINT_URL_SECRETS_MANAGER = hanging.url;
    for (const [k, v] of Object.entries(ENV)) {
      saved[k] = process.env[k];
      if (v === '') delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await hanging?.stop();
  });

  it('the loader gives up with one ConfigError inside the Lambda init limit', async () => {
    // Prepare
    const env = {
      LIVEKIT_URL: 'wss://livekit.example.test',
      LIVEKIT_CREDENTIALS_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:lk-AbCdEf',
      DISPATCH_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:dk-AbCdEf',
      STORAGE_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:sk-AbCdEf',
      AUTH_JWKS_URL: 'https://issuer.example.test/.well-known/jwks.json',
      AUTH_ISSUER: 'https://issuer.example.test/',
      AUTH_AUDIENCE: 'livekit-mcp-dispatch',
    };

    // Act
    const started = Date.now();
    const outcome = await loadLambdaConfig(env, { dispatchKeys: true }).then(
      () => undefined,
      (err: unknown) => err,
    );
    const ms = Date.now() - started;

    // Assess
    expect(outcome).toBeInstanceOf(ConfigError);
    expect((outcome as ConfigError).message).toContain('could not be read');
    expect(hanging.requests.length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(LAMBDA_INIT_LIMIT_MS);
  }, 30_000);
});
