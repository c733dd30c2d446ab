import {
  enum as enumOf,
  type infer as Infer,
  object,
  optional,
  pipe,
  safeParse,
  string,
  transform,
} from 'zod/mini';
import { ConfigError } from './errors.js';
import { type Keyring, parseKeyring, sharedKeyMaterial } from './keyring.js';
import { type ClientKeyring, parseClientKeyring } from './oauth/client-keys.js';

/** The raw environment as strings (process.env, or env merged with Secrets Manager values). */
export type RawEnv = Record<string, string | undefined>;

const intFrom = (min: number, max: number) =>
  pipe(
    string(),
    transform((v, ctx) => {
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
        ctx.issues.push({ code: 'custom', message: `must be an integer from ${min} to ${max}`, input: v });
      }
      return n;
    }),
  );

const boolFrom = pipe(
  string(),
  transform((v, ctx) => {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(s)) return true;
    if (['false', '0', 'no', ''].includes(s)) return false;
    ctx.issues.push({ code: 'custom', message: 'must be true or false', input: v });
    return false;
  }),
);

const listFrom = pipe(
  string(),
  transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  ),
);

const urlWithSchemes = (schemes: string[]) =>
  pipe(
    string(),
    transform((v, ctx) => {
      try {
        const u = new URL(v);
        if (!schemes.includes(u.protocol)) {
          ctx.issues.push({ code: 'custom', message: `must use ${schemes.join(' or ')}`, input: v });
        }
      } catch {
        ctx.issues.push({ code: 'custom', message: 'must be an absolute URL', input: v });
      }
      return v;
    }),
  );

const envSchema = object({
  PORT: optional(intFrom(1, 65535)),
  DATA_DIR: optional(string()),
  LIVEKIT_URL: optional(urlWithSchemes(['ws:', 'wss:', 'http:', 'https:'])),
  LIVEKIT_API_KEY: optional(
    pipe(
      string(),
      transform((v) => v.trim()),
    ),
  ),
  LIVEKIT_API_SECRET: optional(string()),
  TABLE_NAME: optional(string()),
  DYNAMODB_ENDPOINT: optional(urlWithSchemes(['http:', 'https:'])),
  DISPATCH_KEYS: optional(string()),
  STORAGE_KEYS: string(),
  AUTH_JWKS_URL: urlWithSchemes(['http:', 'https:']),
  AUTH_ISSUER: string(),
  AUTH_AUDIENCE: string(),
  AUTH_TENANT_CLAIM: optional(string()),
  DEFAULT_AGENT_NAME: optional(string()),
  SESSION_DISPATCH_MODE: optional(enumOf(['api', 'token'])),
  SESSION_TOKEN_TTL_SECONDS: optional(intFrom(60, 86_400)),
  SESSION_RATE_LIMIT_PER_MINUTE: optional(intFrom(1, 10_000)),
  METADATA_TTL_SECONDS: optional(intFrom(60, 7 * 86_400)),
  WEBHOOK_ROOM_PREFIX: optional(string()),
  MCP_ALLOWED_PORTS: optional(listFrom),
  ALLOW_INSECURE_MCP_URLS: optional(boolFrom),
  CORS_ORIGINS: optional(listFrom),
  PUBLIC_BASE_URL: optional(urlWithSchemes(['http:', 'https:'])),
  CREDENTIALS_REFRESH_SECONDS: optional(intFrom(60, 86_400)),
  OAUTH_STATE_TTL_SECONDS: optional(intFrom(60, 3600)),
  MCP_TOKEN_MIN_TTL_SECONDS: optional(intFrom(0, 3600)),
  OAUTH_CLIENT_KEYS: optional(string()),
  LOG_LEVEL: optional(enumOf(['DEBUG', 'INFO', 'WARN', 'ERROR', 'debug', 'info', 'warn', 'error'])),
});

type ParsedEnv = Infer<typeof envSchema>;

