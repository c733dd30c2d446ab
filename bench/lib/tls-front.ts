import { Agent, request } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A TLS-terminating forwarder on loopback: `https://127.0.0.1:<port>` in front of a plain-HTTP server. */
export interface TlsFront {
  url: string;
  /** TLS handshakes completed so far (each is one new client connection). */
  readonly handshakes: number;
  stop(): Promise<void>;
}

/**
 * Starts the forwarder with `tls` (key and certificate for 127.0.0.1) in front of `upstream`.
 * Each client pays a real handshake with the certificate it is given; the hop behind it is a
 * plain-HTTP loopback connection, so the upstream stand-in is reached as it was before.
 */
export async function startTlsFront(upstream: string, tls: { key: string; cert: string }): Promise<TlsFront> {
  const target = new URL(upstream);
  // No keep-alive behind the front: a reused socket the upstream closed at its idle timeout would
  // turn into a 502 (seen with the JWKS server's 5 s). A loopback connect per request, both sides alike.
  const agent = new Agent({ keepAlive: false, maxSockets: 64 });
  const server = createServer(tls, (req, res) => {
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
    req.pipe(out);
  });
  let handshakes = 0;
  server.on('secureConnection', () => {
    handshakes += 1;
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get handshakes() {
      return handshakes;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
