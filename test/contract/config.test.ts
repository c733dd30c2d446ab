import { describe, expect, it } from 'vitest';
import { loadLambdaConfig } from '../../functions/adapters/secrets.js';
import { loadConfig } from '../../functions/core/config.js';
import { ConfigError } from '../../functions/core/errors.js';

// CONTRACT §2: "Invalid or missing configuration fails at start with one message listing every problem."

const keyring = (fill: number) =>
  JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, fill).toString('base64url') } });

const plain = {
  LIVEKIT_URL: 'wss://livekit.example.test',
  AUTH_JWKS_URL: 'https://issuer.example.test/.well-known/jwks.json',
  AUTH_ISSUER: 'https://issuer.example.test/',
  AUTH_AUDIENCE: 'livekit-mcp-dispatch',
};

const arns = {
  LIVEKIT_CREDENTIALS_SECRET_ARN: 'arn:livekit',
  DISPATCH_KEYS_SECRET_ARN: 'arn:dispatch',
  STORAGE_KEYS_SECRET_ARN: 'arn:storage',
};

function provider(values: Record<string, string>) {
  return {
    get: async (arn: string) => {
      if (!(arn in values)) throw new Error('ResourceNotFoundException');
      return values[arn];
    },
  } as never;
}

async function failureOf(promise: Promise<unknown>): Promise<ConfigError> {
  const outcome = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ConfigError);
  return outcome as ConfigError;
}

describe('Lambda configuration (CONTRACT §2)', () => {
  it('lists a missing secret ARN together with every invalid plain setting', async () => {
    // Prepare
    const env = { ...plain, SESSION_DISPATCH_MODE: 'bogus', SESSION_TOKEN_TTL_SECONDS: 'soon' };

    // Act
    const failure = await failureOf(loadLambdaConfig(env, { dispatchKeys: true }, provider({})));

    // Assess
    expect(failure.problems).toEqual(
      expect.arrayContaining([
        'STORAGE_KEYS_SECRET_ARN is required',
        'SESSION_DISPATCH_MODE must be one of api, token',
        expect.stringMatching(/^SESSION_TOKEN_TTL_SECONDS /),
      ]),
    );
    expect(failure.message).toContain('SESSION_TOKEN_TTL_SECONDS');
  });

  it('lists an unreadable secret together with the other problems', async () => {
    // Prepare
    const env = { ...plain, ...arns, MCP_ALLOWED_PORTS: 'x' };
    const values = {
      'arn:livekit': JSON.stringify({ api_key: 'k', api_secret: 's' }),
      'arn:dispatch': keyring(1),
    };

    // Act
    const failure = await failureOf(loadLambdaConfig(env, { dispatchKeys: true }, provider(values)));

    // Assess
    expect(failure.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^STORAGE_KEYS_SECRET_ARN: could not be read/),
        'MCP_ALLOWED_PORTS entry "x" is not a port',
      ]),
    );
  });

  it('starts with readable secrets and valid settings', async () => {
    // Prepare
    const env = { ...plain, ...arns };
    const values = {
      'arn:livekit': JSON.stringify({ api_key: 'k', api_secret: 's' }),
      'arn:dispatch': keyring(1),
      'arn:storage': keyring(2),
    };

    // Act
    const config = await loadLambdaConfig(env, { dispatchKeys: true }, provider(values));

    // Assess
    expect(config.sessionDispatchMode).toBe('api');
    expect(config.livekit.apiKey).toBe('k');
  });
});

describe('configuration messages (CONTRACT §2)', () => {
  it('names the allowed values of an enumerated setting', () => {
    // Prepare
    const env = {
      ...plain,
      STORAGE_KEYS: keyring(2),
      DISPATCH_KEYS: keyring(1),
      LIVEKIT_API_KEY: 'k',
      LIVEKIT_API_SECRET: 's',
    };

    // Act
    const failure = (() => {
      try {
        loadConfig({ ...env, SESSION_DISPATCH_MODE: 'webhook', LOG_LEVEL: 'loud' }, 'local');
      } catch (err) {
        return err as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();

    // Assess
    expect(failure.problems).toContain('SESSION_DISPATCH_MODE must be one of api, token');
    expect(failure.problems.some((p) => p.startsWith('LOG_LEVEL must be one of'))).toBe(true);
  });
});
