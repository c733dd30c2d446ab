import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Reads one secret's `SecretString` by ARN. */
export interface SecretReader {
  get(secretId: string): Promise<string | undefined>;
}

/** Options of {@link createSecretsManagerReader}. */
export interface SecretsManagerReaderOptions {
  /** The environment to read the region, credentials and endpoint from (Lambda sets all three). */
  env: Record<string, string | undefined>;
  /** Attempts including the first (default 3). */
  maxAttempts?: number;
  /** Limit for one attempt, connection included, in ms (default 2500). */
  attemptTimeoutMs?: number;
  /** Injected for tests: the clock used to sign. */
  now?: () => Date;
}

/** A Secrets Manager answer that is not a secret string; `name` is the AWS error type. */
export class SecretsManagerError extends Error {
  constructor(
    name: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(`Secrets Manager: ${name}${status === undefined ? '' : ` (HTTP ${status})`}`);
    this.name = name;
  }
}

const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/**
 * Signs one AWS JSON request with Signature Version 4 (header form): returns the headers to send.
 * Exported for tests, which check it against the AWS SDK's own signer.
 */
export function signRequest(input: {
  url: URL;
  region: string;
  service: string;
  target: string;
  body: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
  date: Date;
}): Record<string, string> {
  const amzDate = input.date.toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    host: input.url.host,
    'x-amz-date': amzDate,
    'x-amz-target': input.target,
  };
  if (input.credentials.sessionToken) headers['x-amz-security-token'] = input.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = [
    'POST',
    input.url.pathname || '/',
    '',
    ...names.map((n) => `${n}:${headers[n]!.trim()}`),
    '',
    names.join(';'),
    sha256Hex(input.body),
  ].join('\n');
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${input.credentials.secretAccessKey}`, day), input.region), input.service),
    'aws4_request',
  );
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  };
}

/** One POST with node:http(s) (fetch's first use costs more at a cold start than the call). */
function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = send(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    const timer = setTimeout(() => {
      const err = new Error('no answer in time');
      err.name = 'TimeoutError';
      req.destroy(err);
    }, timeoutMs);
    function fail(err: Error) {
      clearTimeout(timer);
      reject(err);
    }
    req.on('error', fail);
    req.end(body);
  });
}

const RETRYABLE_TYPES = new Set(['ThrottlingException', 'InternalServiceError', 'RequestTimeout']);

/**
 * `GetSecretValue` over one signed HTTPS call, for the Lambda cold start. The functions read
 * three secrets once per cold start; the full SDK client (middleware stack, endpoint rules,
 * schema serde, credential chain) cost ~25 ms of CPU at init for that, this costs ~2 ms.
 * Credentials and region come from the environment Lambda sets; `AWS_ENDPOINT_URL_SECRETS_MANAGER`
 * (or `AWS_ENDPOINT_URL`) overrides the endpoint as in the SDK. Throttling, 5xx, timeouts and
 * network failures are retried with jittered backoff; anything else fails at once.
 */
export function createSecretsManagerReader(options: SecretsManagerReaderOptions): SecretReader {
  const { env } = options;
  const maxAttempts = options.maxAttempts ?? 3;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 2500;
  const now = options.now ?? (() => new Date());

  async function attempt(secretId: string): Promise<string | undefined> {
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    if (!region || !accessKeyId || !secretAccessKey) {
      throw new SecretsManagerError('CredentialsOrRegionMissing', undefined, false);
    }
    const url = new URL(
      env.AWS_ENDPOINT_URL_SECRETS_MANAGER ??
        env.AWS_ENDPOINT_URL ??
        `https://secretsmanager.${region}.amazonaws.com/`,
    );
    const body = JSON.stringify({ SecretId: secretId });
    const headers = signRequest({
      url,
      region,
      service: 'secretsmanager',
      target: 'secretsmanager.GetSecretValue',
      body,
      credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN },
      date: now(),
    });
    let res: { status: number; text: string };
    try {
      res = await post(url, headers, body, attemptTimeoutMs);
    } catch (err) {
      const name = err instanceof Error && err.name === 'TimeoutError' ? 'TimeoutError' : 'NetworkError';
      throw new SecretsManagerError(name, undefined, true);
    }
    let json: { SecretString?: unknown; __type?: unknown } = {};
    try {
      json = JSON.parse(res.text);
    } catch {
      // handled below by status
    }
    const ok = res.status >= 200 && res.status < 300;
    if (ok) return typeof json.SecretString === 'string' ? json.SecretString : undefined;
    const type = typeof json.__type === 'string' ? (json.__type.split('#').pop() ?? 'Error') : 'Error';
    throw new SecretsManagerError(
      type,
      res.status,
      res.status >= 500 || res.status === 429 || RETRYABLE_TYPES.has(type),
    );
  }

  return {
    async get(secretId) {
      for (let n = 1; ; n++) {
        try {
          return await attempt(secretId);
        } catch (err) {
          if (!(err instanceof SecretsManagerError) || !err.retryable || n >= maxAttempts) throw err;
          await new Promise((ok) => setTimeout(ok, Math.random() * 100 * 2 ** n));
        }
      }
    },
  };
}
