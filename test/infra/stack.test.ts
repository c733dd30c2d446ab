import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableSchema } from '../../functions/adapters/schema.js';
import { gatewayRoutes } from '../../functions/http/routes.js';
import { stackPropsFromContext } from '../../infra/context.js';
import { TABLE_READ, TABLE_WRITE } from '../../infra/house-function.js';
import { type FunctionName, LiveKitMcpDispatchStack, routeKeys } from '../../infra/stack.js';
import { bundleAssets, functionNames } from '../../scripts/esbuild-options.js';

// The stack deploys prebuilt bundles; a stub per function keeps this test independent of `npm run build`:
// the bundle, the files build.ts copies beside it, and the metafile that must stay out of the package.
const functionsDir = mkdtempSync(join(tmpdir(), 'lkmcp-infra-'));
for (const name of functionNames) {
  mkdirSync(join(functionsDir, name));
  writeFileSync(
    join(functionsDir, name, 'index.mjs'),
    'export const handler = async () => ({ statusCode: 204 });\n',
  );
  for (const asset of bundleAssets[name] ?? []) writeFileSync(join(functionsDir, name, asset.to), '{}\n');
  writeFileSync(join(functionsDir, name, 'meta.json'), '{}\n');
}

const CONTEXT: Record<string, unknown> = {
  livekitUrl: 'wss://livekit.example.com',
  authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
  authIssuer: 'https://id.example.com/',
  authAudience: 'livekit-mcp-dispatch',
  authTenantClaim: 'org_id',
  defaultAgentName: 'voice-agent',
  sessionDispatchMode: 'token',
  webhookRoomPrefix: 'call-',
  corsOrigins: 'https://app.example.com, https://admin.example.com',
  sessionsRateLimit: '40',
  sessionsBurstLimit: '80',
  webhookRateLimit: 300,
  webhookBurstLimit: 600,
  adminRateLimit: 5,
  adminBurstLimit: 10,
  adminTimeoutSeconds: 25,
  webhookMemoryMb: 1024,
  webhookReservedConcurrency: 50,
  logRetentionDays: 90,
  mcpAllowedPorts: '8443',
  alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops-alarms',
  functionsDir,
};

const props = stackPropsFromContext((key) => CONTEXT[key]);
const app = new App();
const stack = new LiveKitMcpDispatchStack(app, 'LiveKitMcpDispatch', props);
let template: Template;
let resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: string[] }>;

const id = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const ref = (construct: IConstruct) => ({ Ref: id(construct) });
const tableArn = () => ({ 'Fn::GetAtt': [id(stack.table), 'Arn'] });
const indexArns = () => ({ 'Fn::Join': ['', [tableArn(), '/index/*']] });
type SecretName = 'livekitCredentials' | 'dispatchKeys' | 'storageKeys' | 'oauthClientKeys';
const secretId = (name: SecretName) =>
  stack.getLogicalId(stack.secrets[name].node.defaultChild as CfnElement);

/** Every (action, resource) pair a policy document allows, as comparable strings. */
function grants(document: {
  Statement: { Action: string | string[]; Resource: unknown; Effect: string }[];
}): string[] {
  const out: string[] = [];
  for (const s of document.Statement) {
    expect(s.Effect).toBe('Allow');
    const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
    const targets = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
    for (const a of actions) for (const r of targets) out.push(`${a} ${JSON.stringify(r)}`);
  }
  return out.sort();
}

function roleGrants(name: FunctionName): string[] {
  const policy = stack.functions[name].role.node.findChild('DefaultPolicy').node.defaultChild as CfnElement;
  return grants(resources[stack.getLogicalId(policy)]!.Properties!.PolicyDocument as never);
}

function functionResource(name: FunctionName) {
  return resources[id(stack.functions[name].function)]!;
}

beforeAll(() => {
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources;
});

afterAll(() => rmSync(functionsDir, { recursive: true, force: true }));

