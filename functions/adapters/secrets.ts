import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { type Config, loadConfig, type RawEnv } from '../core/config.js';
import { ConfigError } from '../core/errors.js';

/** Secret ARNs the stack passes to functions (docs/api.md §2); values never come from plain env. */
const SECRET_ARNS = [
  'LIVEKIT_CREDENTIALS_SECRET_ARN',
  'DISPATCH_KEYS_SECRET_ARN',
  'STORAGE_KEYS_SECRET_ARN',
] as const;

/** Which secrets a function reads; the admin function never sees the dispatch keyring. */
export interface SecretNeeds {
  dispatchKeys: boolean;
  /** LiveKit credentials (default true); the credentials function never calls LiveKit. */
  livekit?: boolean;
  /** Signs OAuth client assertions: code exchange, refresh, revocation (`OAUTH_CLIENT_KEYS_SECRET_ARN`, docs/api.md §8). */
  oauthClientKeys?: boolean;
}

/**
 * Loads the configuration at a Lambda cold start: plain settings from the environment,
 * secrets from Secrets Manager (Powertools, cached). Plain-env secret values are refused so a
 * misconfigured stack cannot silently ship keys in its template. Throws one ConfigError.
 */
export async function loadLambdaConfig(
  env: RawEnv,
  needs: SecretNeeds,
  // Without throwOnRequestTimeout the SDK only warns when requestTimeout passes, and a hung call
  // would eat the whole cold start; 3 attempts × 2 s stay inside Lambda's 10 s init limit.
  provider: Pick<SecretsProvider, 'get'> = new SecretsProvider({
    clientConfig: {
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    },
  }),
): Promise<Config> {
  const problems: string[] = [];
  const needsLiveKit = needs.livekit ?? true;
  for (const name of ['LIVEKIT_API_SECRET', 'DISPATCH_KEYS', 'STORAGE_KEYS', 'OAUTH_CLIENT_KEYS']) {
    if (env[name]) problems.push(`${name} must come from Secrets Manager, not the environment`);
  }
  for (const name of SECRET_ARNS) {
    if (name === 'DISPATCH_KEYS_SECRET_ARN' && !needs.dispatchKeys) continue;
    if (name === 'LIVEKIT_CREDENTIALS_SECRET_ARN' && !needsLiveKit) continue;
    if (!env[name]) problems.push(`${name} is required`);
  }
  if (needs.oauthClientKeys && !env.OAUTH_CLIENT_KEYS_SECRET_ARN) {
    problems.push('OAUTH_CLIENT_KEYS_SECRET_ARN is required');
  }
  if (problems.length > 0) throw new ConfigError([...problems, ...plainSettingProblems(env, needsLiveKit)]);

  const read = async (arn: string | undefined, label: string): Promise<string | undefined> => {
    if (!arn) return undefined;
    try {
      const value = await provider.get(arn, { maxAge: 300 });
      if (typeof value !== 'string') throw new Error('not a string secret');
      return value;
    } catch (cause) {
      problems.push(`${label}: could not be read (${cause instanceof Error ? cause.name : 'error'})`);
      return undefined;
    }
  };
  const [livekit, dispatch, storage, clientKeys] = await Promise.all([
    needsLiveKit ? read(env.LIVEKIT_CREDENTIALS_SECRET_ARN, 'LIVEKIT_CREDENTIALS_SECRET_ARN') : undefined,
    needs.dispatchKeys ? read(env.DISPATCH_KEYS_SECRET_ARN, 'DISPATCH_KEYS_SECRET_ARN') : undefined,
    read(env.STORAGE_KEYS_SECRET_ARN, 'STORAGE_KEYS_SECRET_ARN'),
    needs.oauthClientKeys
      ? read(env.OAUTH_CLIENT_KEYS_SECRET_ARN, 'OAUTH_CLIENT_KEYS_SECRET_ARN')
      : undefined,
  ]);
  let creds: { api_key?: unknown; api_secret?: unknown } = {};
  if (livekit !== undefined) {
    try {
      creds = JSON.parse(livekit);
    } catch {
      problems.push('LIVEKIT_CREDENTIALS_SECRET_ARN: secret is not JSON {"api_key","api_secret"}');
    }
    if (typeof creds.api_key !== 'string' || typeof creds.api_secret !== 'string') {
      problems.push('LIVEKIT_CREDENTIALS_SECRET_ARN: secret must hold string "api_key" and "api_secret"');
    }
  }
  if (problems.length > 0) throw new ConfigError([...problems, ...plainSettingProblems(env, needsLiveKit)]);
  return loadConfig(
    {
      ...env,
      LIVEKIT_API_KEY: creds.api_key as string | undefined,
      LIVEKIT_API_SECRET: creds.api_secret as string | undefined,
      DISPATCH_KEYS: dispatch,
      STORAGE_KEYS: storage,
      OAUTH_CLIENT_KEYS: clientKeys,
    },
    'lambda',
    { needsDispatchKeys: needs.dispatchKeys, needsLiveKit },
  );
}

/**
 * Problems of the plain settings (everything but the secrets), so that a start refused for a
 * secret still lists every problem in its one message (docs/api.md §2).
 */
function plainSettingProblems(env: RawEnv, needsLiveKit = true): string[] {
  try {
    loadConfig(
      {
        ...env,
        LIVEKIT_API_KEY: 'unchecked',
        LIVEKIT_API_SECRET: 'unchecked',
        DISPATCH_KEYS: undefined,
        STORAGE_KEYS: undefined,
      },
      'lambda',
      { needsDispatchKeys: false, needsLiveKit },
    );
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The storage keyring is a secret; its absence is already reported above.
    return err.problems.filter((p) => !p.startsWith('STORAGE_KEYS '));
  }
}
