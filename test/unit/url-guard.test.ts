import { classifyAddress as contractClassify } from '@livekit-mcp-dispatch/contract';
import { UnsafeWorkerUrlError, classifyAddress as workerClassify } from '@livekit-mcp-dispatch/worker';
import { describe, expect, it } from 'vitest';
import type { DomainError } from '../../functions/core/errors.js';
import {
  checkMcpUrl,
  classifyAddress,
  type HostResolver,
  parseIPv6,
  type ResolvedAddress,
  UnsafeMcpUrlError,
} from '../../functions/core/url-guard.js';

const PUBLIC_V4 = '93.184.215.14';
const PUBLIC_V6 = '2606:2800:21f:cb07:6820:80da:af6b:8b2c';

/** A resolver that answers from a table and counts lookups; unknown names fail like NXDOMAIN. */
function tableResolver(table: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string): Promise<ResolvedAddress[]> => {
    calls.push(host);
    const answers = table[host];
    if (!answers) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

const resolver = tableResolver({
  'mcp.example.com': [PUBLIC_V4, PUBLIC_V6],
  'v4only.example.com': [PUBLIC_V4],
  'v6only.example.com': [PUBLIC_V6],
  'nat64-public.example.com': ['64:ff9b::5db8:d70e'],
  'mixed.example.com': [PUBLIC_V4, '10.0.0.5'],
  'mixed6.example.com': [PUBLIC_V6, 'fd12:3456::1'],
  'aaaa-private.example.com': ['fc00::1'],
  'aaaa-linklocal.example.com': ['fe80::1'],
  'aaaa-loopback.example.com': ['::1'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
  'mapped-public.example.com': ['::ffff:93.184.215.14'],
  'mapped-hex.example.com': ['::ffff:a9fe:a9fe'],
  'compat.example.com': ['::10.0.0.1'],
  'metadata.example.com': ['169.254.169.254'],
  'ec2-v6-metadata.example.com': ['fd00:ec2::254'],
  'cgnat.example.com': ['100.64.1.1'],
  'nat64-private.example.com': ['64:ff9b::a9fe:a9fe'],
  'sixtofour-private.example.com': ['2002:c0a8:0101::1'],
  'sixtofour-public.example.com': ['2002:5db8:d70e::1'],
  'empty.example.com': [],
  'garbage.example.com': ['not-an-ip'],
  '10.0.0.1.nip.io': ['10.0.0.1'],
  'rebind.example.com': ['127.0.0.1'],
});

const strict = { allowedPorts: [8443], allowInsecure: false, resolve: resolver };

const HOSTILE: string[] = [
  // schemes, userinfo, ports, junk
  'http://mcp.example.com/',
  'ftp://mcp.example.com/',
  'file:///etc/passwd',
  'gopher://mcp.example.com/',
  'javascript:alert(1)',
  'ws://mcp.example.com/',
  'https://user:pass@mcp.example.com/',
  'https://user@mcp.example.com/',
  'https://:pass@mcp.example.com/',
  'https://mcp.example.com:8080/',
  'https://mcp.example.com:22/',
  'not a url',
  '/relative/path',
  `https://mcp.example.com/${'a'.repeat(2100)}`,
  // loopback in every spelling
  'https://localhost/',
  'https://LOCALHOST./',
  'https://api.localhost/',
  'https://127.0.0.1/',
  'https://127.1/',
  'https://2130706433/',
  'https://0x7f000001/',
  'https://0x7f.1/',
  'https://0177.0.0.1/',
  'https://017700000001/',
  'https://%31%32%37.0.0.1/',
  'https://127。0。0。1/',
  'https://[::1]/',
  'https://[0:0:0:0:0:0:0:1]/',
  // unspecified, this network, broadcast, reserved
  'https://0/',
  'https://0.0.0.0/',
  'https://[::]/',
  'https://0.1.2.3/',
  'https://255.255.255.255/',
  'https://240.0.0.1/',
  // private, CGNAT, link-local, metadata
  'https://10.0.0.1/', // refused, never contacted
  'https://172.16.0.1/', // refused, never contacted
  'https://172.31.255.255/', // refused, never contacted
  'https://192.168.1.1/', // refused, never contacted
  'https://100.64.0.1/',
  'https://100.127.255.254/',
  'https://169.254.169.254/latest/meta-data/',
  'https://169.254.1.1/',
  'https://[fe80::1]/',
  'https://[fd00:ec2::254]/',
  'https://[fc00::1]/',
  'https://[fd12:3456:789a::1]/',
  'https://metadata.google.internal/computeMetadata/v1/',
  'https://metadata/',
  'https://service.internal/',
  'https://printer.local/',
  // multicast, documentation, benchmarking
  'https://224.0.0.1/',
  'https://239.255.255.250/',
  'https://[ff02::1]/',
  'https://192.0.2.1/',
  'https://198.51.100.7/',
  'https://203.0.113.9/',
  'https://198.18.0.1/',
  'https://[2001:db8::1]/',
  'https://192.0.0.170/',
  // IPv6 spellings embedding private IPv4
  'https://[::ffff:127.0.0.1]/',
  'https://[::ffff:7f00:1]/',
  'https://[0:0:0:0:0:ffff:169.254.169.254]/',
  'https://[::ffff:93.184.215.14]/',
  'https://[::127.0.0.1]/',
  'https://[::ffff:0:10.0.0.1]/',
  'https://[64:ff9b::10.0.0.1]/',
  'https://[64:ff9b::a9fe:a9fe]/',
  'https://[64:ff9b:1::1]/',
  'https://[2002:7f00:1::1]/',
  'https://[2002:c0a8:101::1]/',
  'https://[2001::1]/',
  // names resolving to unsafe answers
  'https://mixed.example.com/',
  'https://mixed6.example.com/',
  'https://aaaa-private.example.com/',
  'https://aaaa-linklocal.example.com/',
  'https://aaaa-loopback.example.com/',
  'https://mapped.example.com/',
  'https://mapped-public.example.com/',
  'https://mapped-hex.example.com/',
  'https://compat.example.com/',
  'https://metadata.example.com/',
  'https://ec2-v6-metadata.example.com/',
  'https://cgnat.example.com/',
  'https://nat64-private.example.com/',
  'https://sixtofour-private.example.com/',
  'https://10.0.0.1.nip.io/', // refused, never contacted
  'https://rebind.example.com/',
  'https://empty.example.com/',
  'https://garbage.example.com/',
  'https://nxdomain.example.com/',
  'https://intranet/',
];

describe('checkMcpUrl', () => {
  it(`refuses ${HOSTILE.length} hostile URLs with unsafe_mcp_url`, async () => {
    // Prepare
    expect(HOSTILE.length).toBeGreaterThanOrEqual(40);
    const accepted: string[] = [];

    // Act
    for (const url of HOSTILE) {
      try {
        await checkMcpUrl(url, strict);
        accepted.push(url);
      } catch (err) {
        // Assess (per URL)
        expect(err, url).toBeInstanceOf(UnsafeMcpUrlError);
        expect((err as DomainError).code).toBe('unsafe_mcp_url');
      }
    }

    // Assess
    expect(accepted).toEqual([]);
  });

  it.each([
    ['https://mcp.example.com/mcp', 'https://mcp.example.com/mcp'],
    ['https://MCP.Example.com:443/mcp?x=1#frag', 'https://mcp.example.com/mcp?x=1'],
    ['https://mcp.example.com:8443/sse', 'https://mcp.example.com:8443/sse'],
    ['https://v4only.example.com/', 'https://v4only.example.com/'],
    ['https://v6only.example.com/', 'https://v6only.example.com/'],
    ['https://nat64-public.example.com/', 'https://nat64-public.example.com/'],
    ['https://sixtofour-public.example.com/', 'https://sixtofour-public.example.com/'],
    [`https://${PUBLIC_V4}/mcp`, `https://${PUBLIC_V4}/mcp`],
    [`https://[${PUBLIC_V6}]/mcp`, `https://[${PUBLIC_V6}]/mcp`],
  ])('accepts the public URL %s', async (input, normalised) => {
    // Act
    const result = await checkMcpUrl(input, strict);

    // Assess
    expect(result).toBe(normalised);
  });

  it('checks every resolved address, not only the first', async () => {
    // Act
    const outcome = checkMcpUrl('https://mixed.example.com/', strict);

    // Assess
    await expect(outcome).rejects.toMatchObject({
      code: 'unsafe_mcp_url',
      reason: 'host resolves to a private address',
    });
  });

  it('refuses an AAAA-only private answer and an IPv4-mapped answer', async () => {
    // Act + Assess
    await expect(checkMcpUrl('https://aaaa-private.example.com/', strict)).rejects.toMatchObject({
      reason: 'host resolves to a unique-local address',
    });
    await expect(checkMcpUrl('https://mapped-public.example.com/', strict)).rejects.toMatchObject({
      reason: 'host resolves to an ipv4-mapped address',
    });
  });

  it('names the reason but never a resolved address', async () => {
    // Act
    const err = await checkMcpUrl('https://rebind.example.com/', strict).catch((e: unknown) => e);

    // Assess
    expect((err as Error).message).not.toContain('127.0.0.1');
    expect((err as DomainError).details).toEqual({ reason: 'host resolves to a loopback address' });
  });

  it('refuses a resolver that hangs, after the timeout', async () => {
    // Prepare
    const hanging: HostResolver = () => new Promise(() => {});

    // Act
    const outcome = checkMcpUrl('https://slow.example.com/', {
      ...strict,
      resolve: hanging,
      resolveTimeoutMs: 20,
    });

    // Assess
    await expect(outcome).rejects.toMatchObject({ reason: 'host does not resolve' });
  });

  it('does not resolve IP literals', async () => {
    // Prepare
    const r = tableResolver({});

    // Act
    await checkMcpUrl(`https://${PUBLIC_V4}/`, { ...strict, resolve: r });

    // Assess
    expect(r.calls).toEqual([]);
  });

  describe('with allowInsecure (dev)', () => {
    const dev = { allowedPorts: [], allowInsecure: true, resolve: resolver };

    it.each([
      'http://localhost:3000/mcp',
      'http://127.0.0.1:8931/mcp',
      'http://[::1]:9000/',
      'https://localhost/',
    ])('allows the loopback URL %s', async (url) => {
      // Act + Assess
      await expect(checkMcpUrl(url, dev)).resolves.toBe(new URL(url).href);
    });

    it.each([
      'http://mcp.example.com/',
      'http://10.0.0.1/', // refused, never contacted
      'http://169.254.169.254/',
      'http://user:pw@localhost/',
      'ftp://localhost/',
      'https://mcp.example.com:3000/',
    ])('still refuses %s', async (url) => {
      // Act + Assess
      await expect(checkMcpUrl(url, dev)).rejects.toBeInstanceOf(UnsafeMcpUrlError);
    });
  });
});

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['192.169.0.1', 'public'],
    ['127.255.255.254', 'loopback'],
    ['10.255.255.255', 'private'],
    ['172.15.255.255', 'public'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.10.0.0', 'this_network'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.251', 'multicast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:8.8.8.8', 'ipv4_mapped'],
    ['::8.8.8.8', 'ipv4_compatible'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b::192.168.0.1', 'nat64_non_public'],
    ['2002:0808:0808::1', 'public'],
    ['2002:0a00:0001::1', '6to4_non_public'],
    ['fd00:ec2::254', 'metadata'],
    ['FE80::1', 'link_local'],
    ['fec0::1', 'unique_local'],
    ['ff05::2', 'multicast'],
    ['2001:db8:1::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001:4860:4860::8888', 'public'],
    ['[2606:4700::1111]', 'public'],
    ['4000::1', 'reserved'],
    ['100::1', 'reserved'],
    ['01.2.3.4', 'invalid'],
    ['1.2.3', 'invalid'],
    ['1::2::3', 'invalid'],
    ['fe80::1%eth0', 'invalid'],
    ['', 'invalid'],
  ])('%s is %s', (address, expected) => {
    // Act + Assess
    expect(classifyAddress(address)).toBe(expected);
  });
});