describe('LiveKitMcpDispatchStack table', () => {
  it('is on-demand with PITR, deletion protection, TTL, a new+old image stream and the GSI of tableSchema', () => {
    // Assess
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: tableSchema.partitionKey, KeyType: 'HASH' },
        { AttributeName: tableSchema.sortKey, KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: tableSchema.ttlAttribute, Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      // Every index the store queries exists in AWS too (the schema module is the one source).
      GlobalSecondaryIndexes: Object.values(tableSchema.indexes).map((index) => ({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    });
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });
});

describe('LiveKitMcpDispatchStack functions', () => {
  it.each(functionNames)(
    '%s runs the built bundle on Node 22 / ARM64 with source maps and JSON logs',
    (name) => {
      // Prepare
      const fn = functionResource(name);
      const sizing = props.functions[name];

      // Assess
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: sizing.memoryMb,
        Timeout: sizing.timeoutSeconds,
        LoggingConfig: { LogFormat: 'JSON', LogGroup: ref(stack.functions[name].logGroup) },
        Environment: { Variables: expect.objectContaining({ NODE_OPTIONS: '--enable-source-maps' }) },
      });
      expect(resources[id(stack.functions[name].logGroup)]!.Properties).toMatchObject({
        RetentionInDays: 90,
      });
    },
  );

  it.each(functionNames)('%s ships its bundle and the files beside it, not the metafile', (name) => {
    // Prepare
    const code = functionResource(name).Properties!.Code as { S3Key: string };

    // Act: the directory CDK staged for the function's deployment package.
    const staged = readdirSync(join(app.outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`));

    // Assess
    expect(staged.sort()).toEqual(['index.mjs', ...(bundleAssets[name] ?? []).map((a) => a.to)].sort());
  });

  it('reserves concurrency for the webhook only, when asked', () => {
    // Assess
    expect(functionResource('webhook').Properties!.ReservedConcurrentExecutions).toBe(50);
    expect(functionResource('session').Properties!.ReservedConcurrentExecutions).toBeUndefined();
    expect(functionResource('admin').Properties!.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('takes memory and timeout from context, with the defaults elsewhere', () => {
    // Assess
    expect(props.functions).toEqual({
      session: { memoryMb: 512, timeoutSeconds: 25 },
      webhook: { memoryMb: 1024, timeoutSeconds: 25 },
      admin: { memoryMb: 512, timeoutSeconds: 25 },
      credentials: { memoryMb: 512, timeoutSeconds: 20 },
    });
  });

  it('gives every function the contract environment and exactly the secret ARNs it reads, never a secret value', () => {
    // Prepare
    const plain = {
      LIVEKIT_URL: 'wss://livekit.example.com',
      AUTH_JWKS_URL: 'https://id.example.com/.well-known/jwks.json',
      AUTH_ISSUER: 'https://id.example.com/',
      AUTH_AUDIENCE: 'livekit-mcp-dispatch',
      AUTH_TENANT_CLAIM: 'org_id',
      DEFAULT_AGENT_NAME: 'voice-agent',
      SESSION_DISPATCH_MODE: 'token',
      WEBHOOK_ROOM_PREFIX: 'call-',
      CORS_ORIGINS: 'https://app.example.com,https://admin.example.com',
      MCP_ALLOWED_PORTS: '8443',
      LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_METRICS_NAMESPACE: 'LiveKitMcpDispatch',
      TABLE_NAME: ref(stack.table),
      LIVEKIT_CREDENTIALS_SECRET_ARN: { Ref: secretId('livekitCredentials') },
      STORAGE_KEYS_SECRET_ARN: { Ref: secretId('storageKeys') },
      // Every function signs private_key_jwt: exchange (session), refresh (session, webhook,
      // credentials), revocation (admin).
      OAUTH_CLIENT_KEYS_SECRET_ARN: { Ref: secretId('oauthClientKeys') },
    };
    const env = (name: FunctionName) =>
      (functionResource(name).Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
    // The sealed refresh_url's base: the HTTP API's own URL, as no publicBaseUrl is given.
    const publicBaseUrl = {
      'Fn::Join': [
        '',
        [
          'https://',
          { Ref: id(stack.api) },
          '.execute-api.',
          { Ref: 'AWS::Region' },
          '.',
          { Ref: 'AWS::URLSuffix' },
        ],
      ],
    };

    // Assess
    expect(env('session')).toEqual({
      ...plain,
      POWERTOOLS_SERVICE_NAME: 'livekit-mcp-dispatch-session',
      DISPATCH_KEYS_SECRET_ARN: { Ref: secretId('dispatchKeys') },
      PUBLIC_BASE_URL: publicBaseUrl,
    });
    expect(env('webhook')).toEqual({
      ...plain,
      POWERTOOLS_SERVICE_NAME: 'livekit-mcp-dispatch-webhook',
      DISPATCH_KEYS_SECRET_ARN: { Ref: secretId('dispatchKeys') },
      PUBLIC_BASE_URL: publicBaseUrl,
    });
    expect(env('admin')).toEqual({ ...plain, POWERTOOLS_SERVICE_NAME: 'livekit-mcp-dispatch-admin' });
    // No LiveKit credentials: the credentials function never calls LiveKit.
    const { LIVEKIT_CREDENTIALS_SECRET_ARN: _, ...noLiveKit } = plain;
    expect(env('credentials')).toEqual({
      ...noLiveKit,
      POWERTOOLS_SERVICE_NAME: 'livekit-mcp-dispatch-credentials',
      DISPATCH_KEYS_SECRET_ARN: { Ref: secretId('dispatchKeys') },
      PUBLIC_BASE_URL: publicBaseUrl,
    });
  });

  it('waits for the secrets to be seeded before a function exists', () => {
    // Assess
    for (const name of functionNames) {
      expect(functionResource(name).DependsOn).toEqual(
        expect.arrayContaining(
          ['LiveKitCredentials', 'DispatchKeys', 'StorageKeys'].map((s) =>
            id(stack.node.findChild(s).node.findChild('Seed')),
          ),
        ),
      );
    }
  });
});

describe('LiveKitMcpDispatchStack grants', () => {
  const items = [...TABLE_READ, ...TABLE_WRITE];
  const tableGrants = () =>
    items.flatMap((a) => [`${a} ${JSON.stringify(tableArn())}`, `${a} ${JSON.stringify(indexArns())}`]);
  const secretRead = (name: SecretName) =>
    ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'].map(
      (a) => `${a} ${JSON.stringify({ Ref: secretId(name) })}`,
    );
  const logs = (name: FunctionName) =>
    ['logs:CreateLogStream', 'logs:PutLogEvents'].map(
      (a) => `${a} ${JSON.stringify({ 'Fn::GetAtt': [id(stack.functions[name].logGroup), 'Arn'] })}`,
    );

  it.each(['session', 'webhook'] as const)(
    '%s: its logs, table items, LiveKit secret, both keyrings and the OAuth client keys',
    (name) => {
      // Assess
      expect(roleGrants(name)).toEqual(
        [
          ...logs(name),
          ...tableGrants(),
          ...secretRead('livekitCredentials'),
          ...secretRead('dispatchKeys'),
          ...secretRead('storageKeys'),
          ...secretRead('oauthClientKeys'),
        ].sort(),
      );
    },
  );

  it('admin: its logs, table items, LiveKit secret (revoke deletes rooms), the storage keyring and the OAuth client keys (revocation)', () => {
    // Assess
    expect(roleGrants('admin')).toEqual(
      [
        ...logs('admin'),
        ...tableGrants(),
        ...secretRead('livekitCredentials'),
        ...secretRead('storageKeys'),
        ...secretRead('oauthClientKeys'),
      ].sort(),
    );
  });

  it('credentials: its logs, table items, both keyrings and the OAuth client keys (refresh); no LiveKit secret', () => {
    // Assess
    expect(roleGrants('credentials')).toEqual(
      [
        ...logs('credentials'),
        ...tableGrants(),
        ...secretRead('dispatchKeys'),
        ...secretRead('storageKeys'),
        ...secretRead('oauthClientKeys'),
      ].sort(),
    );
  });

  it('item actions only: no Scan, no stream reads, no table description or administration', () => {
    // Assess
    for (const name of functionNames) {
      const actions = new Set(
        roleGrants(name)
          .map((g) => g.split(' ')[0]!)
          .filter((a) => a.startsWith('dynamodb:')),
      );
      expect([...actions].sort()).toEqual(
        [
          'dynamodb:BatchGetItem',
          'dynamodb:BatchWriteItem',
          'dynamodb:ConditionCheckItem',
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
        ].sort(),
      );
    }
  });

  it('only session, webhook, credentials and the worker policy can read the dispatch keyring', () => {
    // Prepare
    const dispatch = JSON.stringify({ Ref: secretId('dispatchKeys') });
    const readers: string[] = [];

    // Act
    for (const [logicalId, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy') continue;
      const allowed = grants(r.Properties!.PolicyDocument as never);
      if (allowed.some((g) => g.startsWith('secretsmanager:GetSecretValue ') && g.endsWith(dispatch))) {
        readers.push(logicalId);
      }
    }

    // Assess
    const sessionPolicy = stack.functions.session.role.node.findChild('DefaultPolicy').node
      .defaultChild as CfnElement;
    const webhookPolicy = stack.functions.webhook.role.node.findChild('DefaultPolicy').node
      .defaultChild as CfnElement;
    const credentialsPolicy = stack.functions.credentials.role.node.findChild('DefaultPolicy').node
      .defaultChild as CfnElement;
    expect(readers.sort()).toEqual(
      [
        stack.getLogicalId(sessionPolicy),
        stack.getLogicalId(webhookPolicy),
        stack.getLogicalId(credentialsPolicy),
        id(stack.workerPolicy),
      ].sort(),
    );
  });

  it('the worker policy reads the dispatch keyring and nothing else, and is exported', () => {
    // Assess
    expect(grants(resources[id(stack.workerPolicy)]!.Properties!.PolicyDocument as never)).toEqual(
      secretRead('dispatchKeys').sort(),
    );
    template.hasOutput('WorkerPolicyArn', {
      Value: ref(stack.workerPolicy),
      Export: { Name: 'LiveKitMcpDispatch-WorkerPolicyArn' },
    });
  });

  it('the seeder may describe and write the secrets it seeds, never read them', () => {
    // Prepare
    const seeder = stack.node.findChild('SecretSeeder').node.findChild('Handler') as IConstruct;
    const policy = seeder.node.findChild('Role').node.findChild('DefaultPolicy').node
      .defaultChild as CfnElement;

    // Act
    const allowed = grants(resources[stack.getLogicalId(policy)]!.Properties!.PolicyDocument as never);

    // Assess
    const write = (name: SecretName) =>
      ['secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue'].map(
        (a) => `${a} ${JSON.stringify({ Ref: secretId(name) })}`,
      );
    const logGroup = seeder.node.findChild('Logs') as IConstruct;
    expect(allowed).toEqual(
      [
        ...['logs:CreateLogStream', 'logs:PutLogEvents'].map(
          (a) => `${a} ${JSON.stringify({ 'Fn::GetAtt': [id(logGroup), 'Arn'] })}`,
        ),
        ...write('livekitCredentials'),
        ...write('dispatchKeys'),
        ...write('storageKeys'),
        ...write('oauthClientKeys'),
      ].sort(),
    );
  });

  it('no managed AWS policy is attached to any role', () => {
    // Assess
    for (const r of Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Role')) {
      expect(r.Properties?.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('LiveKitMcpDispatchStack secrets', () => {
  it('creates the LiveKit credentials and both keyrings without a value in the template, seeded once', () => {
    // Assess
    template.resourceCountIs('AWS::SecretsManager::Secret', 4);
    for (const r of Object.values(resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret')) {
      expect(r.Properties).not.toHaveProperty('SecretString');
      expect(r.Properties).not.toHaveProperty('GenerateSecretString');
    }
    const seeds = Object.values(resources)
      .filter((r) => r.Type === 'Custom::SecretSeed')
      .map((r) => [(r.Properties!.SecretArn as { Ref: string }).Ref, r.Properties!.Seed]);
    expect(seeds.sort()).toEqual(
      [
        [secretId('livekitCredentials'), 'livekit-credentials'],
        [secretId('dispatchKeys'), 'keyring'],
        [secretId('storageKeys'), 'keyring'],
        [secretId('oauthClientKeys'), 'oauth-client-keys'],
      ].sort(),
    );
  });

  it('retains the storage keyring like the table', () => {
    // Assess
    const policyOf = (name: SecretName) =>
      (resources[secretId(name)] as { DeletionPolicy?: string }).DeletionPolicy;
    expect(policyOf('storageKeys')).toBe('Retain');
    expect(policyOf('oauthClientKeys')).toBe('Retain');
    expect(policyOf('dispatchKeys')).toBe('Delete');
    expect(policyOf('livekitCredentials')).toBe('Delete');
  });
});

describe('LiveKitMcpDispatchStack HTTP API', () => {
  const stageProps = () =>
    Object.values(resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Stage')!.Properties as Record<
      string,
      unknown
    >;

  it('has exactly the routes of the route list, each on its function', () => {
    // Prepare
    const integrations = Object.fromEntries(
      Object.entries(resources)
        .filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Integration')
        .map(([k, r]) => [k, r.Properties!]),
    );

    // Act
    const routes = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => {
        const target = (r.Properties!.Target as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1][1] as {
          Ref: string;
        };
        const integration = integrations[target.Ref]!;
        return [
          r.Properties!.RouteKey,
          (integration.IntegrationUri as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0],
        ];
      });

    // Assess
    const fn = (name: FunctionName) => id(stack.functions[name].function);
    expect(routes.sort()).toEqual(
      [
        [routeKeys.sessions, fn('session')],
        [routeKeys.webhook, fn('webhook')],
        [routeKeys.admin, fn('admin')],
        [routeKeys.openapi, fn('admin')],
        ['POST /v1/worker/credentials', fn('credentials')],
        // Any other method on those paths reaches the function, which answers 405 with `Allow`.
        ['ANY /v1/sessions', fn('session')],
        ['ANY /v1/livekit/webhook', fn('webhook')],
        ['ANY /openapi.json', fn('admin')],
        ['ANY /v1/worker/credentials', fn('credentials')],
        // docs/api.md §8: the connection routes, each with its `ANY` twin.
        ...gatewayRoutes()
          .filter((r) => r.path.includes('connections') || r.path.includes('oauth'))
          .map((r) => [r.key, fn(r.fn)]),
      ].sort(),
    );
    for (const integration of Object.values(integrations)) {
      expect(integration).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    }
  });

  it('serves the $default stage (no stage prefix in paths) with access logs', () => {
    // Assess
    template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    const stage = stageProps();
    expect(stage).toMatchObject({ StageName: '$default', AutoDeploy: true });
    const access = stage.AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(access.DestinationArn).toEqual({
      'Fn::GetAtt': [id(stack.node.findChild('ApiAccessLogs')), 'Arn'],
    });
    expect(JSON.parse(access.Format)).toMatchObject({
      requestId: '$context.requestId',
      routeKey: '$context.routeKey',
      status: '$context.status',
    });
    expect(access.Format).not.toMatch(/authorization|header/i);
  });

  it('throttles each route from the props, the webhook separately', () => {
    // Assess
    expect(stageProps()).toMatchObject({
      DefaultRouteSettings: { ThrottlingRateLimit: 40, ThrottlingBurstLimit: 80 },
      RouteSettings: {
        [routeKeys.sessions]: { ThrottlingRateLimit: 40, ThrottlingBurstLimit: 80 },
        [routeKeys.webhook]: { ThrottlingRateLimit: 300, ThrottlingBurstLimit: 600 },
        [routeKeys.admin]: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
        [routeKeys.openapi]: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
      },
    });
  });

  it('creates the stage after the routes its settings name', () => {
    // Prepare
    const stage = Object.values(resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Stage')!;
    const routeIds = Object.entries(resources)
      .filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map(([k]) => k);

    // Assess
    expect(stage.DependsOn).toEqual(expect.arrayContaining(routeIds));
  });

  it('allows the CORS origins from the props', () => {
    // Assess
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: {
        AllowOrigins: ['https://app.example.com', 'https://admin.example.com'],
        AllowMethods: ['GET', 'PUT', 'POST', 'DELETE'],
        AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
      },
    });
  });

  it('outputs the API and webhook URLs', () => {
    // Assess
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.WebhookUrl!.Value)).toContain('v1/livekit/webhook');
    expect(outputs.ApiUrl).toBeDefined();
  });
});

describe('LiveKitMcpDispatchStack alarms', () => {
  const alarms = () =>
    Object.values(resources)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => r.Properties!);

  it('watch function errors and throttles, DynamoDB system errors and the API 5xx rate', () => {
    // Act
    const single = alarms()
      .filter((a) => a.MetricName)
      .map((a) => `${a.Namespace}/${a.MetricName}`);
    const math = alarms()
      .filter((a) => a.Metrics)
      .map((a) =>
        (a.Metrics as { MetricStat?: { Metric: { MetricName: string } } }[])
          .flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : []))
          .sort()
          .join(','),
      );

    // Assess
    expect(single.sort()).toEqual(
      [...Array(4).fill('AWS/Lambda/Errors'), ...Array(4).fill('AWS/Lambda/Throttles')].sort(),
    );
    expect(math.sort()).toEqual(['5xx,Count', Array(8).fill('SystemErrors').join(',')].sort());
  });

  it('notify the alarm topic from the props', () => {
    // Assess
    for (const a of alarms()) expect(a.AlarmActions).toEqual([CONTEXT.alarmTopicArn]);
  });
});

describe('LiveKitMcpDispatchStack cdk-nag', () => {
  const acknowledged = () => {
    const found: { path: string; id: string; reason: string }[] = [];
    const walk = (c: IConstruct) => {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [ruleId, reason] of Object.entries(entry.data as Record<string, string>)) {
          found.push({ path: c.node.path, id: ruleId.replace(/^annotation::/i, ''), reason });
        }
      }
      for (const child of c.node.children) walk(child);
    };
    walk(app);
    return found;
  };

  it('AwsSolutions finds nothing unacknowledged', () => {
    // Act
    const report = new AwsSolutionsChecks().validateScope(app);

    // Assess
    expect(
      report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath)}`),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges exactly these rules, each on a resource with a reason', () => {
    // Act
    const acks = acknowledged();

    // Assess
    expect([...new Set(acks.map((a) => a.id))].sort()).toEqual(
      [
        'AwsSolutions-APIG4',
        `AwsSolutions-IAM5[Resource::<${id(stack.table)}.Arn>/index/*]`,
        'AwsSolutions-L1',
        'AwsSolutions-SMG4',
      ].sort(),
    );
    for (const a of acks) {
      expect(a.reason.length).toBeGreaterThan(40);
      expect(a.path).not.toBe(stack.node.path);
      expect(a.path).not.toBe(app.node.path);
    }
    // One per API Gateway route: every route of the list plus `ANY` on each non-admin path (405s).
    expect(acks.filter((a) => a.id === 'AwsSolutions-APIG4')).toHaveLength(gatewayRoutes().length);
    expect(acks.filter((a) => a.id === 'AwsSolutions-SMG4')).toHaveLength(4);
    expect(acks.filter((a) => a.id === 'AwsSolutions-L1')).toHaveLength(5);
  });

  it('every acknowledgement is needed: without them AwsSolutions reports each', () => {
    // Prepare
    const ids = new Set(acknowledged().map((a) => a.id));
    const bare = new App();
    const original = Validations.prototype.acknowledge;
    Validations.prototype.acknowledge = () => {};
    try {
      new LiveKitMcpDispatchStack(bare, 'LiveKitMcpDispatch', props);
    } finally {
      Validations.prototype.acknowledge = original;
    }

    // Act
    const report = new AwsSolutionsChecks().validateScope(bare);

    // Assess
    expect(new Set(report.violations.map((v) => v.ruleName))).toEqual(ids);
    expect(Stack.isStack(bare.node.children[0])).toBe(true);
  });
});

describe('LiveKitMcpDispatchStack offline synth', () => {
  it('needs no account or region', () => {
    // Assess
    expect(stack.account).toMatch(/^\$\{Token/);
    expect(stack.region).toMatch(/^\$\{Token/);
  });
});
