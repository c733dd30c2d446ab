import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An HTTP forwarder that holds every request for a set time: a modeled network round trip. */
export interface DelayProxy {
  url: string;
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

/** Starts the forwarder on 127.0.0.1 in front of `upstream` (no delay until set). */
export async function startDelayProxy(upstream: string): Promise<DelayProxy> {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let delay = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        const out = request(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: target.host },
            agent,
          },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        out.on('error', (err) => res.writeHead(502).end(String(err)));
        out.end(Buffer.concat(chunks));
      }, delay);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setDelay(ms) {
      delay = ms;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
