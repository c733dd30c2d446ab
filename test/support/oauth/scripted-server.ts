import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCertificate } from './tls.js';

/** One scripted answer: a JSON document (status 200 unless given), optionally late. */
export interface ScriptedAnswer {
  status?: number;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** A loopback server answering from a per-test table of `METHOD path` → answer; records each hit. */
export interface ScriptedServer {
  port: number;
  origin: string;
  routes: Map<string, ScriptedAnswer | ((req: IncomingMessage, body: string) => ScriptedAnswer)>;
  hits: string[];
  stop(): Promise<void>;
}

/** Starts a {@link ScriptedServer}, over TLS when a certificate is given. */
export async function startScriptedServer(tls?: TestCertificate): Promise<ScriptedServer> {
  const routes: ScriptedServer['routes'] = new Map();
  const hits: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = `${req.method} ${(req.url ?? '/').split('?')[0]}`;
      hits.push(key);
      const route = routes.get(key);
      const answer = typeof route === 'function' ? route(req, Buffer.concat(chunks).toString('utf8')) : route;
      const send = () => {
        if (answer === undefined) {
          res.writeHead(404).end();
          return;
        }
        const body = answer.body ?? JSON.stringify(answer.json ?? {});
        res
          .writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
          .end(body);
      };
      if (answer?.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
    : createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    routes,
    hits,
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
