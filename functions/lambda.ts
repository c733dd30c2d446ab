import { createLog } from './adapters/logger.js';
import { loadLambdaConfig } from './adapters/secrets.js';
import { createServices, type Services } from './compose.js';

/**
 * Cold start of one function: configuration from the environment and Secrets Manager, then
 * the services. Invalid configuration throws here, so the function fails to initialise with
 * one message listing every problem. Never generates keys.
 */
export async function lambdaServices(service: 'session' | 'webhook' | 'admin'): Promise<Services> {
  const config = await loadLambdaConfig(process.env, {
    dispatchKeys: service !== 'admin',
    oauthClientKeys: service === 'session',
  });
  const name = `livekit-mcp-dispatch-${service}`;
  return createServices(config, createLog({ service: name, level: config.logLevel }), { service: name });
}
