import { createSecretsManagerReader } from '../../functions/adapters/secrets-manager.js';

/**
 * Explanatory variant (not a budget target): the floor plus the three GetSecretValue reads the
 * functions make at a cold start, with the reader they use.
 */
export { handler } from './handler.js';

const reader = createSecretsManagerReader({ env: process.env });
await Promise.all(
  ['LIVEKIT_CREDENTIALS_SECRET_ARN', 'DISPATCH_KEYS_SECRET_ARN', 'STORAGE_KEYS_SECRET_ARN'].map((name) =>
    reader.get(process.env[name] ?? ''),
  ),
);
