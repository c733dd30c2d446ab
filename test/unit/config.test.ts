import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig, type RawEnv } from '../../functions/core/config.js';
import { ConfigError, DomainError } from '../../functions/core/errors.js';

const KEY_A = randomBytes(32).toString('base64url');
const KEY_B = randomBytes(32).toString('base64url');
const KEY_C = randomBytes(32).toString('base64url');
const API_SECRET = 'lk-api-secret-DO-NOT-PRINT';

const keyring = (current: string, keys: Record<string, string>) => JSON.stringify({ current, keys });

const VALID: RawEnv = {
  LIVEKIT_URL: 'ws://localhost:7880',
  LIVEKIT_API_KEY: 'devkey',
  LIVEKIT_API_SECRET: API_SECRET,
  DISPATCH_KEYS: keyring('d1', { d1: KEY_A }),
  STORAGE_KEYS: keyring('s1', { s1: KEY_B }),
  AUTH_JWKS_URL: 'http://127.0.0.1:8787/.well-known/jwks.json',
  AUTH_ISSUER: 'http://127.0.0.1:8787',
  AUTH_AUDIENCE: 'livekit-mcp-dispatch',
};

function configError(env: RawEnv, runtime: 'local' | 'lambda' = 'lambda'): ConfigError {
  try {
    loadConfig(env, runtime);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the contract defaults to a minimal valid environment', () => {
    // Act
    const config = loadConfig(VALID, 'lambda');

    // Assess
    expect(config).toMatchObject({
      port: 8787,
      dataDir: '.data',
      tableName: 'livekit-mcp-dispatch',
      dynamodbEndpoint: undefined,
      defaultAgentName: 'mcp-agent',
      sessionDispatchMode: 'api',
      sessionTokenTtlSeconds: 900,
      sessionRateLimitPerMinute: 10,
      metadataTtlSeconds: 7200,
      webhookRoomPrefix: 'lk-mcp-',
      mcpAllowedPorts: [],
      allowInsecureMcpUrls: false,
      corsOrigins: [],
      logLevel: 'INFO',
      auth: { tenantClaim: 'tenant_id' },
    });
    expect(config.dispatchKeys.current).toBe('d1');
    expect(config.dispatchKeys.keys.get('d1')).toEqual(new Uint8Array(Buffer.from(KEY_A, 'base64url')));
    expect(config.storageKeys.current).toBe('s1');
  });

  it('parses the optional values', () => {
    // Act
    const config = loadConfig(
      {
        ...VALID,
        PORT: '9000',
        SESSION_DISPATCH_MODE: 'token',
        SESSION_TOKEN_TTL_SECONDS: '600',
        MCP_ALLOWED_PORTS: '8443, 9443',
        CORS_ORIGINS: 'https://app.example.com,https://admin.example.com',
        ALLOW_INSECURE_MCP_URLS: 'true',
        LOG_LEVEL: 'debug',
      },
      'local',
    );

    // Assess
    expect(config.port).toBe(9000);
    expect(config.sessionDispatchMode).toBe('token');
    expect(config.sessionTokenTtlSeconds).toBe(600);
    expect(config.mcpAllowedPorts).toEqual([8443, 9443]);
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'https://admin.example.com']);
    expect(config.allowInsecureMcpUrls).toBe(true);
    expect(config.logLevel).toBe('DEBUG');
  });

  it('treats empty values as unset', () => {
    const config = loadConfig({ ...VALID, PORT: '', SESSION_DISPATCH_MODE: '' }, 'lambda');
    expect(config.port).toBe(8787);
    expect(config.sessionDispatchMode).toBe('api');
  });

  it('throws one ConfigError listing every problem at once', () => {
    // Prepare
    const env: RawEnv = {
      ...VALID,
      LIVEKIT_API_SECRET: undefined,
      AUTH_ISSUER: '',
      PORT: 'eighty',
      SESSION_DISPATCH_MODE: 'carrier-pigeon',
      METADATA_TTL_SECONDS: '5',
      LIVEKIT_URL: 'ftp://livekit.example.com',
      MCP_ALLOWED_PORTS: '443,99999',
      WEBHOOK_ROOM_PREFIX: 'has space',
      ALLOW_INSECURE_MCP_URLS: 'true',
      DISPATCH_KEYS: keyring('d1', { d1: 'short' }),
    };

    // Act
    const err = configError(env, 'lambda');

    // Assess
    expect(err).toBeInstanceOf(DomainError);
    expect(err.code).toBe('invalid_config');
    expect(err.problems).toEqual(
      expect.arrayContaining([
        'LIVEKIT_API_SECRET is required',
        'AUTH_ISSUER is required',
        'PORT must be an integer from 1 to 65535',
        expect.stringMatching(/^SESSION_DISPATCH_MODE /),
        'METADATA_TTL_SECONDS must be an integer from 60 to 604800',
        'LIVEKIT_URL must use ws: or wss: or http: or https:',
        'MCP_ALLOWED_PORTS entry "99999" is not a port',
        'WEBHOOK_ROOM_PREFIX must be at most 32 characters [A-Za-z0-9_-]',
        'ALLOW_INSECURE_MCP_URLS is a local development switch and is refused in AWS',
        'DISPATCH_KEYS: key "d1" must be 32 bytes, got 3',
      ]),
    );
    expect(err.problems).toHaveLength(10);
    for (const problem of err.problems) expect(err.message).toContain(problem);
  });

  it('still refuses ALLOW_INSECURE_MCP_URLS in Lambda when another variable fails the schema', () => {
    // Act
    const err = configError(
      { ...VALID, LIVEKIT_API_KEY: undefined, ALLOW_INSECURE_MCP_URLS: 'true' },
      'lambda',
    );

    // Assess
    expect(err.problems).toEqual([
      'LIVEKIT_API_KEY is required',
      'ALLOW_INSECURE_MCP_URLS is a local development switch and is refused in AWS',
    ]);
  });

  it('still checks the keyrings when another variable fails the schema', () => {
    // Act
    const err = configError({ ...VALID, PORT: '0', STORAGE_KEYS: keyring('s1', { s1: KEY_A }) });

    // Assess
    expect(err.problems).toEqual([
      'PORT must be an integer from 1 to 65535',
      'DISPATCH_KEYS and STORAGE_KEYS must not share key material (key "s1" appears in both)',
    ]);
  });

  it('reports every missing required variable for an empty environment', () => {
    // Act
    const err = configError({});

    // Assess
    expect(err.problems).toEqual([
      'LIVEKIT_URL is required',
      'LIVEKIT_API_KEY is required',
      'LIVEKIT_API_SECRET is required',
      'DISPATCH_KEYS is required',
      'STORAGE_KEYS is required',
      'AUTH_JWKS_URL is required',
      'AUTH_ISSUER is required',
      'AUTH_AUDIENCE is required',
    ]);
  });

  it('refuses a blank LIVEKIT_API_KEY', () => {
    expect(configError({ ...VALID, LIVEKIT_API_KEY: '   ' }).problems).toEqual([
      'LIVEKIT_API_KEY must not be empty',
    ]);
  });

  it.each([
    ['lambda', 'refused'],
    ['local', 'accepted'],
  ] as const)('runtime %s: ALLOW_INSECURE_MCP_URLS=true is %s', (runtime, outcome) => {
    // Prepare
    const env = { ...VALID, ALLOW_INSECURE_MCP_URLS: 'true' };

    // Act
    const run = () => loadConfig(env, runtime);

    // Assess
    if (outcome === 'refused') expect(run).toThrow('ALLOW_INSECURE_MCP_URLS is a local development switch');
    else expect(run().allowInsecureMcpUrls).toBe(true);
  });

  it('defaults to the Lambda runtime, which refuses ALLOW_INSECURE_MCP_URLS', () => {
    expect(() => loadConfig({ ...VALID, ALLOW_INSECURE_MCP_URLS: '1' })).toThrow(ConfigError);
    expect(loadConfig({ ...VALID, ALLOW_INSECURE_MCP_URLS: 'false' }).allowInsecureMcpUrls).toBe(false);
  });

  it.each([
    ['ws://localhost:7880', 'ws://localhost:7880', 'http://localhost:7880'],
    ['http://localhost:7880/', 'ws://localhost:7880', 'http://localhost:7880'],
    ['wss://proj.livekit.cloud', 'wss://proj.livekit.cloud', 'https://proj.livekit.cloud'],
    ['https://proj.livekit.cloud/', 'wss://proj.livekit.cloud', 'https://proj.livekit.cloud'],
    [
      'https://lk.example.com:8443/base',
      'wss://lk.example.com:8443/base',
      'https://lk.example.com:8443/base',
    ],
    ['WSS://LK.EXAMPLE.COM', 'wss://lk.example.com', 'https://lk.example.com'],
  ])('normalises LIVEKIT_URL %s to ws and http forms', (url, wsUrl, httpUrl) => {
    // Act
    const { livekit } = loadConfig({ ...VALID, LIVEKIT_URL: url });

    // Assess
    expect(livekit.wsUrl).toBe(wsUrl);
    expect(livekit.httpUrl).toBe(httpUrl);
  });

  it.each([
    ['not an absolute URL', '/rtc', 'LIVEKIT_URL must be an absolute URL'],
    ['another scheme', 'ftp://lk.example.com', 'LIVEKIT_URL must use ws: or wss: or http: or https:'],
  ])('refuses a LIVEKIT_URL that is %s', (_name, url, problem) => {
    expect(configError({ ...VALID, LIVEKIT_URL: url }).problems).toEqual([problem]);
  });

  it('never puts secret values in the message', () => {
    // Act
    const err = configError({
      ...VALID,
      PORT: API_SECRET,
      DISPATCH_KEYS: `{"current":"d1","keys":{"d1":"${KEY_C}"`,
      STORAGE_KEYS: keyring('s1', { s1: KEY_A.slice(0, 20) }),
    });

    // Assess
    for (const secret of [API_SECRET, KEY_C, KEY_A, KEY_A.slice(0, 20)]) {
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err)).not.toContain(secret);
    }
  });
});

