/** What the seeder needs of Secrets Manager. */
export interface SeedSecrets {
  hasValue(arn: string): Promise<boolean>;
  putValue(arn: string, value: string, requestId: string): Promise<void>;
}

/** A CloudFormation custom resource request (the fields the seeder reads). */
export interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  ResponseURL: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  PhysicalResourceId?: string;
  ResourceProperties: { SecretArn?: string; Seed?: string; [key: string]: unknown };
}

/** The answer sent to CloudFormation. */
export interface CustomResourceResponse {
  Status: 'SUCCESS' | 'FAILED';
  Reason: string;
  PhysicalResourceId: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  NoEcho: boolean;
  Data: Record<string, string>;
}

export interface SeedDeps {
  secrets: SeedSecrets;
  respond: (url: string, body: CustomResourceResponse) => Promise<void>;
  now: () => Date;
}

export type SeedKind = 'keyring' | 'livekit-credentials' | 'oauth-client-keys';
export function newClientKeyring(now: Date): string;

export function keyIdFor(now: Date): string;
export function newKeyring(now: Date, random?: (size: number) => Buffer): string;
export function seedValue(seed: SeedKind | string, now: Date, random?: (size: number) => Buffer): string;
export function onEvent(
  event: CustomResourceEvent,
  deps: SeedDeps,
): Promise<{ status: 'SUCCESS' | 'FAILED'; reason: string }>;
export function sdkSecrets(): Promise<SeedSecrets>;
export function respondTo(url: string, body: CustomResourceResponse): Promise<void>;
export function handler(
  event: CustomResourceEvent,
): Promise<{ status: 'SUCCESS' | 'FAILED'; reason: string }>;
