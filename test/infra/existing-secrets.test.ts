import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stackPropsFromContext } from '../../infra/context.js';
import { LiveKitMcpDispatchStack } from '../../infra/stack.js';
import { functionNames } from '../../scripts/esbuild-options.js';

const functionsDir = mkdtempSync(join(tmpdir(), 'lkmcp-infra-existing-'));
for (const name of functionNames) {
  mkdirSync(join(functionsDir, name));
  writeFileSync(
    join(functionsDir, name, 'index.mjs'),
    'export const handler = async () => ({ statusCode: 204 });\n',
  );
}

const ARN = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
const CONTEXT: Record<string, unknown> = {
  livekitUrl: 'https://livekit.example.com',
  authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
  authIssuer: 'https://id.example.com/',
  authAudience: 'livekit-mcp-dispatch',
  livekitCredentialsSecretArn: ARN('livekit'),
  dispatchKeysSecretArn: ARN('dispatch-keys'),
  storageKeysSecretArn: ARN('storage-keys'),
  oauthClientKeysSecretArn: ARN('oauth-client-keys'),
  functionsDir,
};

const app = new App();
const stack = new LiveKitMcpDispatchStack(
  app,
  'Restored',
  stackPropsFromContext((key) => CONTEXT[key]),
);
let template: Template;

beforeAll(() => {
  template = Template.fromStack(stack);
});

afterAll(() => rmSync(functionsDir, { recursive: true, force: true }));

describe('LiveKitMcpDispatchStack with existing secrets', () => {
  it('creates no secret and no seeder', () => {
    // Assess
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    template.resourceCountIs('Custom::SecretSeed', 0);
    template.resourceCountIs('AWS::Lambda::Function', 4);
  });

  it('passes and grants the given ARNs', () => {
    // Prepare
    const session =
      template.toJSON().Resources[
        stack.getLogicalId(stack.functions.session.function.node.defaultChild as CfnElement)
      ];

    // Assess
    expect(session.Properties.Environment.Variables).toMatchObject({
      LIVEKIT_CREDENTIALS_SECRET_ARN: ARN('livekit'),
      DISPATCH_KEYS_SECRET_ARN: ARN('dispatch-keys'),
      STORAGE_KEYS_SECRET_ARN: ARN('storage-keys'),
    });
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: [
          {
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Effect: 'Allow',
            Resource: ARN('dispatch-keys'),
          },
        ],
      },
    });
  });

  it('passes cdk-nag with no secret rotation acknowledgement left', () => {
    // Act
    const report = new AwsSolutionsChecks().validateScope(app);

    // Assess
    expect(report.violations).toEqual([]);
  });
});
