import { ConfigError } from '../functions/core/errors.js';
import { createApp } from './app.js';

// The `cdk` entry point (cdk.json): bad context is one readable message, not a stack trace.
try {
  createApp();
} catch (error) {
  if (!(error instanceof ConfigError) && !(error instanceof Error && error.message.startsWith('No bundle')))
    throw error;
  console.error(error.message);
  process.exitCode = 1;
}
