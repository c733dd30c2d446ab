import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Which DynamoDB request a gate holds: its operation and a predicate on its JSON body. */
export interface GateMatch {
  /** `X-Amz-Target` suffix: `PutItem`, `GetItem`, `Query`, … */
  operation: string;
  /** Tested on the request body as text (e.g. it names a key). */
  body: (text: string) => boolean;
  /** Matching requests to let through before the one held (default 0). */
  skip?: number;
}

/** One gate: holds the first matching request (after `skip`) until released. */
export interface Gate {
  readonly name: string;
  /** Resolves once the held request has arrived at the proxy. */
  arrived(): Promise<void>;
  /** Forwards the held request; resolves once its answer has been passed back in full. */
  release(): Promise<void>;
}

/** A loopback proxy in front of a DynamoDB endpoint that holds chosen requests. */
export interface HoldProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give the client under test. */
  url: string;
  /** Adds a gate; gates are matched in the order they were added, each holding one request. */
  gate(name: string, match: GateMatch): Gate;
  /** Drops every gate that has not caught a request yet, and releases the ones holding one. */
  openAll(): Promise<void>;
  stop(): Promise<void>;
}

interface GateState {
  name: string;
  match: GateMatch;
  skipped: number;
  held: (() => Promise<void>) | undefined;
  onArrive: (() => void)[];
  done: boolean;
}

/**
 * Starts a {@link HoldProxy} on 127.0.0.1 in front of `target` (dynalite's endpoint). A test
 * names the critical requests of two racing flows as gates, then releases them in the order of
 * one interleaving, waiting for each to arrive and to be answered before releasing the next:
 * every interleaving of the critical steps can so be run deterministically (a flow issues its
 * next critical request only after the previous one was answered, so any order that respects
 * each flow's own order is reachable). Requests no gate matches pass straight through.
 */
export async function startHoldProxy(target: string): Promise<HoldProxy> {
  const upstream = new URL(target);
  let gates: GateState[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const amzTarget = req.headers['x-amz-target'];
    const operation = typeof amzTarget === 'string' ? (amzTarget.split('.').pop() ?? '') : '';
    const text = body.toString('utf8');
    const gate = gates.find(
      (g) => !g.done && g.held === undefined && g.match.operation === operation && g.match.body(text),
    );
    if (gate !== undefined && gate.skipped < (gate.match.skip ?? 0)) {
      gate.skipped += 1;
      forward(req, res, body);
      return;
    }
    if (gate === undefined) {
      forward(req, res, body);
      return;
    }
    gate.held = () =>
      new Promise<void>((resolve) => {
        res.on('finish', () => resolve());
        res.on('close', () => resolve());
        forward(req, res, body);
      });
    for (const notify of gate.onArrive.splice(0)) notify();
  }

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const out = request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
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

  async function releaseGate(g: GateState): Promise<void> {
    if (g.done) return;
    if (g.held === undefined) {
      await new Promise<void>((resolve) => g.onArrive.push(resolve));
    }
    g.done = true;
    await g.held?.();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    gate(name, match) {
      const g: GateState = { name, match, skipped: 0, held: undefined, onArrive: [], done: false };
      gates.push(g);
      return {
        name,
        arrived: () =>
          g.held !== undefined || g.done
            ? Promise.resolve()
            : new Promise((resolve) => g.onArrive.push(resolve)),
        release: () => releaseGate(g),
      };
    },
    async openAll() {
      const waiting = gates.filter((g) => !g.done && g.held !== undefined);
      for (const g of gates) if (g.held === undefined) g.done = true;
      gates = [];
      await Promise.all(waiting.map((g) => releaseGate(g)));
    },
    stop() {
      gates = [];
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

/** Every order of the steps of two flows that keeps each flow's own order (interleavings). */
export function interleavings<T>(a: T[], b: T[]): T[][] {
  if (a.length === 0) return [b];
  if (b.length === 0) return [a];
  return [
    ...interleavings(a.slice(1), b).map((rest) => [a[0]!, ...rest]),
    ...interleavings(a, b.slice(1)).map((rest) => [b[0]!, ...rest]),
  ];
}

/** A body predicate: the request names this key attribute value (as the SDK writes it). */
export function namesKey(attribute: string, value: string): (text: string) => boolean {
  const needle = `"${attribute}":{"S":${JSON.stringify(value)}}`;
  return (text) => text.includes(needle);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
