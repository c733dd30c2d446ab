import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEvent } from 'livekit-server-sdk';
import { WebhookReceiver } from 'livekit-server-sdk';

/** A received webhook, after its signature was checked. */
export interface SinkEvent {
  event: WebhookEvent;
  at: Date;
}

/** A tiny loopback receiver that verifies LiveKit's signed webhooks (never skipAuth). */
export interface WebhookSink {
  url: string;
  events: SinkEvent[];
  /** Requests whose signature did not verify. */
  rejected: number;
  /** Resolves with the first verified event matching `predicate`. */
  waitFor(predicate: (event: WebhookEvent) => boolean, timeoutMs?: number): Promise<WebhookEvent>;
  stop(): Promise<void>;
}

/** Starts a {@link WebhookSink} on 127.0.0.1 at a free port, path `/v1/livekit/webhook`. */
export async function startWebhookSink(apiKey: string, apiSecret: string): Promise<WebhookSink> {
  const receiver = new WebhookReceiver(apiKey, apiSecret);
  const events: SinkEvent[] = [];
  const waiters = new Set<() => void>();
  const sink = { rejected: 0 };

  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      const event = await receiver.receive(Buffer.concat(chunks).toString('utf8'), req.headers.authorization);
      events.push({ event, at: new Date() });
      for (const wake of waiters) wake();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } catch {
      sink.rejected += 1;
      res.writeHead(401).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1/livekit/webhook`,
    events,
    get rejected() {
      return sink.rejected;
    },
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find((e) => predicate(e.event));
          if (!found) return false;
          cleanup();
          resolve(found.event);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching webhook within ${timeoutMs} ms (got ${events.length} events)`));
        }, timeoutMs);
        const wake = () => void check();
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        waiters.add(wake);
        check();
      });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
