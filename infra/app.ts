import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { functionNames } from '../scripts/esbuild-options.js';
import { stackPropsFromContext } from './context.js';
import { LiveKitMcpDispatchStack } from './stack.js';

/** `cdk synth|deploy`: the stack from CDK context, checked by cdk-nag (AwsSolutions). Works offline. */
const app = new App();
const props = stackPropsFromContext((key) => app.node.tryGetContext(key));
const missing = functionNames.filter((name) => !existsSync(join(props.functionsDir, name, 'index.mjs')));
if (missing.length > 0) {
  throw new Error(
    `No bundle for ${missing.join(', ')} under ${props.functionsDir}: run \`npm run build\` first`,
  );
}
new LiveKitMcpDispatchStack(app, app.node.tryGetContext('stackName') ?? 'LiveKitMcpDispatch', {
  ...props,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
