import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** How to reach DynamoDB (or a DynamoDB-compatible server such as dynalite). */
export interface DynamoClientOptions {
  /** AWS region; defaults to the SDK's own resolution (`AWS_REGION` in Lambda), else `us-east-1` for a custom endpoint. */
  region?: string;
  /**
   * A DynamoDB-compatible server of your own (`DYNAMODB_ENDPOINT`). A loopback one gets dummy
   * credentials (real ones are never sent to it); any other host uses the default chain.
   */
  endpoint?: string;
  /** Per-attempt limit for one request and its response, in ms (default 2000). */
  requestTimeoutMs?: number;
  /** Limit for opening the connection, in ms (default 1000). */
  connectionTimeoutMs?: number;
  /** Attempts including the first, with the SDK's standard backoff (default 3). */
  maxAttempts?: number;
}

/**
 * Builds the document client the store uses: standard retry mode, bounded connection and
 * request timeouts (a hung request fails instead of eating the Lambda's budget), and
 * `removeUndefinedValues` so optional record fields can simply be left undefined.
 */
export function createDynamoClient(options: DynamoClientOptions = {}): DynamoDBDocumentClient {
  const custom = options.endpoint !== undefined;
  const client = new DynamoDBClient({
    ...(options.region !== undefined || custom ? { region: options.region ?? 'us-east-1' } : {}),
    ...(custom ? { endpoint: options.endpoint } : {}),
    ...(custom && isLoopback(options.endpoint!)
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    retryMode: 'standard',
    maxAttempts: options.maxAttempts ?? 3,
    // Constructor options of the SDK's NodeHttpHandler, which the client builds from them.
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 1000,
      requestTimeout: options.requestTimeoutMs ?? 2000,
      throwOnRequestTimeout: true,
    },
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

function isLoopback(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
