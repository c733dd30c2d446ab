import { lookup } from 'node:dns/promises';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { JWTVerifyGetKey } from 'jose';
import { createJwtVerifier, type JwtVerifier } from './adapters/auth.js';
import { DynamoStore } from './adapters/dynamo/store.js';
import { createDynamoClient } from './adapters/dynamo.js';
import { createLiveKitGateway } from './adapters/livekit.js';
import { createEmfMetrics } from './adapters/metrics.js';
import { createSafeFetch } from './adapters/safe-fetch.js';
import type { Config } from './core/config.js';
import { type ConnectionAdmin, createConnectionAdmin } from './core/connections/admin.js';
import type { ConnectionDeps } from './core/connections/context.js';
import type { ConnectionReader, OAuthTokenSource } from './core/connections/ports.js';
import { type ConnectionService, createConnectionService } from './core/connections/service.js';
import { createTokenSource } from './core/connections/token-source.js';
import { ConfigError, LiveKitUnavailableError } from './core/errors.js';
import type { Log } from './core/log.js';
import type { Metrics } from './core/metrics.js';
import { MemoryMetadataCache } from './core/oauth/ports.js';
import type { LiveKitGateway, Store } from './core/ports.js';
import {
  createDispatchSealer,
  createSecretBox,
  type DispatchSealer,
  type SecretBox,
} from './core/sealing.js';
import type { HostResolver } from './core/url-guard.js';

/**
 * What every function is composed from; each app takes the part it needs. The OAuth parts are
 * added by the function that uses them ({@link withTokenSource}, {@link withConnections},
 * {@link withConnectionAdmin}), so a bundle holds only the OAuth code its function runs.
 */
export interface Services {
  config: Config;
  store: Store;
  /** The users' connections, read strongly consistent for every dispatch (docs/api.md §8). */
  connectionReader: ConnectionReader;
  livekit: LiveKitGateway;
  sealer: DispatchSealer;
  secretBox: SecretBox;
  verifier: JwtVerifier;
  /** What the connection service and the token source are built from. */
  connectionDeps: ConnectionDeps;
  resolveHost: HostResolver;
  clock: () => Date;
  log: Log;
  metrics: Metrics;
}

/** {@link Services} that dispatch or renew: the webhook and credentials functions. */
export interface RefreshingServices extends Services {
  /** Usable OAuth access tokens of connections, refreshed per §8 (dispatch and renewal use it). */
  oauthTokens: OAuthTokenSource;
}

/** {@link Services} with the whole connection service: the session function and `npm start`. */
export interface ConnectedServices extends RefreshingServices {
  /** Per-user MCP credentials and the OAuth client (docs/api.md §8); its token source is `oauthTokens`. */
  connections: ConnectionService;
}

/** {@link Services} of the admin function: the admin's view of any user's connections (docs/api.md §6). */
export interface AdminServices extends Services {
  connections: { admin: ConnectionAdmin };
}

/** Overrides for local runs and tests (a dynalite client, the dev issuer's keys). */
export interface ServiceOverrides {
  dynamo?: DynamoDBDocumentClient;
  getKey?: JWTVerifyGetKey;
  resolveHost?: HostResolver;
  /** Where counts go; CloudWatch EMF (Powertools) when unset. */
  metrics?: Metrics;
  /** The `service` dimension of the EMF metrics (the function's name). */
  service?: string;
}

/** Resolves every address of a host, as the URL guard needs (A and AAAA). */
export const dnsResolveHost: HostResolver = async (host) => lookup(host, { all: true, verbatim: true });

/**
 * The sealer of a function that holds no dispatch keyring (admin, docs/api.md §2): building a real
 * one from the empty ring would throw at cold start, and the admin function never seals.
 */
const noDispatchKeys: DispatchSealer = {
  seal: async () => {
    throw new ConfigError(['DISPATCH_KEYS is not available to this function']);
  },
};

/**
 * The LiveKit gateway of a function that holds no LiveKit credentials (credentials, docs/api.md §9):
 * it never calls LiveKit, and building the real one without credentials would throw at cold start.
 */
const noLiveKit: LiveKitGateway = {
  createDispatch: refuseLiveKit,
  listDispatches: refuseLiveKit,
  deleteDispatch: refuseLiveKit,
  deleteRoom: refuseLiveKit,
  participantToken: refuseLiveKit,
};

