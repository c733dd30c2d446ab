import { describe, expect, it } from 'vitest';
import { tenantBodySchema } from '../../functions/core/admin-input.js';
import { changedCatalogFields } from '../../functions/core/catalog-audit.js';
import { returnUrlProblem } from '../../functions/core/catalog-input.js';
import {
  storedCatalog,
  storedReturnUrls,
  UnsafeOAuthUrlError,
} from '../../functions/core/catalog-settings.js';
import { DomainError, ValidationError } from '../../functions/core/errors.js';
import type { CatalogServer } from '../../functions/core/model.js';
import { createSecretBox } from '../../functions/core/sealing.js';
import { UnsafeMcpUrlError, type UrlGuardOptions } from '../../functions/core/url-guard.js';
import { validate } from '../../functions/http/validate.js';
import { testKeyring } from '../support/fixtures.js';

const box = createSecretBox(testKeyring('storage-catalog'));
const TOKEN = 'static-SECRET-51a7c0';
const TOKEN_2 = 'static-SECRET-2-9e1d';
const CLIENT_SECRET = 'client-SECRET-77b2';
const HEADER = 'hdr-SECRET-4c1f';

// A fixed resolver (no network): public names, one private, one unknown.
const guard: UrlGuardOptions = {
  allowedPorts: [],
  allowInsecure: false,
  resolve: async (host) => {
    const table: Record<string, string> = {
      'mcp.example.com': '93.184.215.14',
      'other.example.com': '93.184.215.15',
      'as.example.com': '93.184.215.20',
      'intranet.example.com': '10.0.0.7',
    };
    const address = table[host];
    if (address === undefined) throw new Error('ENOTFOUND');
    return [{ address, family: 4 }];
  },
};
const deps = { secretBox: box, urlGuard: guard };
const binding = { tenantId: 'acme', mcpName: 'mcp' };

/** The failing paths of a 422. */
const pathsOf = (err: unknown): string[] =>
  (((err as ValidationError).details?.errors ?? []) as { path: string }[]).map((e) => e.path);

/** The 422 paths of a tenant body (parsed from JSON text, as the admin API reads it). */
function refusedPaths(body: unknown): string[] {
  try {
    validate(tenantBodySchema, JSON.parse(JSON.stringify(body)));
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return pathsOf(err);
  }
  throw new Error('expected a ValidationError');
}

const entry = (over: Record<string, unknown> = {}) => ({
  name: 'docs',
  url: 'https://mcp.example.com/mcp',
  auth: { type: 'none' },
  ...over,
});
const body = (servers: unknown[], more: Record<string, unknown> = {}) => ({
  name: 'T',
  mcp_servers: servers,
  ...more,
});

/** Builds the stored catalog of a validated body. */
async function build(servers: unknown[], old?: CatalogServer[], b = binding) {
  const parsed = validate(tenantBodySchema, body(servers));
  return storedCatalog(deps, parsed.mcp_servers, old, b);
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error('expected a refusal');
}

describe('catalog input: the schema (422 invalid_request)', () => {
  it.each([
    ['an eighth server', Array.from({ length: 8 }, (_, i) => entry({ name: `s${i}` })), ['mcp_servers']],
    ['a name with capitals', [entry({ name: 'Docs' })], ['mcp_servers.0.name']],
    ['a name of 33 characters', [entry({ name: 'a'.repeat(33) })], ['mcp_servers.0.name']],
    ['an empty name', [entry({ name: '' })], ['mcp_servers.0.name']],
    ['no url', [{ name: 'docs', auth: { type: 'none' } }], ['mcp_servers.0.url']],
    ['no auth', [{ name: 'docs', url: 'https://mcp.example.com/' }], ['mcp_servers.0.auth']],
    ['an unknown auth type', [entry({ auth: { type: 'basic' } })], ['mcp_servers.0.auth.type']],
    ['a token on a none server', [entry({ auth: { type: 'none', token: TOKEN } })], ['mcp_servers.0.auth']],
    [
      'a static token with a space',
      [entry({ auth: { type: 'static', token: 'a b' } })],
      ['mcp_servers.0.auth.token'],
    ],
    [
      'a bad OAuth scope',
      [entry({ auth: { type: 'oauth', scopes: ['a"b'] } })],
      ['mcp_servers.0.auth.scopes.0'],
    ],
    [
      'a client_id with a newline',
      [entry({ auth: { type: 'oauth', client_id: 'a\nb', issuer: 'https://as.example.com' } })],
      ['mcp_servers.0.auth.client_id'],
    ],
    ['an http icon', [entry({ icon_url: 'http://cdn.example.com/i.png' })], ['mcp_servers.0.icon_url']],
    [
      'an icon with userinfo',
      [entry({ icon_url: 'https://u:p@cdn.example.com/i.png' })],
      ['mcp_servers.0.icon_url'],
    ],
    [
      'a display name with a control character',
      [entry({ display_name: 'Do\u0007cs' })],
      ['mcp_servers.0.display_name'],
    ],
    [
      'an Authorization header',
      [entry({ headers: { Authorization: 'Bearer x' } })],
      ['mcp_servers.0.headers.Authorization'],
    ],
    [
      'a header value with CR LF',
      [entry({ headers: { 'X-Key': 'a\r\nHost: evil' } })],
      ['mcp_servers.0.headers.X-Key'],
    ],
    ['webhook not a boolean', [entry({ webhook: 'yes' })], ['mcp_servers.0.webhook']],
    ['an unknown field', [entry({ colour: 'red' })], ['mcp_servers.0']],
  ])('refuses %s', (_what, servers, paths) => {
    expect(refusedPaths(body(servers))).toEqual(paths);
  });

  it('refuses an own __proto__ header (JSON.parse makes it a key)', () => {
    const raw = `{"name":"T","mcp_servers":[{"name":"docs","url":"https://mcp.example.com/","auth":{"type":"none"},"headers":{"__proto__":"x"}}]}`;
    let paths: string[] = [];
    try {
      validate(tenantBodySchema, JSON.parse(raw));
    } catch (err) {
      paths = pathsOf(err);
    }
    expect(paths).toEqual(['mcp_servers.0.headers.__proto__']);
  });

  it('refuses an eleventh return URL', () => {
    const urls = Array.from({ length: 11 }, (_, i) => `https://app.example.com/cb${i}`);
    expect(refusedPaths({ name: 'T', oauth_return_urls: urls })).toEqual(['oauth_return_urls']);
  });
});

