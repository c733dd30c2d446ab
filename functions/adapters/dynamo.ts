import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** How to reach DynamoDB (or a DynamoDB-compatible server such as dynalite). */
export interface DynamoClientOptions {
  /** AWS region; defaults to the SDK's own resolution (`AWS_REGION` in Lambda), else `us-east-1` for a custom endpoint. */
  region?: string;
  /** A DynamoDB-compatible server of your own (`DYNAMODB_ENDPOINT`); dummy credentials are used for it. */
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
  const local = options.endpoint !== undefined;
  const client = new DynamoDBClient({
    ...(options.region !== undefined || local ? { region: options.region ?? 'us-east-1' } : {}),
    ...(local
      ? {
          endpoint: options.endpoint,
          // A local server accepts any signature; real credentials must never be sent to it.
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
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
