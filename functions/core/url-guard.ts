import {
  type AddressClass,
  classifyAddress,
  parseIPv4,
  parseIPv6,
  type ResolvedAddress,
  resolveWithTimeout,
  UNSAFE_MCP_URL_CODE,
} from '@livekit-mcp-dispatch/contract';
import { DomainError } from './errors.js';

// The address classifier has one home, the contract package, so the admin write and the worker's
// connect-time check apply the same rules.
export { classifyAddress, isPublicAddress, parseIPv4, parseIPv6 } from '@livekit-mcp-dispatch/contract';
export type { AddressClass, ResolvedAddress };

/** Resolves a host name to every address it has (A and AAAA). Injected by the composition root. */
export type HostResolver = (host: string) => Promise<ResolvedAddress[]>;

/** Options of {@link checkMcpUrl}. */
export interface UrlGuardOptions {
  /** Ports allowed besides 443 (`MCP_ALLOWED_PORTS`). */
  allowedPorts: readonly number[];
  /** Dev only (`ALLOW_INSECURE_MCP_URLS`): also allow `http://localhost` and loopback hosts, any port. */
  allowInsecure: boolean;
  resolve: HostResolver;
  /** How long the resolver may take; a slower answer is refused. Default 3000 ms. */
  resolveTimeoutMs?: number;
}

/** The URL is refused (400 `unsafe_mcp_url`); `reason` says why, without any resolved address. */
export class UnsafeMcpUrlError extends DomainError {
  readonly reason: string;
  constructor(reason: string) {
    super(UNSAFE_MCP_URL_CODE, `The MCP URL is not allowed: ${reason}.`, { details: { reason } });
    this.reason = reason;
  }
}

/** Longest MCP URL accepted. */
export const MAX_MCP_URL_LENGTH = 2048;

// Host names that name the machine itself, a cloud metadata service, or a private namespace.
const BLOCKED_NAMES = new Set(['localhost', 'metadata', 'metadata.google.internal', 'instance-data']);
const BLOCKED_SUFFIXES = [
  '.localhost',
  '.internal',
  '.local',
  '.localdomain',
  '.home.arpa',
  '.arpa',
  '.test',
  '.invalid',
];

function describe(cls: AddressClass): string {
  const name = cls.replaceAll('_', '-');
  return /^([aeio]|u(?!ni))/.test(name) ? `an ${name}` : `a ${name}`;
}

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const literal = host.startsWith('[') ? host.slice(1, -1) : host;
  return (
    (parseIPv4(literal) !== null || parseIPv6(literal) !== null) && classifyAddress(literal) === 'loopback'
  );
}

/**
 * Checks an MCP server URL before it is stored (docs/api.md §6) and returns it normalised by the
 * WHATWG URL parser (which also turns decimal, octal and hex IPv4 spellings into dotted quads,
 * so they meet the address rules). https only, no userinfo, port 443 or one of `allowedPorts`,
 * and the host, and every address it resolves to, must be public.
 *
 * This guards the admin write; DNS can change afterwards, so the worker checks the resolved
 * address again when it connects. Throws {@link UnsafeMcpUrlError}.
 */
export async function checkMcpUrl(raw: string, options: UrlGuardOptions): Promise<string> {
  if (typeof raw !== 'string' || raw.length === 0) throw new UnsafeMcpUrlError('not a URL');
  if (raw.length > MAX_MCP_URL_LENGTH)
    throw new UnsafeMcpUrlError(`longer than ${MAX_MCP_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeMcpUrlError('not an absolute URL');
  }
  if (url.username !== '' || url.password !== '') throw new UnsafeMcpUrlError('userinfo is not allowed');
  url.hash = '';

  const hostname = url.hostname.toLowerCase();
  // A trailing dot names the same host ("localhost." is localhost).
  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (host.length === 0) throw new UnsafeMcpUrlError('no host');

  if (
    options.allowInsecure &&
    isLoopbackHost(host) &&
    (url.protocol === 'http:' || url.protocol === 'https:')
  ) {
    return url.href;
  }
  if (url.protocol !== 'https:') throw new UnsafeMcpUrlError('only https URLs are allowed');
  if (url.port !== '' && !options.allowedPorts.includes(Number(url.port))) {
    throw new UnsafeMcpUrlError(`port ${url.port} is not allowed`);
  }

  const literal = host.startsWith('[') ? host.slice(1, -1) : host;
  if (parseIPv4(literal) !== null || parseIPv6(literal) !== null) {
    const cls = classifyAddress(literal);
    if (cls !== 'public') throw new UnsafeMcpUrlError(`host is ${describe(cls)} address`);
    return url.href;
  }
  // WHATWG URL accepts some hosts a resolver would still read as numbers; refuse them.
  if (/^[0-9.]+$/.test(host) || /^0x/i.test(host.split('.').at(-1) ?? '')) {
    throw new UnsafeMcpUrlError('host is not a valid name');
  }
  if (BLOCKED_NAMES.has(host) || BLOCKED_SUFFIXES.some((s) => host.endsWith(s))) {
    throw new UnsafeMcpUrlError('host names a local or metadata service');
  }
  if (!host.includes('.')) throw new UnsafeMcpUrlError('host must be a fully qualified name');

  let answers: readonly ResolvedAddress[];
  try {
    answers = await resolveWithTimeout(options.resolve, host, options.resolveTimeoutMs ?? 3000);
  } catch {
    throw new UnsafeMcpUrlError('host does not resolve');
  }
  if (!Array.isArray(answers) || answers.length === 0) throw new UnsafeMcpUrlError('host does not resolve');
  for (const answer of answers) {
    const cls = classifyAddress(String(answer?.address ?? ''));
    if (cls !== 'public') throw new UnsafeMcpUrlError(`host resolves to ${describe(cls)} address`);
  }
  return url.href;
}
