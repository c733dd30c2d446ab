import { canonicalIPv4, classifyAddress, classifyAnySpelling } from '@livekit-mcp-dispatch/contract';
import { describe, expect, it } from 'vitest';
import { assertPublicHost, assertPublicUrl, UnsafeWorkerUrlError } from '../src/address-guard.js';
import { classifyAddress as workerClassify } from '../src/index.js';

const TABLE: ReadonlyArray<[string, string]> = [
  ['8.8.8.8', 'public'],
  ['127.0.0.1', 'loopback'],
  ['127.1', 'loopback'],
  ['2130706433', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['0x7f.0.0.1', 'loopback'],
  ['0177.0.0.01', 'loopback'],
  ['017700000001', 'loopback'],
  ['10.0.0.1', 'private'],
  ['0xa.0.0.1', 'private'],
  ['172.16.5.4', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['169.254.169.254', 'metadata'],
  ['169.254.1.1', 'link_local'],
  ['224.0.0.1', 'multicast'],
  ['0.0.0.0', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['::ffff:127.0.0.1', 'ipv4_mapped'],
  ['::ffff:8.8.8.8', 'ipv4_mapped'],
  ['::ffff:7f00:1', 'ipv4_mapped'],
  ['fc00::1', 'unique_local'],
  ['fd00:ec2::254', 'metadata'],
  ['fe80::1%eth0', 'link_local'],
  ['ff02::1', 'multicast'],
  ['64:ff9b::8.8.8.8', 'public'],
  ['64:ff9b::10.0.0.1', 'nat64_non_public'],
  ['2002:0a00:0001::1', '6to4_non_public'],
  ['2001:db8::1', 'documentation'],
  ['2606:4700:4700::1111', 'public'],
  ['256.1.1.1', 'invalid'],
  ['1.2.3.4.5', 'invalid'],
  ['example.com', 'invalid'],
];

describe('classifyAnySpelling', () => {
  it.each(TABLE)('classifies %s as %s (same table as the Python tests)', (address, cls) => {
    expect(classifyAnySpelling(address)).toBe(cls);
  });
});

describe('canonicalIPv4', () => {
  it.each([
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.0x0.0.01', '127.0.0.1'],
    ['0300.0250.1.1', '192.168.1.1'],
    ['4294967295', '255.255.255.255'],
  ])('reads %s as %s', (text, quad) => {
    expect(canonicalIPv4(text)).toBe(quad);
  });

  it.each(['4294967296', '1.256.1.1', '09.1.1.1', '0xg', 'a.b.c.d', '1..1', ''])('refuses %j', (text) => {
    expect(canonicalIPv4(text)).toBeUndefined();
  });
});

describe('one classifier for the server and the worker', () => {
  it("is the contract package's function, re-exported by the worker package", () => {
    // A copy could drift; both sides import the contract's classifier (the server side is
    // checked in test/unit/url-guard.test.ts).
    expect(workerClassify).toBe(classifyAddress);
  });
});

describe('assertPublicHost', () => {
  it('accepts a host whose every address is public', async () => {
    const lookup = async () => [
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ];
    await expect(assertPublicHost('mcp.example.com', { lookup })).resolves.toHaveLength(2);
  });

  it.each([
    [['93.184.215.14', '10.1.2.3'], 'private'],
    [['::ffff:169.254.169.254'], 'ipv4-mapped'],
    [['fd00:ec2::254'], 'metadata'],
    [['100.64.1.1'], 'cgnat'],
  ])('refuses a host resolving to %j', async (answers, cls) => {
    const lookup = async () => answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    await expect(assertPublicHost('mcp.example.com', { lookup })).rejects.toThrow(
      new UnsafeWorkerUrlError(`MCP host mcp.example.com resolves to a ${cls} address`),
    );
  });

  it('refuses a host that does not resolve', async () => {
    const lookup = async () => {
      throw new Error('ENOTFOUND');
    };
    await expect(assertPublicHost('nowhere.example', { lookup })).rejects.toThrow('does not resolve');
  });

  it('lets loopback through only with the test-only option', async () => {
    const lookup = async () => [{ address: '127.0.0.1', family: 4 }];
    await expect(assertPublicHost('localhost', { lookup })).rejects.toThrow('loopback');
    await expect(
      assertPublicHost('localhost', { lookup, allowLoopbackForTests: true }),
    ).resolves.toHaveLength(1);
    await expect(assertPublicHost('10.0.0.1', { allowLoopbackForTests: true })).rejects.toThrow('private');
  });
});

describe('assertPublicUrl', () => {
  it.each([
    ['http://mcp.example.com/mcp', 'scheme http: is not allowed'],
    ['https://user:pw@mcp.example.com/mcp', 'userinfo'],
    ['https://0x7f.1/mcp', 'loopback'],
    ['https://2130706433/mcp', 'loopback'],
    ['https://0177.0.0.1/mcp', 'loopback'],
    ['https://[::ffff:7f00:1]/mcp', 'ipv4-mapped'],
    ['https://[fd00:ec2::254]/', 'metadata'],
    ['https://169.254.169.254/latest', 'metadata'],
    ['not a url', 'not an absolute URL'],
  ])('refuses %s', async (url, message) => {
    const lookup = async () => [{ address: '93.184.215.14', family: 4 }];
    await expect(assertPublicUrl(url, { lookup })).rejects.toThrow(message);
  });

  it('accepts an https URL on a public host', async () => {
    const lookup = async () => [{ address: '93.184.215.14', family: 4 }];
    await expect(assertPublicUrl('https://mcp.example.com/mcp', { lookup })).resolves.toBeInstanceOf(URL);
  });
});
