/**
 * A counting front for `POST /v1/worker/credentials` (docs/api.md §9): a loopback HTTP proxy that
 * forwards every request to our local server unchanged and records each renewal's answer status
 * and its worker assertion's `sub` (the session id, which is not a secret; the assertion itself is
 * never kept). The renewal scenarios' local server seals this proxy's URL as `refresh_url`
 * (PUBLIC_BASE_URL), so every renewal a worker makes passes through it and is counted at the
 * endpoint, not inferred from a worker's log.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One renewal as the endpoint answered it. */
export interface Renewal {
  /** The worker assertion's `sub`: the session id. */
  sid: string | null;
  status: number;
  /** The problem's `code` on a non-2xx answer (e.g. `session_ended`). */
  code?: string;
  at: number;
}

export interface CredentialsCounter {
  /** The proxy's base URL: set it as the local server's PUBLIC_BASE_URL. */
  url: string;
  renewals: Renewal[];
  /** Where to forward (the local server's base URL); set once that server is up. */
  setTarget(url: string): void;
  stop(): Promise<void>;
}

function assertionSub(req: IncomingMessage): string | null {
  const auth = req.headers.authorization ?? '';
  const payload = auth.startsWith('Bearer ') ? auth.slice(7).split('.')[1] : undefined;
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startCredentialsCounter(): Promise<CredentialsCounter> {
  const renewals: Renewal[] = [];
  let target = '';
  const server = createServer((req, res) => {
    void (async () => {
      const input = await body(req);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          (e): e is [string, string] =>
            typeof e[1] === 'string' && e[0] !== 'host' && e[0] !== 'content-length',
        ),
      );
      const answer = await fetch(`${target}${req.url ?? '/'}`, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : input,
      });
      const output = Buffer.from(await answer.arrayBuffer());
      if (req.method === 'POST' && req.url?.startsWith('/v1/worker/credentials')) {
        let code: string | undefined;
        if (answer.status >= 300) {
          try {
            code = (JSON.parse(output.toString('utf8')) as { code?: string }).code;
          } catch {
            code = undefined;
          }
        }
        renewals.push({ sid: assertionSub(req), status: answer.status, code, at: Date.now() });
      }
      const out: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'content-encoding') out[k] = v;
      });
      res.writeHead(answer.status, out).end(output);
    })().catch((error: unknown) => {
      res.writeHead(502).end(String((error as Error).message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    renewals,
    setTarget(url) {
      target = url;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
