import { randomBytes } from 'node:crypto';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { loadConfig } from '../functions/core/config.js';
import { ConfigError } from '../functions/core/errors.js';
import type { ThrottleClass } from '../functions/http/routes.js';
import { functionNames } from '../scripts/esbuild-options.js';
import {
  type FunctionName,
  type FunctionSizing,
  type LiveKitMcpDispatchStackProps,
  plainEnvironment,
  type RouteThrottle,
} from './stack.js';

/** Reads one CDK context value (`app.node.tryGetContext`). */
export type ContextGetter = (key: string) => unknown;

/** Defaults of the optional context values (the README's Deploy table lists them). */
export const contextDefaults = {
  authTenantClaim: 'tenant_id',
  defaultAgentName: 'mcp-agent',
  sessionDispatchMode: 'api',
  webhookRoomPrefix: 'lk-mcp-',
  logRetentionDays: 30,
  functionsDir: 'dist/functions',
  throttles: {
    sessions: { rateLimit: 50, burstLimit: 100 },
    webhook: { rateLimit: 200, burstLimit: 400 },
    admin: { rateLimit: 10, burstLimit: 20 },
    // Each live job renews about every CREDENTIALS_REFRESH_SECONDS, and once at its start.
    credentials: { rateLimit: 50, burstLimit: 100 },
  },
  functions: {
    // Session and webhook: a failed CreateDispatch is cleaned up with up to four LiveKit calls of
    // 4 s each (create, ListRooms, ListDispatch, DeleteDispatch), plus store retries; 25 s holds
    // that inside API Gateway's 30 s so cleanup is never cut off mid-way.
    session: { memoryMb: 512, timeoutSeconds: 25 },
    webhook: { memoryMb: 512, timeoutSeconds: 25 },
    admin: { memoryMb: 512, timeoutSeconds: 20 },
    // A renewal that refreshes an OAuth token waits for the authorization server (≤ 10 s).
    credentials: { memoryMb: 512, timeoutSeconds: 20 },
  },
} as const satisfies {
  throttles: Record<ThrottleClass, RouteThrottle>;
  functions: Record<FunctionName, FunctionSizing>;
  [key: string]: unknown;
};

