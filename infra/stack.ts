import { join } from 'node:path';
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  type HttpRoute,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  MathExpression,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import {
  AttributeType,
  BillingMode,
  Operation,
  ProjectionType,
  StreamViewType,
  Table,
} from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { tableSchema } from '../functions/adapters/schema.js';
import { gatewayRoutes, type RouteFunction, type ThrottleClass } from '../functions/http/routes.js';
import type { functionNames } from '../scripts/esbuild-options.js';
import { HouseFunction } from './house-function.js';
import { SecretSeeder, SeededSecret } from './seeded-secret.js';

/** The deployed functions, one bundle each (`dist/functions/<name>/index.mjs`). */
export type FunctionName = (typeof functionNames)[number];

/** API Gateway throttle of one route: steady requests per second and burst. */
export interface RouteThrottle {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/** Memory and timeout of one function. */
export interface FunctionSizing {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

/** Everything the stack is configured with (see infra/context.ts for the CDK context keys). */
export interface LiveKitMcpDispatchStackProps extends StackProps {
  /** `LIVEKIT_URL`: the LiveKit server, `wss://` or `https://`. */
  readonly livekitUrl: string;
  /** `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`, `AUTH_TENANT_CLAIM`. */
  readonly auth: {
    readonly jwksUrl: string;
    readonly issuer: string;
    readonly audience: string;
    readonly tenantClaim: string;
  };
  /** `DEFAULT_AGENT_NAME`. */
  readonly defaultAgentName: string;
  /** `SESSION_DISPATCH_MODE`. */
  readonly sessionDispatchMode: 'api' | 'token';
  /** `WEBHOOK_ROOM_PREFIX`. */
  readonly webhookRoomPrefix: string;
  /** `CORS_ORIGINS`, and the HTTP API's CORS configuration (none when empty). */
  readonly corsOrigins: readonly string[];
  /** Optional tuning passed through as environment (`SESSION_TOKEN_TTL_SECONDS` …); unset means the function default. */
  readonly sessionTokenTtlSeconds?: number;
  readonly sessionRateLimitPerMinute?: number;
  readonly metadataTtlSeconds?: number;
  readonly credentialsRefreshSeconds?: number;
  /**
   * `PUBLIC_BASE_URL` (`https://`, e.g. a custom domain); unset, the HTTP API's own
   * `https://<api id>.execute-api.<region>.<suffix>`. The sealed `refresh_url` is under it.
   */
  readonly publicBaseUrl?: string;
  readonly mcpAllowedPorts?: readonly number[];
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Any new value makes every function start fresh (new execution environments) and so re-read
   * its secrets: the step after changing the LiveKit credentials or a keyring (infra/README.md).
   */
  readonly secretsRevision?: string;
  /** Route throttles; the webhook has its own so app traffic cannot starve LiveKit's deliveries. */
  readonly throttles: Readonly<Record<ThrottleClass, RouteThrottle>>;
  readonly functions: Readonly<Record<FunctionName, FunctionSizing>>;
  /** Concurrency reserved for the webhook function (unset: shares the account pool). */
  readonly webhookReservedConcurrency?: number;
  /** Retention of function and access logs. */
  readonly logRetention: RetentionDays;
  /** Where `npm run build` wrote the bundles (`dist/functions`). */
  readonly functionsDir: string;
  /** SNS topic every alarm notifies (unset: alarms without actions). */
  readonly alarmTopicArn?: string;
  /**
   * Secrets that already exist (complete ARNs), instead of creating them: e.g. the storage
   * keyring retained from an earlier deployment, or LiveKit credentials managed elsewhere.
   */
  readonly existingSecrets?: {
    readonly livekitCredentialsArn?: string;
    readonly dispatchKeysArn?: string;
    readonly storageKeysArn?: string;
    readonly oauthClientKeysArn?: string;
  };
}

/** The plain (non-secret) environment every function gets; names are the contract's §2. */
export function plainEnvironment(props: LiveKitMcpDispatchStackProps): Record<string, string> {
  const env: Record<string, string> = {
    LIVEKIT_URL: props.livekitUrl,
    AUTH_JWKS_URL: props.auth.jwksUrl,
    AUTH_ISSUER: props.auth.issuer,
    AUTH_AUDIENCE: props.auth.audience,
    AUTH_TENANT_CLAIM: props.auth.tenantClaim,
    DEFAULT_AGENT_NAME: props.defaultAgentName,
    SESSION_DISPATCH_MODE: props.sessionDispatchMode,
    WEBHOOK_ROOM_PREFIX: props.webhookRoomPrefix,
    CORS_ORIGINS: props.corsOrigins.join(','),
    LOG_LEVEL: props.logLevel ?? 'INFO',
  };
  if (props.sessionTokenTtlSeconds !== undefined)
    env.SESSION_TOKEN_TTL_SECONDS = String(props.sessionTokenTtlSeconds);
  if (props.sessionRateLimitPerMinute !== undefined) {
    env.SESSION_RATE_LIMIT_PER_MINUTE = String(props.sessionRateLimitPerMinute);
  }
  if (props.secretsRevision !== undefined) env.SECRETS_REVISION = props.secretsRevision;
  if (props.metadataTtlSeconds !== undefined) env.METADATA_TTL_SECONDS = String(props.metadataTtlSeconds);
  if (props.credentialsRefreshSeconds !== undefined) {
    env.CREDENTIALS_REFRESH_SECONDS = String(props.credentialsRefreshSeconds);
  }
  if (props.publicBaseUrl !== undefined) env.PUBLIC_BASE_URL = props.publicBaseUrl.replace(/\/+$/, '');
  if (props.mcpAllowedPorts !== undefined && props.mcpAllowedPorts.length > 0) {
    env.MCP_ALLOWED_PORTS = props.mcpAllowedPorts.join(',');
  }
  return env;
}

/**
 * The construct id of a route's integration: the first routes keep the ids they were deployed
 * with; the others are named after their key.
 */
function routeId(key: string): string {
  const kept: Record<string, string> = {
    [routeKeys.sessions]: 'Session',
    [routeKeys.webhook]: 'Webhook',
    [routeKeys.admin]: 'Admin',
    [routeKeys.openapi]: 'OpenApi',
  };
  return (
    kept[key] ?? key.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())
  );
}

/** Some route keys as API Gateway names them (the stack makes every one of `gatewayRoutes()`). */
export const routeKeys = {
  sessions: 'POST /v1/sessions',
  webhook: 'POST /v1/livekit/webhook',
  admin: 'ANY /v1/admin/{proxy+}',
  openapi: 'GET /openapi.json',
} as const;

const NO_ROTATION_KEYRING =
  'Keyrings rotate by a staged, manual procedure (add key, roll workers, switch current, retire; see infra/README.md): an automatic single-step rotation would make in-flight dispatch metadata or stored tokens unopenable.';

/**
 * livekit-mcp-dispatch on AWS: the session, webhook and admin functions behind one HTTP API
 * (`$default` stage), one DynamoDB table, the LiveKit credentials and both keyrings in
 * Secrets Manager, a managed policy for the agent worker fleet, and alarms.
 */
export class LiveKitMcpDispatchStack extends Stack {
  readonly table: Table;
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly functions: Readonly<Record<FunctionName, HouseFunction>>;
  readonly secrets: {
    readonly livekitCredentials: ISecret;
    readonly dispatchKeys: ISecret;
    readonly storageKeys: ISecret;
    readonly oauthClientKeys: ISecret;
  };
  readonly workerPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: LiveKitMcpDispatchStackProps) {
    super(scope, id, props);

    this.table = new Table(this, 'Table', {
      partitionKey: { name: tableSchema.partitionKey, type: AttributeType.STRING },
      sortKey: { name: tableSchema.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      timeToLiveAttribute: tableSchema.ttlAttribute,
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(tableSchema.indexes)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }

    let seeder: SecretSeeder | undefined;
    const seeded: SeededSecret[] = [];
    const secret = (
      name: string,
      existingArn: string | undefined,
      seed: Omit<ConstructorParameters<typeof SeededSecret>[2], 'seeder'>,
    ): ISecret => {
      if (existingArn) return Secret.fromSecretCompleteArn(this, name, existingArn);
      seeder ??= new SecretSeeder(this, 'SecretSeeder', { logRetention: props.logRetention });
      const created = new SeededSecret(this, name, { ...seed, seeder });
      seeded.push(created);
      return created.secret;
    };
    this.secrets = {
      livekitCredentials: secret('LiveKitCredentials', props.existingSecrets?.livekitCredentialsArn, {
        seed: 'livekit-credentials',
        description:
          'LiveKit API credentials {"api_key","api_secret"}; created empty-valued, the operator puts the real ones',
        removalPolicy: RemovalPolicy.DESTROY,
        noRotationReason:
          'LiveKit API keys are issued and rotated in LiveKit (Cloud project or server config); the operator puts the new pair here, no Secrets Manager rotation Lambda can create one.',
      }),
      dispatchKeys: secret('DispatchKeys', props.existingSecrets?.dispatchKeysArn, {
        seed: 'keyring',
        description:
          'DISPATCH_KEYS keyring: seals dispatch metadata; read by session, webhook and the agent worker fleet',
        removalPolicy: RemovalPolicy.DESTROY,
        noRotationReason: NO_ROTATION_KEYRING,
      }),
      // Losing the storage keyring makes every stored MCP token unopenable: kept like the table.
      storageKeys: secret('StorageKeys', props.existingSecrets?.storageKeysArn, {
        seed: 'keyring',
        description: 'STORAGE_KEYS keyring: seals MCP tokens and headers at rest; never given to workers',
        removalPolicy: RemovalPolicy.RETAIN,
        noRotationReason: NO_ROTATION_KEYRING,
      }),
      // The OAuth client's identity at authorization servers (private_key_jwt, CIMD/DCR jwks).
      oauthClientKeys: secret('OAuthClientKeys', props.existingSecrets?.oauthClientKeysArn, {
        seed: 'oauth-client-keys',
        description:
          'OAUTH_CLIENT_KEYS ES256 keyring: signs private_key_jwt client assertions (exchange, refresh, revocation); read by the four functions, never by workers',
        removalPolicy: RemovalPolicy.RETAIN,
        noRotationReason: NO_ROTATION_KEYRING,
      }),
    };

    const environment = plainEnvironment(props);
    const make = (name: FunctionName, description: string, reservedConcurrency?: number): HouseFunction => {
      const sizing = props.functions[name];
      const fn = new HouseFunction(this, `${name[0]!.toUpperCase()}${name.slice(1)}`, {
        // The bundle and its source map; the esbuild metafile stays out of the package.
        code: Code.fromAsset(join(props.functionsDir, name), { exclude: ['meta.json'] }),
        description,
        memoryMb: sizing.memoryMb,
        timeout: Duration.seconds(sizing.timeoutSeconds),
        logRetention: props.logRetention,
        reservedConcurrency,
        environment: {
          ...environment,
          POWERTOOLS_SERVICE_NAME: `livekit-mcp-dispatch-${name}`,
          POWERTOOLS_METRICS_NAMESPACE: 'LiveKitMcpDispatch',
        },
      });
      for (const s of seeded) s.seededBefore(fn.function);
      return fn;
    };
    const session = make('session', 'POST /v1/sessions: participant token + one sealed agent dispatch')
      .bindTable(this.table, 'readWrite')
      .bindSecret('LIVEKIT_CREDENTIALS_SECRET_ARN', this.secrets.livekitCredentials)
      .bindSecret('DISPATCH_KEYS_SECRET_ARN', this.secrets.dispatchKeys)
      .bindSecret('STORAGE_KEYS_SECRET_ARN', this.secrets.storageKeys)
      .bindSecret('OAUTH_CLIENT_KEYS_SECRET_ARN', this.secrets.oauthClientKeys);
    const webhook = make(
      'webhook',
      'POST /v1/livekit/webhook: dispatch on participant_joined, end sessions on room_finished',
      props.webhookReservedConcurrency,
    )
      .bindTable(this.table, 'readWrite')
      .bindSecret('LIVEKIT_CREDENTIALS_SECRET_ARN', this.secrets.livekitCredentials)
      .bindSecret('DISPATCH_KEYS_SECRET_ARN', this.secrets.dispatchKeys)
      .bindSecret('STORAGE_KEYS_SECRET_ARN', this.secrets.storageKeys)
      .bindSecret('OAUTH_CLIENT_KEYS_SECRET_ARN', this.secrets.oauthClientKeys);
    // No dispatch keyring: the admin function seals nothing for workers. LiveKit: revoke deletes rooms.
    const admin = make('admin', '/v1/admin/* and GET /openapi.json: tenants, users, audit, sessions, revoke')
      .bindTable(this.table, 'readWrite')
      .bindSecret('LIVEKIT_CREDENTIALS_SECRET_ARN', this.secrets.livekitCredentials)
      .bindSecret('STORAGE_KEYS_SECRET_ARN', this.secrets.storageKeys)
      .bindSecret('OAUTH_CLIENT_KEYS_SECRET_ARN', this.secrets.oauthClientKeys);
    // POST /v1/worker/credentials: no LiveKit credentials (it never calls LiveKit) and no user JWTs;
    // the dispatch keyring verifies worker assertions and seals, the storage keyring opens tokens.
    const credentials = make(
      'credentials',
      "POST /v1/worker/credentials: agent workers renew a live job's MCP credentials",
    )
      .bindTable(this.table, 'readWrite')
      .bindSecret('DISPATCH_KEYS_SECRET_ARN', this.secrets.dispatchKeys)
      .bindSecret('STORAGE_KEYS_SECRET_ARN', this.secrets.storageKeys)
      .bindSecret('OAUTH_CLIENT_KEYS_SECRET_ARN', this.secrets.oauthClientKeys);
    this.functions = { session, webhook, admin, credentials };

    this.workerPolicy = new ManagedPolicy(this, 'WorkerDispatchKeysPolicy', {
      description: 'Attach to the agent worker fleet: reads the DISPATCH_KEYS keyring, nothing else',
      statements: [
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [this.secrets.dispatchKeys.secretArn],
        }),
      ],
    });

    ({ api: this.api, stage: this.stage } = this.httpApi(props));
    // The refresh_url the dispatching functions seal and the credentials function checks as the
    // assertion's aud. The API's id is known before any route: no dependency cycle.
    if (props.publicBaseUrl === undefined) {
      const base = `https://${this.api.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;
      for (const fn of [session, webhook, credentials]) fn.function.addEnvironment('PUBLIC_BASE_URL', base);
    }
    this.alarms(props);

    new CfnOutput(this, 'ApiUrl', {
      value: this.stage.url,
      description: 'Base URL of the HTTP API ($default stage)',
    });
    new CfnOutput(this, 'WebhookUrl', {
      value: `${this.stage.url}v1/livekit/webhook`,
      description: "Point LiveKit's webhook here",
    });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'TableStreamArn', { value: this.table.tableStreamArn ?? '' });
    new CfnOutput(this, 'LiveKitCredentialsSecretArn', {
      value: this.secrets.livekitCredentials.secretArn,
      description: 'Put {"api_key","api_secret"} here after the first deploy',
    });
    new CfnOutput(this, 'DispatchKeysSecretArn', { value: this.secrets.dispatchKeys.secretArn });
    new CfnOutput(this, 'StorageKeysSecretArn', { value: this.secrets.storageKeys.secretArn });
    new CfnOutput(this, 'WorkerPolicyArn', {
      value: this.workerPolicy.managedPolicyArn,
      description: 'Managed policy for the agent worker fleet: read the dispatch keyring',
      exportName: `${this.stackName}-WorkerPolicyArn`,
    });
  }

  private httpApi(props: LiveKitMcpDispatchStackProps): { api: HttpApi; stage: HttpStage } {
    const api = new HttpApi(this, 'HttpApi', {
      description: 'livekit-mcp-dispatch: sessions, LiveKit webhook, admin',
      createDefaultStage: false,
      corsPreflight:
        props.corsOrigins.length > 0
          ? {
              allowOrigins: [...props.corsOrigins],
              // POST /v1/sessions; GET, PUT, POST, DELETE /v1/connections… (docs/api.md §8).
              allowMethods: [
                CorsHttpMethod.GET,
                CorsHttpMethod.PUT,
                CorsHttpMethod.POST,
                CorsHttpMethod.DELETE,
              ],
              allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
              maxAge: Duration.minutes(10),
            }
          : undefined,
    });
    // API Gateway authorizers are not used: each function verifies its caller itself (cdk-nag APIG4).
    const noAuthorizer: Record<RouteFunction, string> = {
      session:
        "The session function verifies the app user's JWT itself (JWKS, issuer, audience, tenant claim) so failures are the contract's problem+json 401/403.",
      webhook:
        'LiveKit signs each delivery (no bearer token an authorizer could check); the webhook function verifies that signature against the raw body with WebhookReceiver before anything else.',
      admin:
        'The admin function verifies the JWT, its dispatch:admin/superadmin scope and tenant itself; per-tenant 404s and problem+json errors need its data. GET /openapi.json is public documentation and carries no data.',
      credentials:
        'Agent workers prove the dispatch keyring with an HMAC worker assertion (single-use jti, checked against the table), which no API Gateway authorizer can verify; the credentials function checks it before anything else.',
    };
    // The routes come from the one route list (functions/http/routes.ts).
    const routes: HttpRoute[] = gatewayRoutes().map((r) => {
      const [added] = api.addRoutes({
        path: r.path,
        methods: [r.method === 'ANY' ? HttpMethod.ANY : HttpMethod[r.method]],
        integration: new HttpLambdaIntegration(routeId(r.key), this.functions[r.fn].function),
      });
      Validations.of(added!).acknowledge({ id: 'AwsSolutions-APIG4', reason: noAuthorizer[r.fn] });
      return added!;
    });

    const accessLogs = new LogGroup(this, 'ApiAccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // A named stage would put `/<stage>` into the path the Hono apps route on.
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttles.sessions,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationStatus: '$context.integrationStatus',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            error: '$context.error.message',
          }),
        ),
      },
    });
    // `routeSettings` is untyped JSON: CloudFormation's own (PascalCase) property names.
    const throttle = (t: RouteThrottle) => ({
      ThrottlingRateLimit: t.rateLimit,
      ThrottlingBurstLimit: t.burstLimit,
    });
    (stage.node.defaultChild as CfnStage).routeSettings = Object.fromEntries(
      gatewayRoutes().map((r) => [r.key, throttle(props.throttles[r.throttle])]),
    );
    // Route settings name routes by key: the stage must be created after them.
    for (const route of routes) stage.node.addDependency(route);
    return { api, stage };
  }

  private alarms(props: LiveKitMcpDispatchStackProps): void {
    const topic = props.alarmTopicArn
      ? Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn)
      : undefined;
    const period = Duration.minutes(5);
    const alarm = (id: string, metric: IMetric, threshold: number, description: string): void => {
      const created = new Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (topic) created.addAlarmAction(new SnsAction(topic));
    };
    for (const [name, fn] of Object.entries(this.functions)) {
      const label = `${name[0]!.toUpperCase()}${name.slice(1)}`;
      alarm(
        `${label}ErrorsAlarm`,
        fn.function.metricErrors({ period, statistic: 'Sum' }),
        1,
        `The ${name} function failed (unhandled error or timeout) in the last 5 minutes`,
      );
      alarm(
        `${label}ThrottlesAlarm`,
        fn.function.metricThrottles({ period, statistic: 'Sum' }),
        1,
        `The ${name} function was throttled (concurrency exhausted) in the last 5 minutes`,
      );
    }
    alarm(
      'TableSystemErrorsAlarm',
      this.table.metricSystemErrorsForOperations({
        period,
        statistic: 'Sum',
        // An alarm's math expression may use at most 10 metrics: the operations the store uses.
        operations: [
          Operation.GET_ITEM,
          Operation.PUT_ITEM,
          Operation.UPDATE_ITEM,
          Operation.DELETE_ITEM,
          Operation.QUERY,
          Operation.TRANSACT_WRITE_ITEMS,
          Operation.TRANSACT_GET_ITEMS,
          Operation.BATCH_WRITE_ITEM,
        ],
      }),
      1,
      'DynamoDB returned 5xx (system errors) to the functions in the last 5 minutes',
    );
    alarm(
      'Api5xxRateAlarm',
      new MathExpression({
        expression: 'IF(requests >= 20, 100 * errors / requests, 0)',
        usingMetrics: {
          errors: this.api.metricServerError({ period, statistic: 'Sum' }),
          requests: this.api.metricCount({ period, statistic: 'Sum' }),
        },
        period,
        label: 'API 5xx rate (%)',
      }),
      5,
      'At least 5% of API requests answered 5xx in the last 5 minutes (with 20 or more requests)',
    );
  }
}
