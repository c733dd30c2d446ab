import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';

/** The one test account: its login form takes these. */
export const TEST_ACCOUNT = { login: 'alice', password: 'correct horse', sub: 'user-alice' } as const;

/** Options of {@link startAuthorizationServer}. */
export interface AuthorizationServerOptions {
  /** Resources (MCP server URLs) it issues audience-bound JWT access tokens for. */
  resources: () => readonly string[];
  /** Scopes each resource may be granted. */
  resourceScopes?: string;
  /** Pre-registered clients (oidc-provider client metadata). */
  clients?: Configuration['clients'];
  accessTokenTtlSeconds?: number;
}

/** A running oidc-provider on loopback with a two-step login + consent UI. */
export interface RunningAuthorizationServer {
  issuer: string;
  provider: Provider;
  stop(): Promise<void>;
}

function page(title: string, uid: string, fields: string): string {
  return `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1>
<form method="post" action="/interaction/${uid}">${fields}<button id="submit" type="submit">Continue</button></form></body></html>`;
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
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signing = { ...(await exportJWK(privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
  const scope = options.resourceScopes ?? 'notes:read notes:write';

  const provider = new Provider(issuer, {
    clients: options.clients ?? [],
    jwks: { keys: [signing] },
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'],
    enabledJWA: { clientAuthSigningAlgValues: ['ES256'] },
    clientDefaults: {
      id_token_signed_response_alg: 'ES256',
      grant_types: ['authorization_code', 'refresh_token'],
    },
    scopes: ['openid', 'offline_access'],
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: options.accessTokenTtlSeconds ?? 600, Grant: 3600, Session: 3600, Interaction: 600 },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      revocation: { enabled: true },
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
      sub === TEST_ACCOUNT.sub ? { accountId: sub, claims: async () => ({ sub }) } : undefined,
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
          const ok =
            form.get('login') === TEST_ACCOUNT.login && form.get('password') === TEST_ACCOUNT.password;
          const result = ok
            ? { login: { accountId: TEST_ACCOUNT.sub } }
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
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
