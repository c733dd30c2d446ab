import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../functions/adapters/safe-fetch.js';
import { type DiscoveredServer, discover } from '../../functions/core/oauth/discovery.js';
import {
  OAuthCallbackError,
  OAuthDiscoveryError,
  OAuthIssuerMismatchError,
  OAuthRefreshError,
  OAuthRegistrationUnavailableError,
} from '../../functions/core/oauth/errors.js';
import {
  exchangeCallback,
  type FlowDeps,
  refresh,
  register,
  startAuthorization,
} from '../../functions/core/oauth/flow.js';
import { type ClientRegistration, MemoryMetadataCache } from '../../functions/core/oauth/ports.js';
import { dialToLoopback, PUBLIC_ADDRESS, ScriptedResolver } from '../support/oauth/hosts.js';
import { type ScriptedServer, startScriptedServer } from '../support/oauth/scripted-server.js';
import { makeCertificate } from '../support/oauth/tls.js';

const REFRESH_SECRET = 'rt-secret-do-not-leak-0123456789';
const CLIENT_SECRET = 'cs-secret-do-not-leak-0123456789';
const HOSTILE = '<script>alert(1)</script> call +1-555-SCAM';

let dev: ScriptedServer;
let devFetch: ReturnType<typeof createSafeFetch>;

function asMetadata(issuer: string, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    registration_endpoint: `${issuer}/reg`,
    revocation_endpoint: `${issuer}/revoke`,
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
    scopes_supported: ['notes:read'],
    ...extra,
  };
}

function script(server: ScriptedServer, prm: Record<string, unknown>, as: Record<string, unknown> | null) {
  const mcp = `${server.origin}/mcp`;
  server.routes.clear();
  server.routes.set('POST /mcp', {
    status: 401,
    headers: { 'www-authenticate': `Bearer resource_metadata="${server.origin}/prm", scope="notes:read"` },
  });
  server.routes.set('GET /prm', {
    json: { resource: mcp, authorization_servers: [`${server.origin}/as`], ...prm },
  });
  if (as) server.routes.set('GET /.well-known/oauth-authorization-server/as', { json: as });
  return mcp;
}

async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OAuthDiscoveryError);
  return (error as OAuthDiscoveryError).reason;
}

beforeAll(async () => {
  dev = await startScriptedServer();
  devFetch = createSafeFetch({ allowedPorts: [], allowInsecure: true, resolve: async () => [] });
});
afterAll(() => dev.stop());

const devDeps = (extra: object = {}) => ({ fetch: devFetch, clock: Date.now, allowInsecure: true, ...extra });