describe('catalog input: names and OAuth clients (422 invalid_request)', () => {
  it.each([
    ['the name of mcp', [entry({ name: 'mcp' })], binding, ['mcp_servers.0.name']],
    [
      "mcp's own name",
      [entry({ name: 'crm' })],
      { tenantId: 'acme', mcpName: 'crm' },
      ['mcp_servers.0.name'],
    ],
    ['a name given twice', [entry(), entry()], binding, ['mcp_servers.1.name']],
    [
      'a client_id without an issuer',
      [entry({ auth: { type: 'oauth', client_id: 'abc' } })],
      binding,
      ['mcp_servers.0.auth.issuer'],
    ],
    [
      'a client_secret without a client_id',
      [entry({ auth: { type: 'oauth', client_secret: CLIENT_SECRET } })],
      binding,
      ['mcp_servers.0.auth.client_secret'],
    ],
  ])('refuses %s', async (_what, servers, b, paths) => {
    const err = await refusal(build(servers, undefined, b));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.code).toBe('invalid_request');
    expect(pathsOf(err)).toEqual(paths);
    expect(JSON.stringify(err.details)).not.toContain(CLIENT_SECRET);
  });
});

describe('catalog input: URLs', () => {
  it.each([
    ['a private address', 'https://intranet.example.com/mcp'],
    ['http', 'http://mcp.example.com/mcp'],
    ['userinfo', 'https://me:pw@mcp.example.com/mcp'],
    ['a loopback literal', 'https://127.0.0.1/mcp'],
    ['a name that does not resolve', 'https://nowhere.example.com/mcp'],
  ])('refuses an MCP url with %s (400 unsafe_mcp_url)', async (_what, url) => {
    const err = await refusal(build([entry({ url })]));
    expect(err).toBeInstanceOf(UnsafeMcpUrlError);
    expect(err.code).toBe('unsafe_mcp_url');
  });

  it.each([
    ['http', 'http://as.example.com'],
    ['a private address', 'https://intranet.example.com'],
    ['a query', 'https://as.example.com/?tenant=1'],
    ['not a URL', 'as.example.com'],
  ])('refuses an issuer with %s (400 unsafe_oauth_url)', async (_what, issuer) => {
    const err = await refusal(build([entry({ auth: { type: 'oauth', client_id: 'abc', issuer } })]));
    expect(err).toBeInstanceOf(UnsafeOAuthUrlError);
    expect(err.code).toBe('unsafe_oauth_url');
  });

  it('keeps the issuer exactly as written (no trailing slash added)', async () => {
    const [server] = await build([
      entry({ auth: { type: 'oauth', client_id: 'abc', issuer: 'https://as.example.com' } }),
    ]);
    expect(server?.auth).toEqual({ type: 'oauth', client_id: 'abc', issuer: 'https://as.example.com' });
  });

  it.each([
    ['https://app.example.com/oauth/done', false, null],
    ['com.example.app:/oauth', false, null],
    ['com.example.app://callback', false, null],
    ['http://localhost:3000/cb', true, null],
    ['http://127.0.0.1:3000/cb', true, null],
    ['http://localhost:3000/cb', false, 'http://localhost is allowed only in development'],
    ['http://app.example.com/cb', true, 'must be https (http only for localhost in development)'],
    ['https://app.example.com/cb#frag', false, 'must not contain a fragment'],
    ['https://u:p@app.example.com/cb', false, 'must not contain userinfo'],
    ['javascript:alert(1)', false, expect.stringContaining('private-use')],
    ['data:text/html,hi', false, expect.stringContaining('private-use')],
    ['myapp:/oauth', false, expect.stringContaining('private-use')],
    ['/relative/path', false, 'must be an absolute URL'],
  ])('return URL %s (dev %s): %s', (url, allowInsecure, expected) => {
    expect(returnUrlProblem(url, allowInsecure)).toEqual(expected);
  });

  it('refuses a bad return URL with its index (422), and keeps good ones exactly as written', () => {
    expect(
      storedReturnUrls(
        ['com.example.app:/oauth', 'https://a.example.com/x', 'com.example.app:/oauth'],
        false,
      ),
    ).toEqual(['com.example.app:/oauth', 'https://a.example.com/x']);
    try {
      storedReturnUrls(['https://a.example.com/x', 'ftp://a.example.com/x'], false);
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect(pathsOf(err)).toEqual(['oauth_return_urls.1']);
    }
  });
});

