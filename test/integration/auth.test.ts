import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtVerifier, type JwtVerifier } from '../../functions/adapters/auth.js';
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  DEV_ISSUER_FILE,
  DEV_JWKS_PATH,
  loadOrCreateDevIssuer,
} from '../../functions/adapters/dev-issuer.js';
import { AuthError, AuthUnavailableError, ConfigError } from '../../functions/core/errors.js';
import { type JwksBehaviour, type JwksServer, startJwksServer, verifierOf } from '../support/jwks-server.js';

let jwks: JwksServer;
let verifier: JwtVerifier;

beforeAll(async () => {
  jwks = await startJwksServer();
  verifier = verifierOf(jwks, { timeoutMs: 2000 });
});

afterAll(() => jwks.stop());

/** The AuthError `promise` rejects with; fails the test when it resolves or throws anything else. */
async function authErrorOf(promise: Promise<unknown>): Promise<AuthError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return err as AuthError;
  }
  throw new Error('expected an AuthError');
}

/** The AuthUnavailableError `promise` rejects with; fails the test on anything else. */
async function unavailableOf(promise: Promise<unknown>): Promise<AuthUnavailableError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthUnavailableError);
    expect(err).not.toBeInstanceOf(AuthError);
    return err as AuthUnavailableError;
  }
  throw new Error('expected an AuthUnavailableError');
}

describe('createJwtVerifier: accepted tokens', () => {
  it.each(['RS256', 'ES256'] as const)('accepts a valid %s token from the JWKS', async (alg) => {
    // Prepare
    const token = await jwks.mint({ sub: 'alice', tenant_id: 'acme' }, { alg });

    // Act
    const principal = await verifier.verify(`Bearer ${token}`);

    // Assess
    expect(principal).toEqual({ sub: 'alice', tenantId: 'acme', scopes: new Set() });
  });

  it('reads scopes from a space-separated scope string and an scp array', async () => {
    // Prepare
    const both = await jwks.mint({ sub: 'a', scope: 'openid  dispatch:admin', scp: ['dispatch:superadmin'] });
    const scpString = await jwks.mint({ sub: 'a', scp: 'dispatch:admin email' });

    // Act
    const fromBoth = await verifier.verify(`Bearer ${both}`);
    const fromScpString = await verifier.verify(`bearer ${scpString}`);

    // Assess
    expect(fromBoth.scopes).toEqual(new Set(['openid', 'dispatch:admin', 'dispatch:superadmin']));
    expect(fromScpString.scopes).toEqual(new Set(['dispatch:admin', 'email']));
    expect(fromBoth.tenantId).toBeUndefined();
  });

  it('uses the configured tenant claim and ignores a non-string value', async () => {
    // Prepare
    const custom = createJwtVerifier({
      jwksUrl: jwks.jwksUrl,
      issuer: jwks.issuer,
      audience: jwks.audience,
      tenantClaim: 'https://example.com/tenant',
    });
    const named = await jwks.mint({ sub: 'a', 'https://example.com/tenant': 'globex', tenant_id: 'acme' });
    const numeric = await jwks.mint({ sub: 'a', 'https://example.com/tenant': 42 });

    // Act
    const fromNamed = await custom.verify(`Bearer ${named}`);
    const fromNumeric = await custom.verify(`Bearer ${numeric}`);

    // Assess
    expect(fromNamed.tenantId).toBe('globex');
    expect(fromNumeric.tenantId).toBeUndefined();
  });

  it('tolerates 30 s of clock skew but no more', async () => {
    // Prepare
    const now = Math.floor(Date.now() / 1000);
    const justExpired = await jwks.mint({ sub: 'a', exp: now - 20 });
    const longExpired = await jwks.mint({ sub: 'a', exp: now - 45 });

    // Act
    const accepted = await verifier.verify(`Bearer ${justExpired}`);
    const refused = await authErrorOf(verifier.verify(`Bearer ${longExpired}`));

    // Assess
    expect(accepted.sub).toBe('a');
    expect(refused.reason).toContain('ERR_JWT_EXPIRED');
  });
});

