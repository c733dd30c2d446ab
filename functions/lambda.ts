import { createLog } from './adapters/logger.js';
import { loadLambdaConfig } from './adapters/secrets.js';
import { createServices, type Services } from './compose.js';
import { ConfigError } from './core/errors.js';

/**
 * Cold start of one function: configuration from the environment and Secrets Manager, then
 * the services. Invalid configuration throws here, so the function fails to initialise with
 * one message listing every problem. Never generates keys.
 */
export async function lambdaServices(
  service: 'session' | 'webhook' | 'admin' | 'credentials',
): Promise<Services> {
  // The admin function seals nothing for workers; the credentials function never calls LiveKit.
  // Every function may sign a private_key_jwt client assertion: the session function at the code
  // exchange, the webhook and credentials functions at a refresh, the admin function at a revocation.
  const config = await loadLambdaConfig(process.env, {
    dispatchKeys: service !== 'admin',
    livekit: service !== 'credentials',
    oauthClientKeys: true,
  });
  // The sealed refresh_url, the OAuth callback and the client metadata documents are under it
  // (docs/api.md §8, §9): a Lambda never falls back to the local default. The stack always sets it.
  if (service !== 'admin' && !process.env.PUBLIC_BASE_URL) {
    throw new ConfigError([
      'PUBLIC_BASE_URL is required (the refresh_url and the OAuth callback are under it)',
    ]);
  }
  const name = `livekit-mcp-dispatch-${service}`;
  return createServices(config, createLog({ service: name, level: config.logLevel }), { service: name });
}
