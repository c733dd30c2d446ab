/**
 * The address rule (docs/api.md §6): which IP addresses an MCP URL may reach, shared by the
 * server's admin check and the worker's connect-time check.
 */
/** One resolved address, as `dns.promises.lookup(host, { all: true })` returns it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has, A and AAAA (inject a fake in tests). */
export type LookupFn = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/**
 * Where an IP address belongs, for the MCP URL rule (docs/api.md §6). Anything but `public` is
 * refused. The one classifier of the project: the server's admin URL check and the worker's
 * connect-time check both use it.
 */
export type AddressClass =
  | 'public'
  | 'invalid'
  | 'unspecified'
  | 'this_network'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link_local'
  | 'metadata'
  | 'unique_local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'ipv4_mapped'
  | 'ipv4_compatible'
  | 'nat64_local'
  | 'nat64_non_public'
  | '6to4_non_public'
  | 'teredo';

type V4Rule = readonly [base: string, prefix: number, cls: AddressClass];

// IANA IPv4 special-purpose registry, plus everything a server-side request must not reach.
// Order matters: the first match wins, so narrow entries come before the ranges holding them.
const V4_RULES: readonly V4Rule[] = [
  ['169.254.169.254', 32, 'metadata'],
  ['169.254.170.2', 32, 'metadata'],
  ['100.100.100.200', 32, 'metadata'],
  ['255.255.255.255', 32, 'broadcast'],
  ['0.0.0.0', 32, 'unspecified'],
  ['0.0.0.0', 8, 'this_network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link_local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const V4_TABLE = V4_RULES.map(([base, prefix, cls]) => {
  const b = parseIPv4(base)!;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (b & mask) >>> 0, mask, cls };
});

/** Parses a strict dotted-quad IPv4 address (as a URL parser or resolver prints it) to a uint32. */
export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** Parses an IPv6 address (no zone id; an embedded dotted IPv4 tail allowed) to eight 16-bit groups. */
export function parseIPv6(text: string): number[] | null {
  let s = text.toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.length === 0 || s.length > 45 || !/^[0-9a-f:.]+$/.test(s)) return null;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 === null || lastColon < 1) return null;
    tail = [v4 >>> 16, v4 & 0xffff];
    const prefix = s.slice(0, lastColon + 1);
    s = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  if (head === null) return null;
  if (halves.length === 1) {
    const groups = [...head, ...tail];
    return groups.length === 8 ? groups : null;
  }
  const rest = parseGroups(halves[1]!);
  if (rest === null) return null;
  const fill = 8 - head.length - rest.length - tail.length;
  if (fill < 1) return null;
  return [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
}

function classifyV4(value: number): AddressClass {
  for (const rule of V4_TABLE) {
    if ((value & rule.mask) >>> 0 === rule.base) return rule.cls;
  }
  return 'public';
}

function v4Of(hi: number, lo: number): number {
  return ((hi << 16) >>> 0) + lo;
}