describe('createJwtVerifier: refused tokens', () => {
  it('refuses an expired token', async () => {
    // Prepare
    const token = await jwks.mint({ sub: 'alice', tenant_id: 'acme' }, { expiresIn: '-5m' });

    // Act
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));

    // Assess
    expect(err.code).toBe('unauthenticated');
    expect(err.reason).toContain('ERR_JWT_EXPIRED');
    expect(err.cause).toBeUndefined();
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain('alice');
  });

  it('refuses a wrong issuer', async () => {
    const token = await jwks.mint({ sub: 'a', iss: 'https://evil.example/' });
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));
    expect(err.reason).toContain('iss');
  });

  it('refuses a wrong audience', async () => {
    const token = await jwks.mint({ sub: 'a', aud: 'another-api' });
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));
    expect(err.reason).toContain('aud');
  });

  it('refuses a token without sub or exp', async () => {
    // Prepare
    const noSub = await jwks.mint({ tenant_id: 'acme' });
    const noExp = await jwks.mint({ sub: 'a' }, { omitExp: true });

    // Act
    const subErr = await authErrorOf(verifier.verify(`Bearer ${noSub}`));
    const expErr = await authErrorOf(verifier.verify(`Bearer ${noExp}`));

    // Assess
    expect(subErr.reason).toContain('sub');
    expect(expErr.reason).toContain('exp');
  });

  it.each(['RS256', 'ES256'] as const)(
    'refuses a %s token signed by a key the JWKS does not serve',
    async (alg) => {
      const token = await jwks.mint({ sub: 'a' }, { alg, signWithForeignKey: true });
      const err = await authErrorOf(verifier.verify(`Bearer ${token}`));
      expect(err.reason).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    },
  );

  it('refuses a token whose kid the JWKS does not list', async () => {
    const token = await jwks.mint({ sub: 'a' }, { kid: 'rotated-away' });
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));
    expect(err.reason).toContain('ERR_JWKS_NO_MATCHING_KEY');
  });

  it('refuses alg none', async () => {
    // Prepare
    const now = Math.floor(Date.now() / 1000);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(
      JSON.stringify({ sub: 'a', iss: jwks.issuer, aud: jwks.audience, iat: now, exp: now + 60 }),
    );

    // Act
    const err = await authErrorOf(verifier.verify(`Bearer ${header}.${payload}.`));

    // Assess
    expect(err.code).toBe('unauthenticated');
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    // Prepare
    const rsa = jwks.jwks.keys.find((k) => k.kty === 'RSA')!;
    const token = await new SignJWT({ sub: 'a', iss: jwks.issuer, aud: jwks.audience })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(rsa)));

    // Act
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));

    // Assess
    expect(err.reason).toContain('ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['another scheme', 'Basic YWxpY2U6c2VjcmV0'],
    ['bearer without token', 'Bearer '],
    ['garbage', 'Bearer not-a-jwt'],
    ['three garbage segments', 'Bearer aaa.bbb.ccc'],
    ['two tokens', 'Bearer a.b.c d.e.f'],
  ])('refuses a %s header', async (_label, header) => {
    const err = await authErrorOf(verifier.verify(header));
    expect(err.code).toBe('unauthenticated');
  });

  it('never puts the token in the error', async () => {
    // Prepare
    const token = await jwks.mint({ sub: 'alice' }, { signWithForeignKey: true });

    // Act
    const err = await authErrorOf(verifier.verify(`Bearer ${token}`));

    // Assess
    const rendered = `${err.message} ${err.reason} ${String(err.cause)} ${JSON.stringify(err)}`;
    expect(rendered).not.toContain(token.split('.')[1]!);
    expect(rendered).not.toContain(token.split('.')[2]!);
  });

  it('answers auth_unavailable, never a 401, when the JWKS cannot be reached, within its timeout', async () => {
    // Prepare
    const silent: Server = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const unreachable = createJwtVerifier({
      jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
      issuer: jwks.issuer,
      audience: jwks.audience,
      tenantClaim: 'tenant_id',
      timeoutMs: 300,
    });
    const token = await jwks.mint({ sub: 'a' });
    const started = Date.now();

    // Act
    const err = await unavailableOf(unreachable.verify(`Bearer ${token}`));

    // Assess
    expect(err.code).toBe('auth_unavailable');
    expect(err.reason).toContain('ERR_JWKS_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });
});

describe("createJwtVerifier: JWKS outage (our fault) versus a bad token (the caller's)", () => {
  let flaky: JwksServer;
  beforeAll(async () => {
    flaky = await startJwksServer();
  });
  afterAll(async () => {
    flaky.behave('serve');
    await flaky.stop();
  });

  it.each([
    ['hang', 'ERR_JWKS_TIMEOUT'],
    ['error', 'ERR_JWKS_STATUS: JWKS answered HTTP 500'],
    ['not_json', 'ERR_JWKS_INVALID'],
    ['not_a_key_set', 'ERR_JWKS_INVALID'],
    ['reset', 'ERR_JWKS_FETCH'],
  ] as [JwksBehaviour, string][])(
    'a JWKS that answers %s is auth_unavailable (%s)',
    async (behaviour, reason) => {
      // Prepare: a fresh verifier has no cached key set
      flaky.behave(behaviour);
      const fresh = verifierOf(flaky, { timeoutMs: 300 });
      const token = await flaky.mint({ sub: 'alice' });
      const before = flaky.requests;

      // Act
      const err = await unavailableOf(fresh.verify(`Bearer ${token}`));

      // Assess
      expect(err.code).toBe('auth_unavailable');
      expect(err.reason).toContain(reason);
      expect(flaky.requests).toBe(before + 1);
      expect(`${err.message} ${err.reason}`).not.toContain(token.split('.')[1]!);
    },
  );

  it('is auth_unavailable when nothing listens at the JWKS URL', async () => {
    // Prepare
    const gone = await startJwksServer();
    const token = await gone.mint({ sub: 'alice' });
    await gone.stop();

    // Act
    const err = await unavailableOf(verifierOf(gone, { timeoutMs: 300 }).verify(`Bearer ${token}`));

    // Assess
    expect(err.reason).toContain('ERR_JWKS_FETCH');
  });

  it('recovers with the next request once the JWKS answers again', async () => {
    // Prepare
    flaky.behave('error');
    const verifier = verifierOf(flaky, { timeoutMs: 300 });
    const token = await flaky.mint({ sub: 'alice', tenant_id: 'acme' });
    await unavailableOf(verifier.verify(`Bearer ${token}`));

    // Act
    flaky.behave('serve');
    const principal = await verifier.verify(`Bearer ${token}`);

    // Assess
    expect(principal.sub).toBe('alice');
  });

  it('still refuses a bad token with 401 during an outage when no key set is needed to tell', async () => {
    // Prepare
    flaky.behave('error');
    const verifier = verifierOf(flaky, { timeoutMs: 300 });
    const before = flaky.requests;

    // Act
    const garbage = await authErrorOf(verifier.verify('Bearer aaa.bbb.ccc'));
    const missing = await authErrorOf(verifier.verify(undefined));

    // Assess
    expect(garbage.code).toBe('unauthenticated');
    expect(missing.code).toBe('unauthenticated');
    expect(flaky.requests).toBe(before);
  });

  it('keeps 401 for a kid the fetched key set lacks, and for a foreign signature', async () => {
    // Prepare: the key set was fetched fine
    flaky.behave('serve');
    const verifier = verifierOf(flaky, { timeoutMs: 300 });
    const unknownKid = await flaky.mint({ sub: 'a' }, { kid: 'rotated-away' });
    const foreign = await flaky.mint({ sub: 'a' }, { signWithForeignKey: true });

    // Act
    const noKey = await authErrorOf(verifier.verify(`Bearer ${unknownKid}`));
    const badSignature = await authErrorOf(verifier.verify(`Bearer ${foreign}`));

    // Assess
    expect(noKey.reason).toContain('ERR_JWKS_NO_MATCHING_KEY');
    expect(badSignature.reason).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('serves cached keys through an outage that starts after a successful fetch', async () => {
    // Prepare
    flaky.behave('serve');
    const verifier = verifierOf(flaky, { timeoutMs: 300 });
    const token = await flaky.mint({ sub: 'alice' });
    await verifier.verify(`Bearer ${token}`);

    // Act
    flaky.behave('error');
    const principal = await verifier.verify(`Bearer ${token}`);

    // Assess
    expect(principal.sub).toBe('alice');
  });
});

describe('createJwtVerifier options', () => {
  it.each([['HS256'], ['none'], []])('refuses algorithms %j', (...algorithms) => {
    expect(() =>
      createJwtVerifier({ jwksUrl: jwks.jwksUrl, issuer: 'i', audience: 'a', tenantClaim: 't', algorithms }),
    ).toThrow(ConfigError);
  });

  it('lists every missing option at once', () => {
    // Act
    let caught: unknown;
    try {
      createJwtVerifier({ issuer: '', audience: '', tenantClaim: '' });
    } catch (err) {
      caught = err;
    }

    // Assess
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toHaveLength(4);
  });
});

describe('dev issuer', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dev-issuer-'));
  });

  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('persists one ES256 key (mode 0600) that concurrent first runs agree on', async () => {
    // Act
    const [a, b] = await Promise.all([loadOrCreateDevIssuer(dataDir), loadOrCreateDevIssuer(dataDir)]);
    const again = await loadOrCreateDevIssuer(dataDir);

    // Assess
    expect(a.jwks()).toEqual(b.jwks());
    expect(again.jwks()).toEqual(a.jwks());
    const file = join(dataDir, DEV_ISSUER_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await readFile(file, 'utf8'));
    expect(stored.private_jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(a.jwks().keys).toHaveLength(1);
    expect(a.jwks().keys[0]).not.toHaveProperty('d');
    expect(a.jwks().keys[0]).toMatchObject({ alg: 'ES256', use: 'sig', kid: stored.kid });
  });

  it('mints tokens that verify against its JWKS served over HTTP', async () => {
    // Prepare
    const issuer = await loadOrCreateDevIssuer(dataDir);
    const server = createServer((req, res) => {
      if (req.url === DEV_JWKS_PATH) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issuer.jwks()));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const remote = createJwtVerifier({
      jwksUrl: `http://127.0.0.1:${port}${DEV_JWKS_PATH}`,
      issuer: DEV_ISSUER,
      audience: DEV_AUDIENCE,
      tenantClaim: 'tenant_id',
    });

    // Act
    const user = await remote.verify(`Bearer ${await issuer.mint({ user: 'alice', tenant: 'acme' })}`);
    const admin = await remote.verify(
      `Bearer ${await issuer.mint({ user: 'bob', tenant: 'acme', admin: true })}`,
    );
    const root = await remote.verify(`Bearer ${await issuer.mint({ user: 'root', superadmin: true })}`);

    // Assess
    expect(user).toEqual({ sub: 'alice', tenantId: 'acme', scopes: new Set() });
    expect(admin).toEqual({ sub: 'bob', tenantId: 'acme', scopes: new Set(['dispatch:admin']) });
    expect(root).toEqual({ sub: 'root', tenantId: undefined, scopes: new Set(['dispatch:superadmin']) });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verifies through the injected key resolver and honours ttlSeconds', async () => {
    // Prepare
    const issuer = await loadOrCreateDevIssuer(dataDir);
    const local = createJwtVerifier({
      getKey: issuer.getKey,
      issuer: issuer.issuer,
      audience: issuer.audience,
      tenantClaim: issuer.tenantClaim,
    });
    const expired = await issuer.mint({ user: 'alice', tenant: 'acme', ttlSeconds: -60 });

    // Act
    const ok = await local.verify(
      `Bearer ${await issuer.mint({ user: 'alice', tenant: 'acme', ttlSeconds: 60 })}`,
    );
    const err = await authErrorOf(local.verify(`Bearer ${expired}`));

    // Assess
    expect(ok.sub).toBe('alice');
    expect(err.reason).toContain('ERR_JWT_EXPIRED');
  });

  it('is refused by a verifier of another issuer', async () => {
    const issuer = await loadOrCreateDevIssuer(dataDir);
    const token = await issuer.mint({ user: 'alice', tenant: 'acme' });
    await authErrorOf(verifier.verify(`Bearer ${token}`));
  });
});
