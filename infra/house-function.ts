import { CfnElement, type Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IGrantable, type IPrincipal, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  type Code,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** Item reads, including the condition checks of transactions (transactions have no IAM action of their own). */
export const TABLE_READ = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
] as const;
/** Item writes. */
export const TABLE_WRITE = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
] as const;

/** Settings every function of this project takes; the rest is the house default. */
export interface HouseFunctionProps {
  /** The deployment package, e.g. `Code.fromAsset('dist/functions/session')` (an `index.mjs` exporting `handler`). */
  readonly code: Code;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeout: Duration;
  readonly logRetention: RetentionDays;
  /** Plain (non-secret) settings; secrets are bound with {@link HouseFunction.bindSecret}. */
  readonly environment?: Record<string, string>;
  readonly reservedConcurrency?: number;
}

/**
 * The house Lambda function: Node 22 on ARM64, ESM bundle with source maps enabled, JSON logs
 * into its own log group with a retention, and a role that holds nothing but what the
 * `bind*` helpers grant (each sets the environment variable and the least privilege together).
 */
export class HouseFunction extends Construct implements IGrantable {
  readonly function: LambdaFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly grantPrincipal: IPrincipal;

  constructor(scope: Construct, id: string, props: HouseFunctionProps) {
    super(scope, id);
    // Our own role and log group instead of AWSLambdaBasicExecutionRole: writes to this log group only.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${this.node.path}`,
    });
    this.grantPrincipal = this.role;
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.function = new LambdaFunction(this, 'Function', {
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      handler: 'index.handler',
      code: props.code,
      description: props.description,
      memorySize: props.memoryMb,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
    this.logGroup.grantWrite(this.role);
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'The contract fixes the Lambda runtime at Node.js 22 (bundles target node22); moving to a newer runtime is a deliberate, tested upgrade.',
    });
  }

  /** Sets a plain environment variable. */
  addEnvironment(name: string, value: string): this {
    this.function.addEnvironment(name, value);
    return this;
  }

  /**
   * Passes the table name as `envName` and grants item reads (and writes) on it and its indexes:
   * no Scan, no stream reads (the stream is for audit consumers), no table description or
   * administration (only `npm start` creates a table).
   */
  bindTable(table: ITable, access: 'read' | 'readWrite', envName = 'TABLE_NAME'): this {
    this.addEnvironment(envName, table.tableName);
    table.grant(this.role, ...(access === 'read' ? TABLE_READ : [...TABLE_READ, ...TABLE_WRITE]));
    const cfnTable = table.node.defaultChild;
    if (cfnTable instanceof CfnElement) {
      const logicalId = Stack.of(table).getLogicalId(cfnTable);
      Validations.of(this.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/index/*]`,
        reason: `Queries go through the table's own global secondary indexes (${table.node.id}/index/*), all of which belong to this table.`,
      });
    }
    return this;
  }

  /** Passes the secret's ARN as `envName` and grants reading its value (read at cold start). */
  bindSecret(envName: string, secret: ISecret): this {
    this.addEnvironment(envName, secret.secretArn);
    secret.grantRead(this.role);
    return this;
  }
}
