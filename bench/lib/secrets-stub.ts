import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A loopback server answering Secrets Manager's `GetSecretValue` (AWS JSON 1.1 protocol). */
export interface SecretsStub {
  /** For `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  endpoint: string;
  /** GetSecretValue calls answered so far. */
  readonly calls: number;
  stop(): Promise<void>;
}

/**
 * Starts the stub on 127.0.0.1 with `secrets` (ARN → SecretString). It speaks the real wire
 * protocol, over TLS when given a key and certificate (as Secrets Manager does), so the client's
 * signing, handshakes and parsing run as in AWS; only the network distance differs.
 */
export async function startSecretsStub(
  secrets: Record<string, string>,
  options: { tls?: { key: string; cert: string } } = {},
): Promise<SecretsStub> {
  let calls = 0;
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      let secretId = '';
      try {
        secretId = String(JSON.parse(Buffer.concat(chunks).toString('utf8')).SecretId ?? '');
      } catch {
        // answered as not found below
      }
      const value = secrets[secretId];
      if (target !== 'secretsmanager.GetSecretValue' || value === undefined) {
        res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'not found' }));
        return;
      }
      calls += 1;
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(
        JSON.stringify({
          ARN: secretId,
          Name: secretId.split(':').pop(),
          SecretString: value,
          VersionId: '00000000-0000-0000-0000-000000000001',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1_700_000_000,
        }),
      );
    });
  };
  const server = options.tls ? createTlsServer(options.tls, answer) : createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    get calls() {
      return calls;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