/** The validated configuration every function is composed from. */
export interface Config {
  port: number;
  dataDir: string;
  livekit: { wsUrl: string; httpUrl: string; apiKey: string; apiSecret: string };
  tableName: string;
  dynamodbEndpoint: string | undefined;
  dispatchKeys: Keyring;
  storageKeys: Keyring;
  auth: { jwksUrl: string; issuer: string; audience: string; tenantClaim: string };
  defaultAgentName: string;
  sessionDispatchMode: 'api' | 'token';
  sessionTokenTtlSeconds: number;
  sessionRateLimitPerMinute: number;
  metadataTtlSeconds: number;
  webhookRoomPrefix: string;
  mcpAllowedPorts: number[];
  allowInsecureMcpUrls: boolean;
  corsOrigins: string[];
  /**
   * `PUBLIC_BASE_URL` without a trailing `/` (`http://localhost:<PORT>` by default): the OAuth
   * callback, the client metadata documents (docs/api.md §8) and the `refresh_url` sealed into
   * metadata (`<it>/v1/worker/credentials`, §9).
   */
  publicBaseUrl: string;
  /** `CREDENTIALS_REFRESH_SECONDS`: how long sealed credentials are good for before a renewal (§9). */
  credentialsRefreshSeconds: number;
  oauthStateTtlSeconds: number;
  mcpTokenMinTtlSeconds: number;
  /** `OAUTH_CLIENT_KEYS`: signs `private_key_jwt` assertions; undefined where not given. */
  oauthClientKeys: ClientKeyring | undefined;
  logLevel: string;
}

/** The path of the worker credentials endpoint (docs/api.md §9). */
export const WORKER_CREDENTIALS_PATH = '/v1/worker/credentials';

/** The `refresh_url` sealed into metadata and expected as a worker assertion's `aud`, if known. */
export function refreshUrlOf(config: { publicBaseUrl?: string | undefined }): string | undefined {
  return config.publicBaseUrl === undefined ? undefined : `${config.publicBaseUrl}${WORKER_CREDENTIALS_PATH}`;
}

/** Where the configuration is loaded: Lambda refuses dev-only switches. */
export type Runtime = 'local' | 'lambda';

/**
 * Parses the environment once. Throws one {@link ConfigError} listing every problem.
 * Values of secrets never appear in the messages.
 */