async function refuseLiveKit(): Promise<never> {
  throw new ConfigError(['LiveKit credentials are not available to this function']);
}

/**
 * The one composition root: builds the adapters from a validated config. Nothing here talks to
 * the network until a request needs it.
 */
export function createServices(config: Config, log: Log, overrides: ServiceOverrides = {}): Services {
  const client = overrides.dynamo ?? createDynamoClient({ endpoint: config.dynamodbEndpoint });
  const metrics =
    overrides.metrics ?? createEmfMetrics({ service: overrides.service ?? 'livekit-mcp-dispatch' });
  const store = new DynamoStore({ client, tableName: config.tableName });
  const resolveHost = overrides.resolveHost ?? dnsResolveHost;
  const secretBox = createSecretBox(config.storageKeys);
  const clock = () => new Date();
  const connectionDeps: ConnectionDeps = {
    store: store.connectionStore(),
    secretBox,
    fetch: createSafeFetch({
      allowedPorts: config.mcpAllowedPorts,
      allowInsecure: config.allowInsecureMcpUrls,
      resolve: resolveHost,
    }),
    clock: Date.now,
    log,
    // The same object: `npm start` on port 0 fills in the base URL once it listens.
    config: connectionConfig(config),
    clientKeys: config.oauthClientKeys,
    discoveryCache: new MemoryMetadataCache(),
  };
  return {
    config,
    store,
    connectionDeps,
    connectionReader: store.connections,
    livekit:
      config.livekit.apiKey === ''
        ? noLiveKit
        : countingFailures(
            createLiveKitGateway({
              httpUrl: config.livekit.httpUrl,
              apiKey: config.livekit.apiKey,
              apiSecret: config.livekit.apiSecret,
            }),
            metrics,
            config.livekit.wsUrl,
          ),
    sealer: config.dispatchKeys.keys.size > 0 ? createDispatchSealer(config.dispatchKeys) : noDispatchKeys,
    secretBox,
    verifier: createJwtVerifier({
      ...(overrides.getKey ? { getKey: overrides.getKey } : { jwksUrl: config.auth.jwksUrl }),
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      tenantClaim: config.auth.tenantClaim,
    }),
    resolveHost,
    clock,
    log,
    metrics,
  };
}

/** Adds the refreshing token source (§8 Refresh), without the rest of the connection service. */
export function withTokenSource(services: Services): RefreshingServices {
  return { ...services, oauthTokens: createTokenSource(services.connectionDeps) };
}

/** Adds the connection service (authorize, callback, user tokens, the admin's view) and its token source. */
export function withConnections(services: Services): ConnectedServices {
  const connections = createConnectionService(services.connectionDeps);
  return { ...services, connections, oauthTokens: connections.tokenSource };
}

/** Adds the admin's view of any user's connections (list, delete with revocation, discovery). */
export function withConnectionAdmin(services: Services): AdminServices {
  return { ...services, connections: { admin: createConnectionAdmin(services.connectionDeps) } };
}

/** The connection service's view of the config, reading through to it (so later changes show). */
function connectionConfig(config: Config) {
  return {
    get publicBaseUrl() {
      return config.publicBaseUrl;
    },
    oauthStateTtlSeconds: config.oauthStateTtlSeconds,
    mcpTokenMinTtlSeconds: config.mcpTokenMinTtlSeconds,
    allowInsecureMcpUrls: config.allowInsecureMcpUrls,
  };
}

/**
 * The gateway, counting every LiveKit call that fails (`LiveKitFailures`), whichever app made it,
 * and naming the LiveKit URL in the failure's detail (a wrong or unstarted LIVEKIT_URL is the
 * usual cause of a local 502).
 */
function countingFailures(gateway: LiveKitGateway, metrics: Metrics, server: string): LiveKitGateway {
  const counted =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await call(...args);
      } catch (err) {
        if (!(err instanceof LiveKitUnavailableError)) throw err;
        metrics.count('LiveKitFailures');
        throw new LiveKitUnavailableError({ cause: err.cause, server });
      }
    };
  return {
    createDispatch: counted(gateway.createDispatch.bind(gateway)),
    listDispatches: counted(gateway.listDispatches.bind(gateway)),
    deleteDispatch: counted(gateway.deleteDispatch.bind(gateway)),
    deleteRoom: counted(gateway.deleteRoom.bind(gateway)),
    participantToken: gateway.participantToken.bind(gateway),
  };
}
