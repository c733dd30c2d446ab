import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import type { Dispatcher } from 'undici-types';
import { FileAdapterStore } from './file-adapter.js';

/** An account of the login form: what to type, and the `sub` its tokens carry. */
export interface Account {
  login: string;
  password: string;
  sub: string;
}

/** The one test account: its login form takes these. */
export const TEST_ACCOUNT: Account = { login: 'alice', password: 'correct horse', sub: 'user-alice' };

/** Options of {@link startAuthorizationServer}. */
export interface AuthorizationServerOptions {
  /** Resources (MCP server URLs) it issues audience-bound JWT access tokens for. */
  resources: () => readonly string[];
  /** Scopes each resource may be granted. */
  resourceScopes?: string;
  /** Pre-registered clients (oidc-provider client metadata). */
  clients?: Configuration['clients'];
  accessTokenTtlSeconds?: number;
  /** How long a consent (and so its refresh tokens) lasts; 3600 unless given. */
  grantTtlSeconds?: number;
  /** The one account the login form accepts ({@link TEST_ACCOUNT} unless given). */
  account?: Account;
  /** A line the login page shows above the form (the demo names its account there). */
  loginHint?: string;
  /** 0 (default) picks a free port on 127.0.0.1. */
  port?: number;
  /**
   * Keep the signing key and everything the provider stores (clients, grants, refresh tokens) in
   * `<stateDir>/<port>.json`, so that a restart on the same issuer knows them; else in memory.
   */
  stateDir?: string;
  /** The token endpoint auth methods it accepts (and lists); all four unless given. */
  clientAuthMethods?: Configuration['clientAuthMethods'];
  /**
   * Client ID Metadata Documents (oidc-provider's `clientIdMetadataDocument` feature,
   * draft-ietf-oauth-client-id-metadata-document-02): advertises
   * `client_id_metadata_document_supported`, and resolves an https client_id by fetching it (the
   * document's `client_id` must equal the URL; its `jwks_uri` is fetched to verify
   * `private_key_jwt`). The AS's fetches trust exactly `ca` (a test certificate on loopback).
   */
  clientIdMetadataDocument?: {
    ca: string;
    /** How long a fetched document is used, s (oidc-provider's `cacheDuration`); 30 unless given. */
    cacheSeconds?: number;
  };
}