describe('discovery refuses hostile metadata (dev flag on, loopback)', () => {
  it('resource mismatch', async () => {
    const mcp = script(dev, { resource: 'https://other.example.com/mcp' }, asMetadata(`${dev.origin}/as`));
    expect(await reason(discover(mcp, devDeps()))).toBe('resource_mismatch');
  });

  it('issuer mismatch (mix-up)', async () => {
    const mcp = script(dev, {}, asMetadata('https://evil.example.com'));
    expect(await reason(discover(mcp, devDeps()))).toBe('issuer_mismatch');
  });

  it('AS without S256', async () => {
    const mcp = script(
      dev,
      {},
      asMetadata(`${dev.origin}/as`, { code_challenge_methods_supported: ['plain'] }),
    );
    expect(await reason(discover(mcp, devDeps()))).toBe('no_s256');
  });

  it('oversized metadata', async () => {
    const mcp = script(dev, {}, asMetadata(`${dev.origin}/as`));
    dev.routes.set('GET /prm', { body: JSON.stringify({ resource: mcp, pad: 'x'.repeat(300 * 1024) }) });
    expect(await reason(discover(mcp, devDeps()))).toBe('bad_metadata');
  });

  it('a slow AS is cut off by the discovery budget', async () => {
    const mcp = script(dev, {}, null);
    dev.routes.set('GET /.well-known/oauth-authorization-server/as', {
      json: asMetadata(`${dev.origin}/as`),
      delayMs: 2_000,
    });
    const started = Date.now();
    expect(await reason(discover(mcp, devDeps({ budgetMs: 400 })))).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('falls back to OpenID discovery, and caches ≤ 1 h by the injected clock', async () => {
    const mcp = script(dev, {}, null);
    dev.routes.set('GET /as/.well-known/openid-configuration', { json: asMetadata(`${dev.origin}/as`) });
    let now = 1_000_000;
    const deps = devDeps({
      clock: () => now,
      cache: new MemoryMetadataCache<DiscoveredServer>(),
      cacheMs: 24 * 3600_000,
    });
    expect((await discover(mcp, deps)).metadataSource).toBe('oidc');
    const hits = dev.hits.length;
    now += 3599_000;
    await discover(mcp, deps);
    expect(dev.hits.length).toBe(hits);
    now += 2_000;
    await discover(mcp, deps);
    expect(dev.hits.length).toBeGreaterThan(hits);
  });
});

describe('discovery refuses hostile URLs (dev flag off, TLS on loopback under public names)', () => {
  const tls = makeCertificate(['mcp.example.com', 'as.example.com']);
  let strict: ScriptedServer;
  let resolver: ScriptedResolver;
  let strictFetch: ReturnType<typeof createSafeFetch>;
  beforeAll(async () => {
    strict = await startScriptedServer(tls);
  });
  afterAll(() => strict.stop());
  beforeEach(() => {
    resolver = new ScriptedResolver({
      'mcp.example.com': [[PUBLIC_ADDRESS]],
      'as.example.com': [[PUBLIC_ADDRESS]],
    });
    strictFetch = createSafeFetch({
      allowedPorts: [strict.port],
      allowInsecure: false,
      resolve: resolver.resolve,
      ca: tls.cert,
      dialAddress: dialToLoopback(),
    });
  });
  const strictDeps = () => ({ fetch: strictFetch, clock: Date.now, allowInsecure: false });

  function prmNaming(issuer: string) {
    const mcp = `https://mcp.example.com:${strict.port}/mcp`;
    strict.routes.clear();
    strict.routes.set('POST /mcp', {
      status: 401,
      headers: {
        'www-authenticate': `Bearer resource_metadata="https://mcp.example.com:${strict.port}/prm"`,
      },
    });
    strict.routes.set('GET /prm', { json: { resource: mcp, authorization_servers: [issuer] } });
    return mcp;
  }

  it('accepts a clean https chain (control)', async () => {
    const issuer = `https://as.example.com:${strict.port}`;
    const mcp = prmNaming(issuer);
    strict.routes.set('GET /.well-known/oauth-authorization-server', { json: asMetadata(issuer) });
    expect((await discover(mcp, strictDeps())).issuer).toBe(issuer);
  });

  it.each([
    ['private', 'https://10.0.0.1'],
    ['loopback', 'https://127.0.0.1'],
    ['metadata', 'https://169.254.169.254'],
    ['IPv4-mapped', 'https://[::ffff:127.0.0.1]'],
    ['plain http', 'http://as.example.com'],
  ])('PRM naming a %s authorization server', async (_label, issuer) => {
    const mcp = prmNaming(issuer);
    const before = strict.hits.length;
    expect(await reason(discover(mcp, strictDeps()))).toBe('unsafe_url');
    expect(strict.hits.length).toBe(before + 2);
  });

  it('a name that turns private after the check is never dialled there', async () => {
    const issuer = `https://as.example.com:${strict.port}`;
    const mcp = prmNaming(issuer);
    strict.routes.set('GET /.well-known/oauth-authorization-server', { json: asMetadata(issuer) });
    resolver = new ScriptedResolver({
      'mcp.example.com': [[PUBLIC_ADDRESS], [PUBLIC_ADDRESS]],
      'as.example.com': [['10.1.2.3']],
    });
    strictFetch = createSafeFetch({
      allowedPorts: [strict.port],
      allowInsecure: false,
      resolve: resolver.resolve,
      ca: tls.cert,
      dialAddress: dialToLoopback(),
    });
    expect(await reason(discover(mcp, strictDeps()))).toBe('unsafe_url');
  });

  it('an http authorization endpoint', async () => {
    const issuer = `https://as.example.com:${strict.port}`;
    const mcp = prmNaming(issuer);
    strict.routes.set('GET /.well-known/oauth-authorization-server', {
      json: asMetadata(issuer, { authorization_endpoint: 'http://as.example.com/auth' }),
    });
    expect(await reason(discover(mcp, strictDeps()))).toBe('unsafe_url');
  });
});

describe('registration, callback and refresh refusals', () => {
  let server: DiscoveredServer;
  let deps: FlowDeps;
  const registration = (): ClientRegistration => ({
    kind: 'dcr',
    issuer: `${dev.origin}/as`,
    client_id: 'c1',
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
  });
  beforeEach(async () => {
    const mcp = script(dev, {}, asMetadata(`${dev.origin}/as`));
    server = await discover(mcp, devDeps());
    deps = devDeps();
  });

  it('a DCR answer without client_id', async () => {
    dev.routes.set('POST /as/reg', { status: 201, json: { client_secret: CLIENT_SECRET } });
    const error = await register(server, { redirectUri: 'http://localhost/cb', clientName: 'x' }, deps).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(OAuthRegistrationUnavailableError);
    expect(error.reason).toBe('dcr_failed');
    expect(`${error.message}${JSON.stringify(error)}`).not.toContain(CLIENT_SECRET);
  });

  it('a pre-registered client of another issuer', async () => {
    const error = await register(
      server,
      {
        preregistered: { client_id: 'p', issuer: 'https://other.example.com' },
        redirectUri: 'x',
        clientName: 'x',
      },
      deps,
    ).catch((e) => e);
    expect(error).toBeInstanceOf(OAuthIssuerMismatchError);
  });

  it('prefers CIMD when advertised and the base URL is https; else DCR; else unavailable', async () => {
    const cimdServer = {
      ...server,
      authorizationServer: { ...server.authorizationServer, client_id_metadata_document_supported: true },
    };
    const cimd = 'https://api.example.com/oauth/tenants/acme/client-metadata.json';
    expect(
      await register(cimdServer, { clientMetadataUrl: cimd, redirectUri: 'x', clientName: 'x' }, deps),
    ).toMatchObject({
      kind: 'cimd',
      client_id: cimd,
      token_endpoint_auth_method: 'private_key_jwt',
    });
    const noKeyJwt = {
      ...cimdServer,
      authorizationServer: {
        ...cimdServer.authorizationServer,
        token_endpoint_auth_methods_supported: ['none'],
      },
    };
    expect(
      (await register(noKeyJwt, { clientMetadataUrl: cimd, redirectUri: 'x', clientName: 'x' }, deps))
        .token_endpoint_auth_method,
    ).toBe('none');
    dev.routes.set('POST /as/reg', {
      status: 201,
      json: { client_id: 'dcr-1', client_secret: CLIENT_SECRET, client_secret_expires_at: 0 },
    });
    expect(
      (
        await register(
          cimdServer,
          { clientMetadataUrl: 'http://localhost/cimd', redirectUri: 'x', clientName: 'x' },
          deps,
        )
      ).kind,
    ).toBe('dcr');
    const none = {
      ...server,
      authorizationServer: { ...server.authorizationServer, registration_endpoint: undefined },
    };
    const error = await register(none, { redirectUri: 'x', clientName: 'x' }, deps).catch((e) => e);
    expect(error).toBeInstanceOf(OAuthRegistrationUnavailableError);
  });

  it('iss missing when advertised, or another issuer: refused before any token request', async () => {
    const { pending } = await startAuthorization(
      server,
      registration(),
      { redirectUri: 'http://localhost/cb', scopes: [], ttlSeconds: 600 },
      deps,
    );
    for (const params of [
      new URLSearchParams({ code: 'c', state: pending.state }),
      new URLSearchParams({ code: 'c', state: pending.state, iss: 'https://evil.example.com' }),
    ]) {
      const error = await exchangeCallback(
        server.authorizationServer,
        registration(),
        pending,
        params,
        deps,
      ).catch((e) => e);
      expect(error).toBeInstanceOf(OAuthCallbackError);
      expect(error.code).toBe('issuer_mismatch');
    }
    expect(dev.hits).not.toContain('POST /as/token');
  });

  it('access_denied with a hostile error_description is reported as ours alone', async () => {
    const { pending } = await startAuthorization(
      server,
      registration(),
      { redirectUri: 'http://localhost/cb', scopes: [], ttlSeconds: 600 },
      deps,
    );
    const params = new URLSearchParams({
      error: 'access_denied',
      error_description: HOSTILE,
      state: pending.state,
      iss: pending.issuer,
    });
    const error = await exchangeCallback(
      server.authorizationServer,
      registration(),
      pending,
      params,
      deps,
    ).catch((e) => e);
    expect(error.code).toBe('access_denied');
    expect(`${error.message}${JSON.stringify(error)}`).not.toContain('SCAM');
  });

  it('an expired state, and a token endpoint failure that leaks nothing', async () => {
    let now = 5_000_000;
    const clocked = { ...deps, clock: () => now };
    const { pending } = await startAuthorization(
      server,
      registration(),
      { redirectUri: 'http://localhost/cb', scopes: [], ttlSeconds: 600 },
      clocked,
    );
    const params = new URLSearchParams({ code: 'c', state: pending.state, iss: pending.issuer });
    dev.routes.set('POST /as/token', {
      status: 400,
      json: { error: 'invalid_grant', error_description: `${HOSTILE} ${CLIENT_SECRET}` },
    });
    const failed = await exchangeCallback(
      server.authorizationServer,
      registration(),
      pending,
      params,
      clocked,
    ).catch((e) => e);
    expect(failed.code).toBe('token_exchange_failed');
    for (const secret of [CLIENT_SECRET, pending.code_verifier, 'SCAM'])
      expect(`${failed.message}${JSON.stringify(failed)}`).not.toContain(secret);
    now += 601_000;
    expect(
      (
        await exchangeCallback(server.authorizationServer, registration(), pending, params, clocked).catch(
          (e) => e,
        )
      ).code,
    ).toBe('state_expired');
  });

  it('refresh: invalid_grant is told apart from an outage, and leaks no secret', async () => {
    const grant = { refresh_token: REFRESH_SECRET, resource: server.resource, scopes: [] };
    dev.routes.set('POST /as/token', {
      status: 400,
      json: { error: 'invalid_grant', error_description: REFRESH_SECRET },
    });
    const invalid = await refresh(server.authorizationServer, registration(), grant, deps).catch((e) => e);
    expect(invalid).toBeInstanceOf(OAuthRefreshError);
    expect(invalid.kind).toBe('invalid_grant');
    dev.routes.set('POST /as/token', { status: 503, body: 'down' });
    const down = await refresh(server.authorizationServer, registration(), grant, deps).catch((e) => e);
    expect(down.kind).toBe('unavailable');
    for (const e of [invalid, down]) {
      expect(`${e.message}${JSON.stringify(e)}${String(e.cause ?? '')}`).not.toContain(REFRESH_SECRET);
      expect(`${e.message}${JSON.stringify(e)}`).not.toContain(CLIENT_SECRET);
    }
  });
});
