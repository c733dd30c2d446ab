import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWTPayload,
  SignJWT,
} from 'jose';
import {
  createJwtVerifier,
  type JwtVerifier,
  type JwtVerifierOptions,
} from '../../functions/adapters/auth.js';

/** How {@link JwksServer.mint} signs. */
export interface MintOptions {
  /** `RS256` (default) or `ES256`: picks the served key of that type. */
  alg?: 'RS256' | 'ES256';
  /** `exp` as a jose time span (`'5m'`, `'-1h'`) or an absolute epoch second; default `'5m'`. */
  expiresIn?: string | number;
  /** Overrides the `kid` header (default: the served key's kid). */
  kid?: string;
  /** Leaves `exp` out. */
  omitExp?: boolean;
  /** Signs with a key of the same type that the JWKS does not serve (same `kid`). */
  signWithForeignKey?: boolean;
}

/**
 * How the JWKS endpoint answers: `serve` the key set; `hang` (never answer); `error` (HTTP 500);
 * `not_json` (200 with a body that is not JSON); `not_a_key_set` (200 with JSON that is no JWK
 * set); `reset` (close the connection without an answer).
 */
export type JwksBehaviour = 'serve' | 'hang' | 'error' | 'not_json' | 'not_a_key_set' | 'reset';

/** A JWKS endpoint on loopback serving one RS256 and one ES256 public key. */
export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** The served key set. */
  jwks: JSONWebKeySet;
  /** How many times the JWKS was fetched. */
  readonly requests: number;
  /** Switches how the endpoint answers from now on (default `serve`). */
  behave(behaviour: JwksBehaviour): void;
  /**
   * Signs a JWT. `iss`, `aud`, `iat` and `exp` default to this server's values; claims given
   * here (including `iss`/`aud`) win.
   */
  mint(claims: JWTPayload, options?: MintOptions): Promise<string>;
  stop(): Promise<void>;
}

interface KeyEntry {
  kid: string;
  privateKey: CryptoKey;
  foreignKey: CryptoKey;
}

/** Starts a {@link JwksServer} on 127.0.0.1 with a random port. */
export async function startJwksServer(
  options: { issuer?: string; audience?: string } = {},
): Promise<JwksServer> {
  const keys = {} as Record<'RS256' | 'ES256', KeyEntry>;
  const jwks: JSONWebKeySet = { keys: [] };
  for (const alg of ['RS256', 'ES256'] as const) {
    const pair = await generateKeyPair(alg);
    const foreign = await generateKeyPair(alg);
    const publicJwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    keys[alg] = { kid, privateKey: pair.privateKey, foreignKey: foreign.privateKey };
    jwks.keys.push({ ...publicJwk, kid, alg, use: 'sig' });
  }

  let requests = 0;
  let behaviour: JwksBehaviour = 'serve';
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
      requests += 1;
      const json = { 'content-type': 'application/json' };
      if (behaviour === 'serve') res.writeHead(200, json).end(JSON.stringify(jwks));
      else if (behaviour === 'error') res.writeHead(500, json).end('{"error":"internal"}');
      else if (behaviour === 'not_json') res.writeHead(200, json).end('<html>maintenance</html>');
      else if (behaviour === 'not_a_key_set') res.writeHead(200, json).end('{"keys":"none"}');
      else if (behaviour === 'reset') req.socket.destroy();
      // 'hang': never answer; stop() closes the connection.
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = options.issuer ?? `${origin}/`;
  const audience = options.audience ?? 'livekit-mcp-dispatch-test';

  return {
    jwksUrl: `${origin}/.well-known/jwks.json`,
    issuer,
    audience,
    jwks,
    get requests() {
      return requests;
    },
    behave(next) {
      behaviour = next;
    },
    async mint(claims, mintOptions = {}) {
      const alg = mintOptions.alg ?? 'RS256';
      const entry = keys[alg];
      const jwt = new SignJWT({ iss: issuer, aud: audience, jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg, kid: mintOptions.kid ?? entry.kid, typ: 'JWT' })
        .setIssuedAt();
      if (claims.exp === undefined && !mintOptions.omitExp)
        jwt.setExpirationTime(mintOptions.expiresIn ?? '5m');
      return jwt.sign(mintOptions.signWithForeignKey ? entry.foreignKey : entry.privateKey);
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A verifier of `jwks`'s tokens as the functions build one (tenant claim `tenant_id`). */
export function verifierOf(jwks: JwksServer, options: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return createJwtVerifier({
    jwksUrl: jwks.jwksUrl,
    issuer: jwks.issuer,
    audience: jwks.audience,
    tenantClaim: 'tenant_id',
    ...options,
  });
}