/** A running oidc-provider on loopback with a two-step login + consent UI. */
export interface RunningAuthorizationServer {
  issuer: string;
  provider: Provider;
  /** Every URL the provider itself fetched (client metadata documents, client `jwks_uri`s), in order. */
  fetched: string[];
  stop(): Promise<void>;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, uid: string, fields: string, hint?: string): string {
  return `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1>
${hint === undefined ? '' : `<p id="hint">${escapeHtml(hint)}</p>`}<form method="post" action="/interaction/${uid}">${fields}<button id="submit" type="submit">Continue</button></form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * oidc-provider configured as CONTRACT §8's counterpart: resource indicators with JWT access
 * tokens audience-bound to the MCP URL, DCR, revocation, PKCE S256 required, refresh-token
 * rotation, the RFC 9207 `iss` parameter; login and consent are plain HTML forms.
 */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions,
): Promise<RunningAuthorizationServer> {
  const server: Server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const account = options.account ?? TEST_ACCOUNT;
  const store =
    options.stateDir === undefined ? undefined : new FileAdapterStore(join(options.stateDir, `${port}.json`));
  const newSigningKey = async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    return { ...(await exportJWK(privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
  };
  const signing = store === undefined ? await newSigningKey() : await store.signingKey(newSigningKey);
  const scope = options.resourceScopes ?? 'notes:read notes:write';
  const fetched: string[] = [];
  const cimd = options.clientIdMetadataDocument;
  let trusting: Dispatcher | undefined;
  // oidc-provider hands its fetch an SSRF-guarded undici Agent (it refuses special-use addresses,
  // so loopback too). On loopback the test AS dials through an Agent of that same class that
  // trusts exactly the test certificate instead; nothing else's TLS verification changes.
  const fetchThroughCa: NonNullable<Configuration['fetch']> = (url, init) => {
    fetched.push(String(url));
    if (cimd === undefined) return globalThis.fetch(url, init);
    const Agent = (init as { dispatcher?: object } | undefined)?.dispatcher?.constructor as
      | (new (o: {
          connect: { ca: string };
        }) => Dispatcher)
      | undefined;
    if (Agent === undefined) throw new Error('oidc-provider passed no dispatcher');
    trusting ??= new Agent({ connect: { ca: cimd.ca } });
    return globalThis.fetch(url, { ...init, dispatcher: trusting } as RequestInit);
  };

  const provider = new Provider(issuer, {
    ...(store === undefined ? {} : { adapter: store.adapter }),
    clients: options.clients ?? [],
    fetch: fetchThroughCa,
    jwks: { keys: [signing] },
    clientAuthMethods: options.clientAuthMethods ?? [
      'private_key_jwt',
      'client_secret_basic',
      'client_secret_post',
      'none',
    ],
    enabledJWA: { clientAuthSigningAlgValues: ['ES256'] },
    clientDefaults: {
      id_token_signed_response_alg: 'ES256',
      grant_types: ['authorization_code', 'refresh_token'],
    },
    scopes: ['openid', 'offline_access'],
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 600,
      Grant: options.grantTtlSeconds ?? 3600,
      Session: 3600,
      Interaction: 600,
      RefreshToken: 14 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      ...(cimd === undefined
        ? {}
        : {
            clientIdMetadataDocument: {
              enabled: true,
              ack: 'draft-02',
              cacheDuration: { min: cimd.cacheSeconds ?? 30, max: cimd.cacheSeconds ?? 30 },
            },
          }),
      // A client revokes only its own tokens.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined as unknown as string,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (!options.resources().includes(resource)) throw new Error('unknown resource');
          return { scope, audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    findAccount: async (_ctx, sub) =>
      sub === account.sub ? { accountId: sub, claims: async () => ({ sub }) } : undefined,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });

  const callback = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/interaction\/([^/?]+)$/.exec(req.url ?? '');
    if (match === null) {
      callback(req, res);
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        const uid = details.uid;
        if (req.method === 'GET') {
          res.setHeader('content-type', 'text/html');
          if (details.prompt.name === 'login') {
            res.end(
              page(
                'Sign in',
                uid,
                '<input id="login" name="login"><input id="password" name="password" type="password">',
                options.loginHint,
              ),
            );
          } else {
            res.end(
              page(
                `Allow ${String(details.params.client_id)}?`,
                uid,
                '<input type="hidden" name="consent" value="yes">',
              ),
            );
          }
          return;
        }
        const form = await readForm(req);
        if (details.prompt.name === 'login') {
          const ok = form.get('login') === account.login && form.get('password') === account.password;
          const result = ok
            ? { login: { accountId: account.sub } }
            : { error: 'access_denied', error_description: 'bad credentials' };
          await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
          return;
        }
        const grant = details.grantId
          ? ((await provider.Grant.find(details.grantId)) ??
            new provider.Grant({
              accountId: details.session?.accountId ?? '',
              clientId: String(details.params.client_id),
            }))
          : new provider.Grant({
              accountId: details.session?.accountId ?? '',
              clientId: String(details.params.client_id),
            });
        const missing = details.prompt.details as {
          missingOIDCScope?: string[];
          missingResourceScopes?: Record<string, string[]>;
        };
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
          grant.addResourceScope(resource, scopes.join(' '));
        }
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        );
      } catch (error) {
        res.statusCode = 400;
        res.end(`interaction failed: ${(error as Error).name}`);
      }
    })();
  });

  return {
    issuer,
    provider,
    fetched,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
