import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/core/errors.js';
import { contextDefaults, stackPropsFromContext } from '../../infra/context.js';

const REQUIRED = {
  livekitUrl: 'wss://livekit.example.com',
  authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
  authIssuer: 'https://id.example.com/',
  authAudience: 'livekit-mcp-dispatch',
};

function problemsOf(context: Record<string, unknown>): string[] {
  try {
    stackPropsFromContext((key) => context[key]);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected stackPropsFromContext to throw');
}

describe('stackPropsFromContext', () => {
  it('applies the defaults to the four required values', () => {
    // Act
    const props = stackPropsFromContext((key) => REQUIRED[key as keyof typeof REQUIRED]);

    // Assess
    expect(props).toMatchObject({
      livekitUrl: REQUIRED.livekitUrl,
      auth: {
        jwksUrl: REQUIRED.authJwksUrl,
        issuer: REQUIRED.authIssuer,
        audience: REQUIRED.authAudience,
        tenantClaim: 'tenant_id',
      },
      defaultAgentName: 'mcp-agent',
      sessionDispatchMode: 'api',
      webhookRoomPrefix: 'lk-mcp-',
      corsOrigins: [],
      throttles: contextDefaults.throttles,
      functions: contextDefaults.functions,
      logRetention: 30,
      functionsDir: 'dist/functions',
      existingSecrets: {},
    });
    expect(props.alarmTopicArn).toBeUndefined();
  });

  it('reads -c strings and cdk.json values alike', () => {
    // Act
    const props = stackPropsFromContext(
      (key) =>
        ({
          ...REQUIRED,
          webhookRateLimit: '250',
          webhookBurstLimit: 500,
          corsOrigins: ['https://app.example.com'],
          mcpAllowedPorts: '8443, 9443',
          secretsRevision: 20261129,
        })[key],
    );

    // Assess
    expect(props.throttles.webhook).toEqual({ rateLimit: 250, burstLimit: 500 });
    expect(props.corsOrigins).toEqual(['https://app.example.com']);
    expect(props.mcpAllowedPorts).toEqual([8443, 9443]);
    expect(props.secretsRevision).toBe('20261129');
  });

  it('lists every problem at once', () => {
    // Act
    const problems = problemsOf({
      livekitUrl: 'ftp://livekit.example.com',
      authJwksUrl: 'http://id.example.com/jwks',
      sessionDispatchMode: 'push',
      corsOrigins: 'https://app.example.com/path,*',
      adminTimeoutSeconds: 60,
      sessionsRateLimit: 'fast',
      logRetentionDays: 45,
      alarmTopicArn: 'ops-alarms',
      storageKeysSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:partial',
    });

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        'livekitUrl must use wss: or https:',
        'authJwksUrl must use https:',
        'authIssuer is required',
        'authAudience is required',
        'sessionDispatchMode must be one of api, token',
        'corsOrigins entry "https://app.example.com/path" is not an origin like https://app.example.com',
        'corsOrigins entry "*" is not an origin like https://app.example.com',
        'adminTimeoutSeconds must be an integer from 1 to 29',
        'sessionsRateLimit must be an integer from 1 to 10000',
        'alarmTopicArn must be an SNS topic ARN',
        'storageKeysSecretArn must be a complete Secrets Manager secret ARN',
      ]),
    );
    expect(problems.some((p) => p.startsWith('logRetentionDays must be one of'))).toBe(true);
    expect(problems).toHaveLength(12);
  });

  it('refuses at synth what the functions would refuse at cold start', () => {
    // Act
    const problems = problemsOf({ ...REQUIRED, webhookRoomPrefix: 'rooms/with/slashes' });

    // Assess
    expect(problems).toEqual([
      'function environment: WEBHOOK_ROOM_PREFIX must be at most 32 characters [A-Za-z0-9_-]',
    ]);
  });
});
