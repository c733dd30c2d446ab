import { fileURLToPath } from 'node:url';
import { CustomResource, Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Code } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type CfnSecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { HouseFunction } from './house-function.js';

/**
 * What a seeded secret starts with: a keyring in the contract's JSON, the LiveKit credentials
 * placeholder, or an `OAUTH_CLIENT_KEYS` ES256 keyring (docs/api.md §8).
 */
export type SeedKind = 'keyring' | 'livekit-credentials' | 'oauth-client-keys';

const SEEDER_DIR = fileURLToPath(new URL('./secret-seeder', import.meta.url));

/**
 * The custom resource provider (one per stack) that writes a secret's first value. It may
 * describe and write the secrets it seeds, never read them.
 */
export class SecretSeeder extends Construct {
  readonly handler: HouseFunction;

  constructor(scope: Construct, id: string, props: { logRetention: RetentionDays }) {
    super(scope, id);
    this.handler = new HouseFunction(this, 'Handler', {
      code: Code.fromAsset(SEEDER_DIR, { exclude: ['*.d.mts'] }),
      description:
        'Writes the first value of a new secret (keyrings, LiveKit credentials placeholder); never overwrites',
      memoryMb: 256,
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
    });
  }

  /** Lets the seeder describe and write `secret` (no read). */
  allow(secret: Secret): void {
    this.handler.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue'],
        resources: [secret.secretArn],
      }),
    );
  }
}

/** Props of {@link SeededSecret}. */
export interface SeededSecretProps {
  readonly seeder: SecretSeeder;
  readonly seed: SeedKind;
  readonly description: string;
  readonly removalPolicy: RemovalPolicy;
  /** Why this secret has no automatic rotation (cdk-nag AwsSolutions-SMG4). */
  readonly noRotationReason: string;
}

/**
 * A Secrets Manager secret created empty by CloudFormation and given its first value by the
 * seeder: CloudFormation never holds or re-generates the value, so an update of the stack can
 * never replace keys (or credentials the operator has put in).
 */
export class SeededSecret extends Construct {
  readonly secret: Secret;

  constructor(scope: Construct, id: string, props: SeededSecretProps) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description: props.description,
      removalPolicy: props.removalPolicy,
    });
    // An empty secret: the value comes from the seeder, not from a template property.
    (this.secret.node.defaultChild as CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
    Validations.of(this.secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: props.noRotationReason });
    props.seeder.allow(this.secret);
    const seed = new CustomResource(this, 'Seed', {
      serviceToken: props.seeder.handler.function.functionArn,
      resourceType: 'Custom::SecretSeed',
      properties: { SecretArn: this.secret.secretArn, Seed: props.seed },
    });
    seed.node.addDependency(props.seeder.handler);
  }

  /** Makes `dependent` wait until the secret has its value (functions read it at cold start). */
  seededBefore(dependent: Construct): void {
    dependent.node.addDependency(this.node.findChild('Seed'));
  }
}
