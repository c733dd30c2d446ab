import { Hono } from 'hono';
import { array, literal, maxLength, minLength, object, optional, string, union } from 'zod/mini';
import type { Config } from '../core/config.js';
import type { ConnectionReader, OAuthTokenSource } from '../core/connections/ports.js';
import type { Keyring } from '../core/keyring.js';
import { type Log, silentLog } from '../core/log.js';
import type { CredentialsStore } from '../core/ports.js';
import { createRenewalService } from '../core/renewal.js';
import type { DispatchSealer, SecretBox } from '../core/sealing.js';
import { resolverOf, type ServerResolver } from '../core/servers.js';
import { bodyLimitProblem } from '../http/body-limit.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { withProblemHandling } from '../http/problem.js';
import { requestContext } from '../http/request-context.js';
import { readJson, validate } from '../http/validate.js';

/** Everything the credentials function is composed from: no LiveKit, no user JWTs. */
export interface CredentialsAppDeps {
  /** `DynamoStore`. */
  store: CredentialsStore;
  /** Seals the renewed metadata (dispatch keyring). */
  sealer: DispatchSealer;
  /** Opens stored MCP tokens and headers (storage keyring). */
  secretBox: Pick<SecretBox, 'open'>;
  config: Pick<Config, 'dispatchKeys' | 'metadataTtlSeconds' | 'credentialsRefreshSeconds' | 'publicBaseUrl'>;
  /** The users' connections (docs/api.md §8), read strongly consistent; none when omitted. */
  connectionReader?: ConnectionReader;
  /** Usable OAuth access tokens (refreshed per §8); the stored token while unexpired when omitted. */
  oauthTokens?: OAuthTokenSource;
  /** The servers of a user, as a dispatch resolves them; built from the above when unset. */
  resolveServers?: ServerResolver;
  clock?: () => Date;
  log?: Log;
}

/** Largest request body (docs/api.md §7). */
export const CREDENTIALS_BODY_LIMIT = 64 * 1024;

/** `{metadata, rejected?}` (docs/api.md §9); also the OpenAPI schema. */
export const credentialsRequest = object({
  metadata: string().check(minLength(1), maxLength(32 * 1024)),
  rejected: optional(
    array(
      object({
        name: string().check(minLength(1), maxLength(64)),
        status: union([literal(401), literal(403)]),
        scope: optional(string().check(maxLength(1024))),
      }),
    ).check(maxLength(8)),
  ),
});

/** The credentials function: `POST /v1/worker/credentials`, a live job's renewal (docs/api.md §9). */
export function createCredentialsApp(deps: CredentialsAppDeps) {
  const log = deps.log ?? silentLog;
  const clock = deps.clock ?? (() => new Date());
  const renewals = createRenewalService({
    store: deps.store,
    dispatchKeys: deps.config.dispatchKeys as Keyring,
    sealer: deps.sealer,
    resolveServers: resolverOf({ ...deps, servers: deps.resolveServers, clock, log }),
    clock,
    log,
    config: deps.config,
  });

  const app = withProblemHandling(new Hono(), (message, meta) => log.error(message, meta));
  app.use('/v1/worker/credentials', requestContext());
  app.post('/v1/worker/credentials', bodyLimitProblem(CREDENTIALS_BODY_LIMIT), async (c) => {
    // The assertion first (no I/O), then the body (nothing is written for a bad one), then the rest.
    const assertion = await renewals.verifyAssertion(c.req.header('authorization'));
    const body = validate(credentialsRequest, await readJson(c));
    const renewed = await renewals.renew(assertion, {
      metadata: body.metadata,
      rejected: (body.rejected ?? []).map((r) => ({
        name: r.name,
        status: r.status,
        ...(r.scope === undefined ? {} : { scope: r.scope }),
      })),
    });
    c.header('cache-control', 'no-store');
    return c.json(renewed, 200);
  });

  return methodNotAllowed(app, 'credentials');
}
