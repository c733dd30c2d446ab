import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';

/**
 * Explanatory variant (not a budget target): the floor plus the three GetSecretValue reads the
 * functions make at a cold start, with the reader they use (Powertools parameters).
 */
export { handler } from './handler.js';

const provider = new SecretsProvider({
  clientConfig: {
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  },
});
await Promise.all(
  ['LIVEKIT_CREDENTIALS_SECRET_ARN', 'DISPATCH_KEYS_SECRET_ARN', 'STORAGE_KEYS_SECRET_ARN'].map((name) =>
    provider.get(process.env[name] ?? '', { maxAge: 300 }),
  ),
);
