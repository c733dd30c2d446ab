import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How a matching request fails:
 * - `throttle`: HTTP 400 `ProvisionedThroughputExceededException`, as DynamoDB answers it;
 * - `server-error`: HTTP 500 `InternalServerError`;
 * - `hang`: read the request, never answer (until the client gives up or the proxy stops);
 * - `reset`: destroy the connection without an answer.
 */
export type FaultMode = 'throttle' | 'server-error' | 'hang' | 'reset';

/** One fault to inject: `times` matching requests (default: all of them) fail with `mode`. */
export interface FaultRule {
  mode: FaultMode;
  /** How many matching requests fail; `Infinity` (default) until {@link FaultProxy.clear}. */
  times?: number;
  /** DynamoDB operations (`X-Amz-Target` suffix, e.g. `PutItem`); any request when omitted. */
  operations?: string[];
  /** Only requests whose body contains this text (e.g. a key prefix such as `SESSION#`). */
  bodyIncludes?: string;
  /** Matching requests to let through before the first failure (default 0). */
  after?: number;
  /** Applies only while this returns true (e.g. once LiveKit has seen a CreateDispatch). */
  when?: () => boolean;
}

/** One request the proxy saw. */
export interface ProxiedRequest {
  /** DynamoDB operation (`PutItem`, ...), or the path for a non-DynamoDB request. */
  operation: string;
  /** The fault answered, or `undefined` when the request was passed through. */
  fault: FaultMode | undefined;
}

/** A loopback HTTP proxy that passes requests to `target` or fails them as told. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use it as the endpoint instead of the target's. */
  url: string;
  /** Every request so far, in order of arrival. */
  readonly requests: ProxiedRequest[];
  /** Adds a rule; rules are tried in the order they were added. */
  fail(rule: FaultRule): void;
  /** Drops every rule (requests pass through again); hung requests stay hung. */
  clear(): void;
  /** Releases hung requests by destroying their connections. */
  releaseHung(): void;
  /** How many requests (of `operation`, when given) were failed with a fault. */
  faults(operation?: string): number;
  /** Closes the server and every connection, hung ones included. */
  stop(): Promise<void>;
}

interface ActiveRule extends Required<Omit<FaultRule, 'operations' | 'bodyIncludes' | 'when'>> {
  operations: string[] | undefined;
  bodyIncludes: string | undefined;
  when: (() => boolean) | undefined;
}

const THROTTLE_TYPE = 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException';
const SERVER_ERROR_TYPE = 'com.amazonaws.dynamodb.v20120810#InternalServerError';

/**
 * Starts a {@link FaultProxy} on 127.0.0.1 (random port) in front of `target` (e.g. dynalite's
 * endpoint, or a JWKS server). DynamoDB errors are shaped as DynamoDB writes them
 * (`application/x-amz-json-1.0`, `__type`, `message`, `x-amzn-RequestId`), so the SDK's own
 * error parsing and retry classification run unchanged.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  let rules: ActiveRule[] = [];
  const hung = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let seq = 0;

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = req.headers['x-amz-target'];
    const operation =
      typeof target === 'string' ? (target.split('.').pop() ?? target) : (req.url ?? '/').split('?')[0]!;
    const rule = rules.find((r) => matches(r, operation, body));
    let fault: FaultMode | undefined;
    if (rule !== undefined) {
      if (rule.after > 0) rule.after -= 1;
      else {
        rule.times -= 1;
        fault = rule.mode;
      }
    }
    requests.push({ operation, fault });
    seq += 1;
    const requestId = `FAULTPROXY${String(seq).padStart(10, '0')}`;
    switch (fault) {
      case 'throttle':
        return sendAwsError(
          res,
          400,
          THROTTLE_TYPE,
          'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
          requestId,
        );
      case 'server-error':
        return sendAwsError(res, 500, SERVER_ERROR_TYPE, 'Internal server error', requestId);
      case 'hang':
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      case 'reset':
        req.socket.destroy();
        return;
      default:
        forward(req, res, body);
    }
  }

  function matches(rule: ActiveRule, operation: string, body: Buffer): boolean {
    if (rule.times <= 0) return false;
    if (rule.when !== undefined && !rule.when()) return false;
    if (rule.operations !== undefined && !rule.operations.includes(operation)) return false;
    if (rule.bodyIncludes !== undefined && !body.toString('utf8').includes(rule.bodyIncludes)) return false;
    return true;
  }

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const out = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    out.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail(rule) {
      rules.push({
        mode: rule.mode,
        times: rule.times ?? Number.POSITIVE_INFINITY,
        after: rule.after ?? 0,
        operations: rule.operations,
        bodyIncludes: rule.bodyIncludes,
        when: rule.when,
      });
    },
    clear() {
      rules = [];
    },
    releaseHung() {
      for (const res of hung) res.destroy();
      hung.clear();
    },
    faults(operation) {
      return requests.filter(
        (r) => r.fault !== undefined && (operation === undefined || r.operation === operation),
      ).length;
    },
    stop() {
      rules = [];
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

function sendAwsError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  requestId: string,
): void {
  const body = JSON.stringify({ __type: type, message });
  res
    .writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(Buffer.byteLength(body)),
      'x-amzn-requestid': requestId,
    })
    .end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
