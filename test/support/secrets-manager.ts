import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the stand-in received. */
export interface SecretsManagerCall {
  /** The `X-Amz-Target` header, e.g. `secretsmanager.GetSecretValue`. */
  target: string;
  /** `SecretId` of the request body, when there was one. */
  secretId: string | undefined;
  /** Whether the request carried a SigV4 `Authorization` header for the `secretsmanager` service. */
  signed: boolean;
  /** HTTP status answered. */
  status: number;
}

/** A Secrets Manager stand-in on loopback. */
export interface SecretsManagerStandIn {
  /** `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  url: string;
  /** Every request so far, in order. */
  calls: SecretsManagerCall[];
  /** Stores (or replaces) a string secret under `name`; returns its ARN. */
  put(name: string, value: string): string;
  stop(): Promise<void>;
}

interface Stored {
  arn: string;
  name: string;
  value: string;
  versionId: string;
  created: number;
}

const JSON_11 = 'application/x-amz-json-1.1';

/**
 * Starts a Secrets Manager stand-in on 127.0.0.1 (random port) that speaks the service's JSON
 * 1.1 protocol (`POST /`, `X-Amz-Target: secretsmanager.<Operation>`) for `GetSecretValue`, as
 * the AWS SDK v3 client sends it: the secret is found by ARN or name and answered as
 * `{ARN, Name, SecretString, VersionId, VersionStages, CreatedDate}`; an unknown secret is a 400
 * `ResourceNotFoundException`, any other operation a 400 `UnknownOperationException`.
 */
export async function startSecretsManager(
  options: { region?: string; accountId?: string } = {},
): Promise<SecretsManagerStandIn> {
  const region = options.region ?? 'eu-west-1';
  const accountId = options.accountId ?? '123456789012';
  const secrets = new Map<string, Stored>();
  const calls: SecretsManagerCall[] = [];

  const server = createServer((req, res) => {
    void readBody(req).then((text) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      let input: { SecretId?: unknown } = {};
      try {
        input = JSON.parse(text || '{}');
      } catch {
        // Left empty: answered as a missing SecretId below.
      }
      const secretId = typeof input.SecretId === 'string' ? input.SecretId : undefined;
      const auth = String(req.headers.authorization ?? '');
      const call: SecretsManagerCall = {
        target,
        secretId,
        signed: /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/secretsmanager\/aws4_request/.test(auth),
        status: 0,
      };
      calls.push(call);
      const answer = (status: number, body: unknown) => {
        call.status = status;
        res
          .writeHead(status, { 'content-type': JSON_11, 'x-amzn-requestid': randomUUID() })
          .end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || target !== 'secretsmanager.GetSecretValue') {
        answer(400, { __type: 'UnknownOperationException', message: `Unsupported operation ${target}` });
        return;
      }
      const found = secretId === undefined ? undefined : secrets.get(secretId);
      if (found === undefined) {
        answer(400, {
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret.",
        });
        return;
      }
      answer(200, {
        ARN: found.arn,
        Name: found.name,
        SecretString: found.value,
        VersionId: found.versionId,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: found.created,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    put(name, value) {
      // Secrets Manager appends a 6-character suffix to the name in the ARN.
      const arn = `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}-${randomUUID().slice(0, 6)}`;
      const stored: Stored = { arn, name, value, versionId: randomUUID(), created: Date.now() / 1000 };
      secrets.set(arn, stored);
      secrets.set(name, stored);
      return arn;
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