const RETENTIONS = new Set(Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'));
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;

/**
 * Builds the stack props from CDK context (`-c key=value` or cdk.json), validating every value;
 * throws one {@link ConfigError} listing every problem. The resulting function environment is
 * also checked with the functions' own `loadConfig` (throwaway secrets), so a value the
 * functions would refuse at cold start is refused at synth.
 *
 * Keys: `livekitUrl`, `authJwksUrl`, `authIssuer`, `authAudience` (required); `authTenantClaim`,
 * `defaultAgentName`, `sessionDispatchMode`, `webhookRoomPrefix`, `corsOrigins`,
 * `sessionTokenTtlSeconds`, `sessionRateLimitPerMinute`, `metadataTtlSeconds`, `mcpAllowedPorts`,
 * `credentialsRefreshSeconds`, `publicBaseUrl`, `logLevel`, `secretsRevision`, `stackName` (read in app.ts),
 * `{sessions,webhook,admin,credentials}{RateLimit,BurstLimit}`, `{session,webhook,admin,credentials}{MemoryMb,TimeoutSeconds}`,
 * `webhookReservedConcurrency`, `logRetentionDays`, `alarmTopicArn`, `functionsDir`,
 * `livekitCredentialsSecretArn`, `dispatchKeysSecretArn`, `storageKeysSecretArn`,
 * `oauthClientKeysSecretArn`.
 */
export function stackPropsFromContext(get: ContextGetter): LiveKitMcpDispatchStackProps {
  const problems: string[] = [];
  const raw = (key: string): unknown => {
    const v = get(key);
    return v === '' || v === null ? undefined : v;
  };
  const str = (key: string): string | undefined => {
    const v = raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      problems.push(`${key} must be a string`);
      return undefined;
    }
    return v.trim();
  };
  const required = (key: string): string => {
    const v = str(key);
    if (v === undefined && !problems.some((p) => p.startsWith(`${key} `)))
      problems.push(`${key} is required`);
    return v ?? '';
  };
  const int = (key: string, min: number, max: number): number | undefined => {
    const v = raw(key);
    if (v === undefined) return undefined;
    const n =
      typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${key} must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return n;
  };
  const list = (key: string): string[] => {
    const v = raw(key);
    if (v === undefined) return [];
    const items = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : undefined;
    if (!items || items.some((i) => typeof i !== 'string')) {
      problems.push(`${key} must be a comma-separated string or a list of strings`);
      return [];
    }
    return items.map((i: string) => i.trim()).filter((i) => i.length > 0);
  };
  const url = (key: string, schemes: string[], value: string): void => {
    if (!value) return;
    try {
      const u = new URL(value);
      if (!schemes.includes(u.protocol)) problems.push(`${key} must use ${schemes.join(' or ')}`);
    } catch {
      problems.push(`${key} must be an absolute URL`);
    }
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const v = str(key);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      problems.push(`${key} must be one of ${allowed.join(', ')}`);
      return fallback;
    }
    return v as T;
  };
  const arn = (key: string, pattern: RegExp, what: string): string | undefined => {
    const v = str(key);
    if (v !== undefined && !pattern.test(v)) problems.push(`${key} must be ${what}`);
    return v;
  };

  const revision = (): string | undefined => {
    const v = raw('secretsRevision');
    if (v === undefined) return undefined;
    const text = String(v).trim();
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(text))
      problems.push('secretsRevision must be 1-64 characters [A-Za-z0-9._:-]');
    return text;
  };

  const livekitUrl = required('livekitUrl');
  url('livekitUrl', ['wss:', 'https:'], livekitUrl);
  const jwksUrl = required('authJwksUrl');
  url('authJwksUrl', ['https:'], jwksUrl);
  const issuer = required('authIssuer');
  const audience = required('authAudience');

  const publicBaseUrl = str('publicBaseUrl');
  if (publicBaseUrl !== undefined) url('publicBaseUrl', ['https:'], publicBaseUrl);

  const corsOrigins = list('corsOrigins');
  for (const origin of corsOrigins) {
    let ok = false;
    try {
      const u = new URL(origin);
      ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === origin;
    } catch {}
    if (!ok) problems.push(`corsOrigins entry "${origin}" is not an origin like https://app.example.com`);
  }

  const mcpAllowedPorts: number[] = [];
  for (const p of list('mcpAllowedPorts')) {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) problems.push(`mcpAllowedPorts entry "${p}" is not a port`);
    else mcpAllowedPorts.push(n);
  }

  const throttle = (route: ThrottleClass): RouteThrottle => ({
    rateLimit: int(`${route}RateLimit`, 1, 10_000) ?? contextDefaults.throttles[route].rateLimit,
    burstLimit: int(`${route}BurstLimit`, 1, 5_000) ?? contextDefaults.throttles[route].burstLimit,
  });
  const sizing = (name: FunctionName): FunctionSizing => ({
    memoryMb: int(`${name}MemoryMb`, 128, 10_240) ?? contextDefaults.functions[name].memoryMb,
    // HTTP API gives an integration at most 30 s.
    timeoutSeconds: int(`${name}TimeoutSeconds`, 1, 29) ?? contextDefaults.functions[name].timeoutSeconds,
  });

  const retention = int('logRetentionDays', 1, 3653) ?? contextDefaults.logRetentionDays;
  if (!RETENTIONS.has(retention)) {
    problems.push(`logRetentionDays must be one of ${[...RETENTIONS].sort((a, b) => a - b).join(', ')}`);
  }

  const props: LiveKitMcpDispatchStackProps = {
    description: 'livekit-mcp-dispatch: per-user MCP servers for LiveKit agents',
    livekitUrl,
    auth: {
      jwksUrl,
      issuer,
      audience,
      tenantClaim: str('authTenantClaim') ?? contextDefaults.authTenantClaim,
    },
    defaultAgentName: str('defaultAgentName') ?? contextDefaults.defaultAgentName,
    sessionDispatchMode: oneOf(
      'sessionDispatchMode',
      ['api', 'token'] as const,
      contextDefaults.sessionDispatchMode,
    ),
    webhookRoomPrefix: str('webhookRoomPrefix') ?? contextDefaults.webhookRoomPrefix,
    corsOrigins,
    ...(publicBaseUrl === undefined ? {} : { publicBaseUrl }),
    sessionTokenTtlSeconds: int('sessionTokenTtlSeconds', 60, 86_400),
    sessionRateLimitPerMinute: int('sessionRateLimitPerMinute', 1, 10_000),
    metadataTtlSeconds: int('metadataTtlSeconds', 60, 7 * 86_400),
    credentialsRefreshSeconds: int('credentialsRefreshSeconds', 60, 86_400),
    mcpAllowedPorts,
    secretsRevision: revision(),
    logLevel: oneOf('logLevel', ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const, 'INFO'),
    throttles: {
      sessions: throttle('sessions'),
      webhook: throttle('webhook'),
      admin: throttle('admin'),
      credentials: throttle('credentials'),
    },
    functions: Object.fromEntries(functionNames.map((n) => [n, sizing(n)])) as Record<
      FunctionName,
      FunctionSizing
    >,
    webhookReservedConcurrency: int('webhookReservedConcurrency', 1, 10_000),
    logRetention: retention as RetentionDays,
    functionsDir: str('functionsDir') ?? contextDefaults.functionsDir,
    alarmTopicArn: arn('alarmTopicArn', /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+$/, 'an SNS topic ARN'),
    existingSecrets: {
      livekitCredentialsArn: arn(
        'livekitCredentialsSecretArn',
        SECRET_ARN,
        'a complete Secrets Manager secret ARN',
      ),
      dispatchKeysArn: arn('dispatchKeysSecretArn', SECRET_ARN, 'a complete Secrets Manager secret ARN'),
      storageKeysArn: arn('storageKeysSecretArn', SECRET_ARN, 'a complete Secrets Manager secret ARN'),
      oauthClientKeysArn: arn(
        'oauthClientKeysSecretArn',
        SECRET_ARN,
        'a complete Secrets Manager secret ARN',
      ),
    },
  };
  // Only once the context itself is sound, so one problem is not reported twice in two wordings.
  if (problems.length === 0) problems.push(...functionEnvironmentProblems(props));
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return props;
}

/** What the functions' own config loader would refuse in the environment the stack gives them. */
function functionEnvironmentProblems(props: LiveKitMcpDispatchStackProps): string[] {
  // Throwaway values in place of the Secrets Manager ones; they never leave this process.
  const ring = () => {
    const key = randomBytes(32).toString('base64url');
    return JSON.stringify({ current: 'k', keys: { k: key } });
  };
  try {
    loadConfig(
      {
        ...plainEnvironment(props),
        TABLE_NAME: 'synth-check',
        LIVEKIT_API_KEY: 'synth-check',
        LIVEKIT_API_SECRET: 'synth-check',
        DISPATCH_KEYS: ring(),
        STORAGE_KEYS: ring(),
      },
      'lambda',
    );
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `function environment: ${p}`);
    throw error;
  }
}
