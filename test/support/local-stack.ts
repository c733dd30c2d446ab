import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalServer, startLocalServer } from '../../functions/local.js';
import { TEST_LIVEKIT } from './fixtures.js';
import { type LiveKitStandIn, startLiveKitStandIn } from './livekit-standin.js';

/** What an outside client gets back: status, headers and the body, parsed when it is JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  json: any;
}

/** `npm start` as an outside client sees it: the local server over a LiveKit stand-in. */
export interface LocalStack {
  /** `http://127.0.0.1:<port>` */
  base: string;
  local: LocalServer;
  livekit: LiveKitStandIn;
  dataDir: string;
  /** A dev-issuer token (`npm run dev:token`). */
  token(req: { user: string; tenant?: string; admin?: boolean; superadmin?: boolean }): Promise<string>;
  /** One HTTP request; a non-string body is sent as JSON. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Answer>;
  stop(): Promise<void>;
}

/** Starts `startLocalServer` (what `npm start` runs) in a fresh DATA_DIR over the LiveKit stand-in. */
export async function startLocalStack(env: Record<string, string> = {}): Promise<LocalStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lkmcp-stack-'));
  const livekit = await startLiveKitStandIn(TEST_LIVEKIT);
  const local = await startLocalServer({
    PORT: '0',
    DATA_DIR: dataDir,
    LIVEKIT_URL: livekit.url,
    LIVEKIT_API_KEY: TEST_LIVEKIT.apiKey,
    LIVEKIT_API_SECRET: TEST_LIVEKIT.apiSecret,
    LOG_LEVEL: 'error',
    ...env,
  });
  const base = `http://127.0.0.1:${local.port}`;
  return {
    base,
    local,
    livekit,
    dataDir,
    token: (req) => local.mintToken!(req),
    async call(method, path, options = {}) {
      const headers: Record<string, string> = {};
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        headers['content-type'] = 'application/json';
      }
      Object.assign(headers, options.headers);
      const res = await fetch(base + path, { method, headers, body });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async stop() {
      await local.stop();
      await livekit.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asserts nothing; returns the problem fields a client reads (RFC 9457 + `code`). */
export function problemOf(answer: Answer): { status: number; code: string; contentType: string | null } {
  return { status: answer.status, code: answer.json?.code, contentType: answer.headers.get('content-type') };
}