describe('loadConfig keyrings', () => {
  it.each([
    ['not JSON', '{"current":', 'DISPATCH_KEYS: not valid JSON'],
    ['not an object', '"k1"', 'DISPATCH_KEYS: must be an object {"current","keys"}'],
    [
      'without keys',
      '{"current":"d1","keys":{}}',
      'DISPATCH_KEYS: "keys" must be a non-empty object of key id to base64url key',
    ],
    [
      'with a key that is not base64url',
      keyring('d1', { d1: 'abc+/def=' }),
      'DISPATCH_KEYS: key "d1" is not base64url',
    ],
    [
      'with a key that is not 32 bytes',
      keyring('d1', { d1: randomBytes(16).toString('base64url') }),
      'DISPATCH_KEYS: key "d1" must be 32 bytes, got 16',
    ],
    [
      'with a key id that is not allowed',
      keyring('d1', { d1: KEY_A, 'bad id': KEY_C }),
      'DISPATCH_KEYS: key id "bad id" is not 1-64 characters [A-Za-z0-9._-]',
    ],
    [
      'whose current key is not in keys',
      keyring('d2', { d1: KEY_A }),
      'DISPATCH_KEYS: "current" key "d2" is not in "keys"',
    ],
    [
      'whose current key only exists on Object.prototype',
      keyring('constructor', { d1: KEY_A }),
      'DISPATCH_KEYS: "current" key "constructor" is not in "keys"',
    ],
    [
      'with a bad current key id',
      keyring('', { d1: KEY_A }),
      'DISPATCH_KEYS: "current" must be a key id of 1-64 characters [A-Za-z0-9._-]',
    ],
  ])('refuses a keyring %s', (_name, value, problem) => {
    expect(configError({ ...VALID, DISPATCH_KEYS: value }).problems).toEqual([problem]);
  });

  it('lists the problems of both keyrings together', () => {
    // Act
    const err = configError({
      ...VALID,
      DISPATCH_KEYS: keyring('d9', { d1: KEY_A }),
      STORAGE_KEYS: keyring('s1', { s1: 'AAAA' }),
    });

    // Assess
    expect(err.problems).toEqual([
      'DISPATCH_KEYS: "current" key "d9" is not in "keys"',
      'STORAGE_KEYS: key "s1" must be 32 bytes, got 3',
    ]);
  });

  it('refuses key material shared between DISPATCH_KEYS and STORAGE_KEYS, even under other ids', () => {
    // Act
    const err = configError({
      ...VALID,
      DISPATCH_KEYS: keyring('d2', { d1: KEY_C, d2: KEY_A }),
      STORAGE_KEYS: keyring('s1', { s1: KEY_B, old: KEY_C }),
    });

    // Assess
    expect(err.problems).toEqual([
      'DISPATCH_KEYS and STORAGE_KEYS must not share key material (key "old" appears in both)',
    ]);
    expect(err.message).not.toContain(KEY_C);
  });

  it('accepts rotated keyrings with several keys', () => {
    // Act
    const config = loadConfig({ ...VALID, DISPATCH_KEYS: keyring('d2', { d1: KEY_A, d2: KEY_C }) });

    // Assess
    expect([...config.dispatchKeys.keys.keys()]).toEqual(['d1', 'd2']);
    expect(config.dispatchKeys.current).toBe('d2');
  });
});