describe('one classifier and two URL errors', () => {
  it("is the contract package's function on both sides, never a copy", () => {
    expect(classifyAddress).toBe(contractClassify);
    expect(workerClassify).toBe(contractClassify);
  });

  it("names the server's and the worker's URL errors differently, with one code", () => {
    const server = new UnsafeMcpUrlError('no host');
    const worker = new UnsafeWorkerUrlError('MCP URL has no host');
    expect(server.name).toBe('UnsafeMcpUrlError');
    expect(worker.name).toBe('UnsafeWorkerUrlError');
    expect(server).not.toBeInstanceOf(UnsafeWorkerUrlError);
    expect(worker.code).toBe(server.code);
  });
});

describe('parseIPv6', () => {
  it.each([
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]],
    ['::1.2.3.4', [0, 0, 0, 0, 0, 0, 0x0102, 0x0304]],
    ['1:2:3:4:5:6:7.8.9.10', [1, 2, 3, 4, 5, 6, 0x0708, 0x090a]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
  ])('parses %s', (text, groups) => {
    expect(parseIPv6(text)).toEqual(groups);
  });

  it.each(['1:2:3:4:5:6:7:8:9', ':1::', '1:::2', '12345::', '::1.2.3', '1.2.3.4', 'g::1'])(
    'rejects %s',
    (text) => {
      expect(parseIPv6(text)).toBeNull();
    },
  );
});