export function loadConfig(
  env: RawEnv,
  runtime: Runtime = 'lambda',
  options: { needsDispatchKeys?: boolean; needsLiveKit?: boolean } = {},
): Config {
  const needsDispatchKeys = options.needsDispatchKeys ?? true;
  // The credentials function (docs/api.md §9) never calls LiveKit and holds no LiveKit credentials.
  const needsLiveKit = options.needsLiveKit ?? true;
  const livekitVariables = ['LIVEKIT_URL', 'LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET'];
  const problems: string[] = [];
  const blanked: RawEnv = {};
  for (const [k, v] of Object.entries(env)) blanked[k] = v === '' ? undefined : v;
  // Each variable is parsed on its own so that one bad value neither hides the others' problems
  // nor skips the cross-checks below (e.g. ALLOW_INSECURE_MCP_URLS in Lambda).
  const parsed: Partial<ParsedEnv> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    if (name === 'DISPATCH_KEYS' && needsDispatchKeys && blanked[name] === undefined) {
      problems.push('DISPATCH_KEYS is required');
      continue;
    }
    if (livekitVariables.includes(name) && needsLiveKit && blanked[name] === undefined) {
      problems.push(`${name} is required`);
      continue;
    }
    const result = safeParse(schema, blanked[name]);
    if (result.success) {
      if (result.data !== undefined) (parsed as Record<string, unknown>)[name] = result.data;
      continue;
    }
    for (const issue of result.error.issues) {
      // zod/mini ships no messages ("Invalid input"): name the allowed values of an enum.
      const message =
        blanked[name] === undefined
          ? 'is required'
          : issue.code === 'invalid_value'
            ? `must be one of ${issue.values.join(', ')}`
            : issue.message;
      problems.push(`${[name, ...issue.path].join('.')} ${message}`);
    }
  }

  const dispatch = env.DISPATCH_KEYS ? parseKeyring('DISPATCH_KEYS', env.DISPATCH_KEYS) : { problems: [] };
  const storage = env.STORAGE_KEYS ? parseKeyring('STORAGE_KEYS', env.STORAGE_KEYS) : { problems: [] };
  problems.push(...dispatch.problems, ...storage.problems);
  if (dispatch.keyring && storage.keyring) {
    problems.push(...sharedKeyMaterial(dispatch.keyring, storage.keyring, ['DISPATCH_KEYS', 'STORAGE_KEYS']));
  }

  const ports: number[] = [];
  for (const p of parsed.MCP_ALLOWED_PORTS ?? []) {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) problems.push(`MCP_ALLOWED_PORTS entry "${p}" is not a port`);
    else ports.push(n);
  }
  if (runtime === 'lambda' && parsed.ALLOW_INSECURE_MCP_URLS === true) {
    problems.push('ALLOW_INSECURE_MCP_URLS is a local development switch and is refused in AWS');
  }
  const prefix = parsed.WEBHOOK_ROOM_PREFIX ?? 'lk-mcp-';
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(prefix)) {
    problems.push('WEBHOOK_ROOM_PREFIX must be at most 32 characters [A-Za-z0-9_-]');
  }
  if (parsed.LIVEKIT_API_KEY !== undefined && parsed.LIVEKIT_API_KEY.length === 0) {
    problems.push('LIVEKIT_API_KEY must not be empty');
  }

  let oauthClientKeys: ClientKeyring | undefined;
  if (blanked.OAUTH_CLIENT_KEYS !== undefined) {
    try {
      oauthClientKeys = parseClientKeyring(blanked.OAUTH_CLIENT_KEYS);
    } catch (error) {
      problems.push(...(error instanceof ConfigError ? error.problems : ['OAUTH_CLIENT_KEYS is invalid']));
    }
  }
  if (
    runtime === 'lambda' &&
    parsed.PUBLIC_BASE_URL !== undefined &&
    !parsed.PUBLIC_BASE_URL.startsWith('https://')
  ) {
    problems.push('PUBLIC_BASE_URL must use https: in AWS');
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const p = parsed as ParsedEnv;
  const lk = new URL(p.LIVEKIT_URL ?? 'ws://livekit.invalid');
  const port = p.PORT ?? 8787;
  const secure = lk.protocol === 'wss:' || lk.protocol === 'https:';
  const hostPath = `${lk.host}${lk.pathname === '/' ? '' : lk.pathname}`;
  return {
    port,
    dataDir: p.DATA_DIR ?? '.data',
    livekit: {
      wsUrl: `${secure ? 'wss' : 'ws'}://${hostPath}`,
      httpUrl: `${secure ? 'https' : 'http'}://${hostPath}`,
      apiKey: p.LIVEKIT_API_KEY ?? '',
      apiSecret: p.LIVEKIT_API_SECRET ?? '',
    },
    tableName: p.TABLE_NAME ?? 'livekit-mcp-dispatch',
    dynamodbEndpoint: p.DYNAMODB_ENDPOINT,
    // A function that seals nothing for workers (admin) holds an empty ring: it cannot seal.
    dispatchKeys: dispatch.keyring ?? { current: '', keys: new Map() },
    storageKeys: storage.keyring!,
    auth: {
      jwksUrl: p.AUTH_JWKS_URL,
      issuer: p.AUTH_ISSUER,
      audience: p.AUTH_AUDIENCE,
      tenantClaim: p.AUTH_TENANT_CLAIM ?? 'tenant_id',
    },
    defaultAgentName: p.DEFAULT_AGENT_NAME ?? 'mcp-agent',
    sessionDispatchMode: p.SESSION_DISPATCH_MODE ?? 'api',
    sessionTokenTtlSeconds: p.SESSION_TOKEN_TTL_SECONDS ?? 900,
    sessionRateLimitPerMinute: p.SESSION_RATE_LIMIT_PER_MINUTE ?? 10,
    metadataTtlSeconds: p.METADATA_TTL_SECONDS ?? 7200,
    webhookRoomPrefix: prefix,
    mcpAllowedPorts: ports,
    allowInsecureMcpUrls: p.ALLOW_INSECURE_MCP_URLS ?? false,
    corsOrigins: p.CORS_ORIGINS ?? [],
    publicBaseUrl: (p.PUBLIC_BASE_URL ?? `http://localhost:${p.PORT ?? 8787}`).replace(/\/+$/, ''),
    credentialsRefreshSeconds: p.CREDENTIALS_REFRESH_SECONDS ?? 900,
    oauthStateTtlSeconds: p.OAUTH_STATE_TTL_SECONDS ?? 600,
    mcpTokenMinTtlSeconds: p.MCP_TOKEN_MIN_TTL_SECONDS ?? 300,
    oauthClientKeys,
    logLevel: (p.LOG_LEVEL ?? 'INFO').toUpperCase(),
  };
}