describe('catalog input: write-only secrets', () => {
  const staticEntry = (auth: Record<string, unknown> = { type: 'static', token: TOKEN }, over = {}) =>
    entry({ auth, headers: { 'X-Api-Key': HEADER }, ...over });

  it('seals the token, headers and client secret, bound to the entry, and never keeps them in clear', async () => {
    const servers = await build([
      staticEntry(),
      entry({
        name: 'crm',
        auth: {
          type: 'oauth',
          client_id: 'c1',
          issuer: 'https://as.example.com',
          client_secret: CLIENT_SECRET,
        },
      }),
    ]);
    const text = JSON.stringify(servers);
    for (const secret of [TOKEN, HEADER, CLIENT_SECRET]) expect(text).not.toContain(secret);
    const auth = servers[0]!.auth as { token_sealed: string; token_fingerprint: string };
    expect(
      await box.open(auth.token_sealed, { tenantId: 'acme', userId: '', field: 'catalog:docs:token' }),
    ).toBe(TOKEN);
    expect(auth.token_fingerprint).toBe(box.fingerprint(TOKEN));
    // Bound to the entry: it does not open as another server's.
    await expect(
      box.open(auth.token_sealed, { tenantId: 'acme', userId: '', field: 'catalog:crm:token' }),
    ).rejects.toThrow();
    expect(servers[0]!.header_names).toEqual(['X-Api-Key']);
    expect(servers[1]!.auth).toMatchObject({ client_secret_fingerprint: box.fingerprint(CLIENT_SECRET) });
  });

  it('keeps omitted secrets of the entry of the same name, and null clears them', async () => {
    const first = await build([staticEntry()]);
    const kept = await build([entry({ auth: { type: 'static' } })], first);
    expect(kept[0]!.auth).toEqual(first[0]!.auth);
    expect(kept[0]!.headers_sealed).toBe(first[0]!.headers_sealed);

    const cleared = await build([entry({ auth: { type: 'static', token: null }, headers: null })], first);
    expect(cleared[0]!.auth).toEqual({ type: 'static' });
    expect(cleared[0]!.headers_sealed).toBeUndefined();
  });

  it('drops a kept token and headers when the url changes, unless new ones are sent', async () => {
    const first = await build([staticEntry()]);
    const moved = await build(
      [entry({ url: 'https://other.example.com/mcp', auth: { type: 'static' } })],
      first,
    );
    expect(moved[0]!.auth).toEqual({ type: 'static' });
    expect(moved[0]!.headers_sealed).toBeUndefined();

    const resent = await build(
      [staticEntry({ type: 'static', token: TOKEN_2 }, { url: 'https://other.example.com/mcp' })],
      first,
    );
    expect(resent[0]!.auth).toMatchObject({ token_fingerprint: box.fingerprint(TOKEN_2) });
  });

  it('never gives a renamed entry the old entry secrets', async () => {
    const first = await build([staticEntry()]);
    const renamed = await build([entry({ name: 'docs2', auth: { type: 'static' } })], first);
    expect(renamed[0]!.auth).toEqual({ type: 'static' });
  });

  it('keeps a client secret only for the same client and issuer', async () => {
    const oauth = (client_id: string, more = {}) =>
      entry({ auth: { type: 'oauth', client_id, issuer: 'https://as.example.com', ...more } });
    const first = await build([oauth('c1', { client_secret: CLIENT_SECRET })]);
    const same = await build([oauth('c1')], first);
    expect(same[0]!.auth).toMatchObject({ client_secret_sealed: expect.any(String) });
    const other = await build([oauth('c2')], first);
    expect(other[0]!.auth).toEqual({ type: 'oauth', client_id: 'c2', issuer: 'https://as.example.com' });
  });

  it('audits changed fields by name, never by value', async () => {
    const first = await build([staticEntry(), entry({ name: 'gone' })]);
    const next = await build(
      [staticEntry({ type: 'static', token: TOKEN_2 }, { display_name: 'Docs' }), entry({ name: 'added' })],
      first,
    );
    const changed = changedCatalogFields(first, next, new Set(['docs']));
    expect(changed.sort()).toEqual(
      [
        'mcp_servers.gone',
        'mcp_servers.added',
        'mcp_servers.docs.display_name',
        'mcp_servers.docs.auth.token',
        'mcp_servers.docs.headers',
      ].sort(),
    );
    expect(changedCatalogFields(next, next, new Set())).toEqual([]);
  });
});
