import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type McpServerGrant, parseKeyring, verifyWorkerAssertion } from '@livekit-mcp-dispatch/contract';
import { DispatchMetadataError, openDispatchMetadata } from '../../src/open.js';
import { sealForTest } from './seal.js';

/** One scripted answer: a 200 with fresh metadata, or a problem. */
export type StandInStep = 'renew' | { status: number; code: string; headers?: Record<string, string> };

/** What the stand-in saw of one request. */
export interface StandInRequest {
  /** The verified assertion's claims, or undefined when it was refused. */
  claims: { iss: string; aud: string; sub: string; iat: number; exp: number; jti: string } | undefined;
  body: { metadata?: string; rejected?: unknown[] };
}

/**
 * A stand-in of `POST /v1/worker/credentials` (docs/api.md §9) on 127.0.0.1: a real HTTP server that
 * checks what the real endpoint checks first (the assertion with the contract's verifier, `aud` =
 * its own URL, an unused `jti`; the metadata opened as a worker would, `sub` = its `sid`; else 401
 * `invalid_worker_assertion` / `invalid_metadata`), then answers the next scripted step.
 */
export class CredentialsStandIn {
  readonly sid = `sid-${randomUUID()}`;
  script: StandInStep[] = [];
  servers: McpServerGrant[] = [];
  refreshInSeconds = 300;
  delayMs = 0;
  unavailable: unknown[] = [];
  readonly requests: StandInRequest[] = [];
  readonly #jtis = new Set<string>();
  #http: Server | undefined;
  url = '';

  constructor(
    readonly keyring: { current: string; keys: Record<string, string> },
    readonly agentName: string,
    readonly roomName: string,
  ) {}

  async start(): Promise<this> {
    this.#http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.#answer(req.headers.authorization ?? '', Buffer.concat(chunks).toString('utf8')).then(
          ({ status, body, headers }) => {
            res.writeHead(status, {
              'content-type': status === 200 ? 'application/json' : 'application/problem+json',
              ...headers,
            });
            res.end(JSON.stringify(body));
          },
        );
      });
    });
    await new Promise<void>((resolve) => this.#http?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}/v1/worker/credentials`;
    return this;
  }

  async close(): Promise<void> {
    this.#http?.closeAllConnections();
    await new Promise<void>((resolve) => this.#http?.close(() => resolve()));
  }

  /** Metadata as the server seals it for this session (`servers` default: the current ones). */
  metadata(servers: McpServerGrant[] = this.servers): Promise<string> {
    return sealForTest(this.keyring, {
      agentName: this.agentName,
      roomName: this.roomName,
      userId: 'alice',
      mcpServers: servers,
      sid: this.sid,
      refreshUrl: this.url,
      refreshInSeconds: this.refreshInSeconds,
    });
  }

  async #answer(
    authorization: string,
    text: string,
  ): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    let body: StandInRequest['body'] = {};
    try {
      body = JSON.parse(text);
    } catch {
      // an empty body is recorded as {}
    }
    const step = this.script.shift() ?? 'renew';
    const { keyring } = parseKeyring('standin', this.keyring);
    let claims: StandInRequest['claims'];
    try {
      claims = await verifyWorkerAssertion(authorization.replace(/^Bearer /, ''), {
        keyring: keyring!,
        audience: this.url,
      });
      if (claims.iss !== this.agentName || this.#jtis.has(claims.jti)) claims = undefined;
      else this.#jtis.add(claims.jti);
    } catch {
      claims = undefined;
    }
    this.requests.push({ claims, body });
    if (!claims) return { status: 401, body: { code: 'invalid_worker_assertion' } };
    try {
      const grant = await openDispatchMetadata(body.metadata ?? '', {
        keyring: this.keyring,
        agentName: this.agentName,
        roomName: this.roomName,
        now: new Date(claims.iat * 1000),
      });
      if (grant.sid !== claims.sub) return { status: 401, body: { code: 'invalid_metadata' } };
    } catch (error) {
      const reason = error instanceof DispatchMetadataError ? error.code : 'malformed';
      return { status: 401, body: { code: 'invalid_metadata', reason } };
    }
    if (step === 'renew') {
      return {
        status: 200,
        body: {
          metadata: await this.metadata(),
          ...(this.unavailable.length > 0 ? { unavailable: this.unavailable } : {}),
        },
      };
    }
    return {
      status: step.status,
      body: { status: step.status, code: step.code },
      headers: step.headers ?? {},
    };
  }
}