function classifyV6(g: number[]): AddressClass {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(8)) return 'unspecified';
  if (zeroUpTo(7) && g7 === 1) return 'loopback';
  if (zeroUpTo(5) && g5 === 0xffff) return 'ipv4_mapped';
  // ::ffff:0:a.b.c.d (SIIT translated) behaves like a mapped address.
  if (zeroUpTo(4) && g4 === 0xffff && g5 === 0) return 'ipv4_mapped';
  if (zeroUpTo(6)) return 'ipv4_compatible';
  if (g0 === 0x64 && g1 === 0xff9b) {
    if (g2 === 1) return 'nat64_local';
    if (g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
      return classifyV4(v4Of(g6, g7)) === 'public' ? 'public' : 'nat64_non_public';
    }
    return 'reserved';
  }
  if (
    g0 === 0xfd00 &&
    g1 === 0x0ec2 &&
    g2 === 0 &&
    g3 === 0 &&
    g4 === 0 &&
    g5 === 0 &&
    g6 === 0 &&
    g7 === 0x254
  ) {
    return 'metadata';
  }
  if ((g0 & 0xfe00) === 0xfc00) return 'unique_local';
  if ((g0 & 0xffc0) === 0xfe80) return 'link_local';
  // fec0::/10, deprecated site-local: as private as unique-local.
  if ((g0 & 0xffc0) === 0xfec0) return 'unique_local';
  if ((g0 & 0xff00) === 0xff00) return 'multicast';
  // Only global unicast (2000::/3) can be public; everything else is reserved or special.
  if ((g0 & 0xe000) !== 0x2000) return 'reserved';
  if (g0 === 0x2001 && g1 === 0) return 'teredo';
  if (g0 === 0x2001 && g1 === 0x0db8) return 'documentation';
  if (g0 === 0x2001 && g1 === 2 && g2 === 0) return 'benchmarking';
  // 2001::/23, IETF protocol assignments (ORCHID, AMT, benchmarking …): never an MCP server.
  if (g0 === 0x2001 && g1 < 0x0200) return 'reserved';
  if (g0 === 0x2002) return classifyV4(v4Of(g1, g2)) === 'public' ? 'public' : '6to4_non_public';
  // 3fff::/20 documentation (RFC 9637), 5f00::/16 SRv6 SIDs (RFC 9602).
  if (g0 === 0x3fff && (g1 & 0xf000) === 0) return 'documentation';
  if (g0 === 0x5f00) return 'reserved';
  return 'public';
}

/**
 * Classifies one IP address (IPv4 dotted quad or IPv6, brackets allowed). Only `public` may be
 * reached. IPv4-mapped and -compatible IPv6 are refused outright; NAT64 (64:ff9b::/96) and
 * 6to4 (2002::/16) are judged by the IPv4 address they embed.
 */
export function classifyAddress(address: string): AddressClass {
  const v4 = parseIPv4(address);
  if (v4 !== null) return classifyV4(v4);
  const v6 = parseIPv6(address);
  if (v6 !== null) return classifyV6(v6);
  return 'invalid';
}

/** True when the address may be reached by a server-side request. */
export function isPublicAddress(address: string): boolean {
  return classifyAddress(address) === 'public';
}

/**
 * Reads an IPv4 address in any spelling `inet_aton` accepts (`127.1`, `2130706433`, `0x7f.0.0.1`,
 * `0177.0.0.1`) and returns its dotted-quad form, or `undefined` when `text` is not one. The
 * WHATWG URL parser already does this for URL hosts; resolvers and raw strings need it here.
 */
export function canonicalIPv4(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
    else if (/^0[0-7]*$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^[1-9][0-9]*$/.test(part)) value = Number(part);
    else return undefined;
    if (!Number.isSafeInteger(value)) return undefined;
    values.push(value);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255) || last >= 256 ** (4 - values.length)) return undefined;
  let total = last;
  values.forEach((v, i) => {
    total += v * 256 ** (3 - i);
  });
  return [24, 16, 8, 0].map((shift) => Math.floor(total / 2 ** shift) % 256).join('.');
}

/**
 * Classifies an address literal in any spelling: dotted quad, `inet_aton` numeric forms, IPv6
 * (brackets and a zone id allowed).
 */
export function classifyAnySpelling(address: string): AddressClass {
  let text = address.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone >= 0 && text.includes(':')) text = text.slice(0, zone);
  const v4 = canonicalIPv4(text);
  return classifyAddress(v4 ?? text);
}

/** Runs `lookup(host)`, rejecting when it takes longer than `ms` (the timer is always cleared). */
export async function resolveWithTimeout(
  lookup: LookupFn,
  host: string,
  ms: number,
): Promise<readonly ResolvedAddress[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('resolver timed out')), ms);
  });
  try {
    return await Promise.race([lookup(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
