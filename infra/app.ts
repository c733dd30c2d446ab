import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../functions/core/errors.js';
import { functionNames } from '../scripts/esbuild-options.js';
import { stackPropsFromContext } from './context.js';
import { LiveKitMcpDispatchStack } from './stack.js';

/**
 * The CDK app: the stack configured from CDK context (`-c key=value` or cdk.json), checked by
 * cdk-nag's AwsSolutions pack at synth (an unacknowledged finding fails `cdk synth|deploy`).
 * Needs no AWS account: without `CDK_DEFAULT_ACCOUNT`/`CDK_DEFAULT_REGION` the stack is
 * environment-agnostic. Throws a ConfigError listing every bad context value.
 */
export function createApp(app: App = new App()): { app: App; stack: LiveKitMcpDispatchStack } {
  const props = stackPropsFromContext((key) => app.node.tryGetContext(key));
  const missing = functionNames.filter((name) => !existsSync(join(props.functionsDir, name, 'index.mjs')));
  if (missing.length > 0) {
    throw new Error(
      `No bundle for ${missing.join(', ')} under ${props.functionsDir}: run \`npm run build\` first`,
    );
  }
  const stackName: unknown = app.node.tryGetContext('stackName') ?? 'LiveKitMcpDispatch';
  if (typeof stackName !== 'string' || !/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    throw new ConfigError(['stackName must be 1-128 characters [A-Za-z0-9-], starting with a letter']);
  }
  const stack = new LiveKitMcpDispatchStack(app, stackName, {
    ...props,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
