import { lookup as dnsLookup } from 'node:dns/promises';
import {
  type AddressClass,
  classifyAnySpelling,
  type LookupFn,
  type ResolvedAddress,
  resolveWithTimeout,
  UNSAFE_MCP_URL_CODE,
} from '@livekit-mcp-dispatch/contract';

/** Options shared by the URL and host checks. */
export interface AddressGuardOptions {
  /**
   * Test-only: also accept `http:` and loopback hosts (127.0.0.0/8, ::1, `localhost`). Never set
   * it in production; nothing reads it from the environment.
   */
  allowLoopbackForTests?: boolean;
  /** Resolver; defaults to the system resolver (`getaddrinfo`, every address). */
  lookup?: LookupFn;
  /** How long the resolver may take before the host is refused. Default 3000 ms. */
  resolveTimeoutMs?: number;
}

/**
 * An MCP URL the worker will not connect to: not https, userinfo present, or a host that is or
 * resolves to a non-public address (docs/api.md §3, same rule as §6). The message names the host
 * and the reason, never the URL's path, query or any header. The server's admin check has its
 * own error (`UnsafeMcpUrlError`, a 400 problem); this one is the worker's.
 */
export class UnsafeWorkerUrlError extends Error {
  readonly code = UNSAFE_MCP_URL_CODE;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnsafeWorkerUrlError';
  }
}

function allowedClass(cls: AddressClass, options: AddressGuardOptions): boolean {
  return cls === 'public' || (options.allowLoopbackForTests === true && cls === 'loopback');
}

const systemLookup: LookupFn = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Resolves `hostname` and throws {@link UnsafeWorkerUrlError} unless every address it has is public
 * (or loopback, with `allowLoopbackForTests`). Returns the addresses it checked.
 */
export async function assertPublicHost(
  hostname: string,
  options: AddressGuardOptions = {},
): Promise<readonly ResolvedAddress[]> {
  let host = hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') throw new UnsafeWorkerUrlError('MCP URL has no host');
  const literalClass = classifyAnySpelling(host);
  if (literalClass !== 'invalid') {
    if (!allowedClass(literalClass, options)) {
      throw new UnsafeWorkerUrlError(`MCP host ${host} is a ${literalClass.replaceAll('_', '-')} address`);
    }
    return [{ address: host, family: host.includes(':') ? 6 : 4 }];
  }
  let answers: readonly ResolvedAddress[];
  try {
    answers = await resolveWithTimeout(
      options.lookup ?? systemLookup,
      host,
      options.resolveTimeoutMs ?? 3000,
    );
  } catch {
    throw new UnsafeWorkerUrlError(`MCP host ${host} does not resolve`);
  }
  if (!Array.isArray(answers) || answers.length === 0) {
    throw new UnsafeWorkerUrlError(`MCP host ${host} does not resolve`);
  }
  for (const answer of answers) {
    const cls = classifyAnySpelling(String(answer?.address ?? ''));
    if (!allowedClass(cls, options)) {
      throw new UnsafeWorkerUrlError(`MCP host ${host} resolves to a ${cls.replaceAll('_', '-')} address`);
    }
  }
  return answers;
}

/**
 * Checks an MCP URL right before connecting: `https:` (also `http:` with
 * `allowLoopbackForTests`), no userinfo, and a host whose every address passes
 * {@link assertPublicHost}. Returns the parsed URL.
 */
export async function assertPublicUrl(url: string | URL, options: AddressGuardOptions = {}): Promise<URL> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeWorkerUrlError('MCP URL is not an absolute URL');
  }
  const schemes = options.allowLoopbackForTests === true ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(parsed.protocol)) {
    throw new UnsafeWorkerUrlError(`MCP URL scheme ${parsed.protocol} is not allowed (https only)`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new UnsafeWorkerUrlError('MCP URL must not carry userinfo');
  }
  await assertPublicHost(parsed.hostname, options);
  return parsed;
}
