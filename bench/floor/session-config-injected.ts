import { handle } from 'hono/aws-lambda';
import { createLog } from '../../functions/adapters/logger.js';
import { createServices, withConnections } from '../../functions/compose.js';
import { loadConfig } from '../../functions/core/config.js';
import { createSessionApp } from '../../functions/session/app.js';

/**
 * Explanatory variant (not a budget target): the session handler with its configuration
 * injected from the environment instead of read from Secrets Manager, so the cold start of our
 * code alone can be told apart from the three secret reads.
 */
const env = process.env;
const config = loadConfig(
  {
    ...env,
    LIVEKIT_API_KEY: 'APIbench',
    LIVEKIT_API_SECRET: 'bench-secret-0123456789abcdef0123',
    DISPATCH_KEYS: env.BENCH_DISPATCH_KEYS,
    STORAGE_KEYS: env.BENCH_STORAGE_KEYS,
  },
  'lambda',
);

/** API Gateway HTTP API entry, as functions/session/handler.ts exports it. */
export const handler = handle(
  createSessionApp(
    withConnections(createServices(config, createLog({ service: 'bench', level: config.logLevel }))),
  ),
);
