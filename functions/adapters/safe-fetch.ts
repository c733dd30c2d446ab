import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { DomainError } from '../core/errors.js';
import {
  checkMcpUrl,
  classifyAddress,
  type HostResolver,
  parseIPv4,
  parseIPv6,
  type ResolvedAddress,
  UnsafeMcpUrlError,
} from '../core/url-guard.js';

/** Default per-request budget (CONTRACT §8): connect, headers and body together. */
export const SAFE_FETCH_TIMEOUT_MS = 5_000;
/** Default largest body read (CONTRACT §8). */
export const SAFE_FETCH_MAX_BYTES = 256 * 1024;

/** Why an outbound request was refused or failed. Never carries the URL's query or any header. */
export type SafeFetchReason = 'unsafe_url' | 'redirect' | 'timeout' | 'too_large' | 'network';

/** An outbound request to a hostile URL was refused or failed; `reason` says which. */
export class SafeFetchError extends DomainError {
  readonly reason: SafeFetchReason;
  constructor(reason: SafeFetchReason, message: string, options?: { cause?: unknown }) {
    super('outbound_request_failed', message, { ...options, details: { reason } });
    this.reason = reason;
  }
}

/** Options of {@link createSafeFetch}. */
export interface SafeFetchOptions {
  /** Ports allowed besides 443 (`MCP_ALLOWED_PORTS`). */
  allowedPorts: readonly number[];
  /** `ALLOW_INSECURE_MCP_URLS`: also `http://localhost` and loopback hosts. */
  allowInsecure: boolean;
  /** The resolver the URL rule checks with; the connection goes to the address it answered. */
  resolve: HostResolver;
  timeoutMs?: number;
  maxBytes?: number;
  /** Extra trusted roots (PEM), for tests that serve TLS on loopback. */
  ca?: string | readonly string[];
  /**
   * Test seam: where to dial for a checked address (default: that address). Tests map a
   * public-looking checked address to a loopback server so nothing leaves the machine.
   */
  dialAddress?: (checked: ResolvedAddress) => ResolvedAddress;
}

/** The subset of fetch's init that oauth4webapi's `customFetch` passes. */
export interface SafeFetchInit {
  method?: string;
  headers?: Record<string, string> | [string, string][] | Headers;
  body?: string | URLSearchParams | Uint8Array | null | undefined | unknown;
  signal?: AbortSignal | null | undefined;
  redirect?: string;
}

/** A fetch for URLs someone else chose: usable as oauth4webapi's `customFetch`. */
export type SafeFetch = (url: string, init?: SafeFetchInit) => Promise<Response>;

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function isLiteral(host: string): boolean {
  return parseIPv4(host) !== null || parseIPv6(host) !== null;
}

/**
 * Checks `raw` with the §6 rule and returns the URL plus the one address to connect to, which is
 * an address the rule itself saw: the resolver is asked exactly once per request.
 */
async function checkAndPin(
  raw: string,
  options: SafeFetchOptions,
): Promise<{ url: URL; address: ResolvedAddress }> {
  const answers: ResolvedAddress[] = [];
  const recording: HostResolver = async (host) => {
    const result = await options.resolve(host);
    if (Array.isArray(result)) answers.push(...result);
    return result;
  };
  let href: string;
  try {
    href = await checkMcpUrl(raw, {
      allowedPorts: options.allowedPorts,
      allowInsecure: options.allowInsecure,
      resolve: recording,
    });
  } catch (error) {
    const reason = error instanceof UnsafeMcpUrlError ? error.reason : 'refused';
    throw new SafeFetchError('unsafe_url', `The URL is not allowed: ${reason}.`);
  }
  const url = new URL(href);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isLiteral(host)) return { url, address: { address: host, family: host.includes(':') ? 6 : 4 } };
  const first = answers[0];
  if (first !== undefined) return { url, address: first };
  // checkMcpUrl admits `localhost` in dev without resolving it: resolve it here, loopback only.
  let local: readonly ResolvedAddress[];
  try {
    local = await recording(host);
  } catch {
    throw new SafeFetchError('unsafe_url', 'The URL is not allowed: host does not resolve.');
  }
  const loopback = local.find((a) => classifyAddress(String(a?.address ?? '')) === 'loopback');
  if (loopback === undefined || local.some((a) => classifyAddress(String(a?.address ?? '')) !== 'loopback')) {
    throw new SafeFetchError('unsafe_url', 'The URL is not allowed: localhost is not loopback.');
  }
  return { url, address: loopback };
}

function toHeaderRecord(headers: SafeFetchInit['headers']): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return { ...headers };
}

function toBody(body: SafeFetchInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  throw new SafeFetchError('network', 'Unsupported request body.');
}

/**
 * Builds a fetch that applies CONTRACT §8's outbound rule to every URL: the §6 URL rule (https
 * only outside dev, no userinfo, port 443 or an allowed one, every resolved address public),
 * then a connection to the very address that was checked (the socket's `lookup` returns it, so
 * no second resolution can rebind the name; SNI and `Host` keep the name), no redirect followed
 * (a 3xx is an error), a deadline for the whole exchange and a cap on the body read.
 */
export function createSafeFetch(options: SafeFetchOptions): SafeFetch {
  const timeoutMs = options.timeoutMs ?? SAFE_FETCH_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? SAFE_FETCH_MAX_BYTES;
  return async (raw, init = {}) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([deadline, init.signal]) : deadline;
    const { url, address } = await checkAndPin(raw, options);
    const dial = options.dialAddress ? options.dialAddress(address) : address;
    const lookup: LookupFunction = (_host, lookupOptions, callback) => {
      if ((lookupOptions as { all?: boolean }).all) {
        (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [dial]);
      } else {
        callback(null, dial.address, dial.family);
      }
    };
    const body = toBody(init.body);
    const headers = toHeaderRecord(init.headers);
    if (body !== undefined) headers['content-length'] = String(body.length);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<Response>((resolvePromise, reject) => {
      let settled = false;
      const fail = (error: SafeFetchError) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(error);
      };
      const onAbort = () =>
        fail(
          deadline.aborted
            ? new SafeFetchError('timeout', `The server did not answer within ${timeoutMs} ms.`)
            : new SafeFetchError('network', 'The request was aborted.'),
        );
      const req = send({
        protocol: url.protocol,
        hostname,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: init.method ?? 'GET',
        headers,
        lookup,
        // A literal address gets no SNI (RFC 6066 §3); a name keeps it so the certificate matches.
        servername: isLiteral(hostname) ? undefined : hostname,
        ca: options.ca === undefined ? undefined : [options.ca].flat(),
        agent: false,
      });
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (cause) =>
        fail(new SafeFetchError('network', 'The server could not be reached.', { cause })),
      );
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          fail(new SafeFetchError('redirect', `The server answered ${status}; redirects are not followed.`));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? Number.NaN);
        if (declared > maxBytes) {
          fail(new SafeFetchError('too_large', `The answer is larger than ${maxBytes} bytes.`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            fail(new SafeFetchError('too_large', `The answer is larger than ${maxBytes} bytes.`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (cause) => fail(new SafeFetchError('network', 'The answer was cut off.', { cause })));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of [value].flat()) responseHeaders.append(name, v);
          }
          const payload = NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks);
          resolvePromise(
            new Response(payload, { status, statusText: res.statusMessage ?? '', headers: responseHeaders }),
          );
        });
      });
      req.end(body);
    });
  };
}
