import { createHash } from 'node:crypto';
import { IDEMPOTENCY_KEY, isTenantId, isUserId } from '@livekit-mcp-dispatch/contract';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import {
  array,
  type infer as Infer,
  looseObject,
  maxLength,
  nullish,
  record,
  refine,
  string,
} from 'zod/mini';
import type { Config } from '../core/config.js';
import type { ConnectionReader, OAuthTokenSource } from '../core/connections/ports.js';
import type { ConnectionService } from '../core/connections/service.js';
import { createDispatcher } from '../core/dispatcher.js';
import { DomainError, ValidationError } from '../core/errors.js';
import { type Log, silentLog } from '../core/log.js';
import { type Metrics, noMetrics } from '../core/metrics.js';
import type { DispatchApi, DispatchStore, ParticipantTokens } from '../core/ports.js';
import { cryptoRandom } from '../core/rooms.js';
import type { DispatchSealer, SecretBox } from '../core/sealing.js';
import { resolverOf } from '../core/servers.js';
import { createSessionService } from '../core/sessions.js';
import { bodyLimitProblem } from '../http/body-limit.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { withProblemHandling } from '../http/problem.js';
import { requestContext } from '../http/request-context.js';
import type { SessionResponse } from '../http/responses.js';
import { readJson, validate } from '../http/validate.js';
import { mountConnectionRoutes } from './connections.js';

/** Everything the session function is composed from. */
export interface SessionAppDeps {
  /** `DynamoStore`. */
  store: DispatchStore;
  /** The LiveKit gateway: dispatch calls and participant tokens. */
  livekit: DispatchApi & ParticipantTokens;
  /** Sealer of dispatch metadata (dispatch keyring). */
  sealer: DispatchSealer;
  /** Opens stored MCP tokens and headers (storage keyring). */
  secretBox: Pick<SecretBox, 'open'>;
  /** The users' connections (docs/api.md §8), read strongly consistent; none when omitted. */
  connectionReader?: ConnectionReader;
  /** Usable OAuth access tokens; the stored token while unexpired when omitted (token-source.ts). */
  oauthTokens?: OAuthTokenSource;
  /** Verifies the app user's bearer JWT. */
  verifier: {
    verify(authorizationHeader: string | undefined): Promise<{ sub: string; tenantId: string | undefined }>;
  };
  config: Pick<
    Config,
    | 'defaultAgentName'
    | 'sessionDispatchMode'
    | 'sessionTokenTtlSeconds'
    | 'sessionRateLimitPerMinute'
    | 'metadataTtlSeconds'
    | 'webhookRoomPrefix'
    | 'corsOrigins'
  > &
    Partial<Pick<Config, 'publicBaseUrl' | 'credentialsRefreshSeconds'>> & {
      livekit: Pick<Config['livekit'], 'wsUrl'>;
    };
  clock?: () => Date;
  log?: Log;
  /** Counts sessions started, dispatches created, quota and rate refusals. */
  metrics?: Metrics;
  /** Random bytes for room names; the platform CSPRNG when omitted. */
  random?: (n: number) => Uint8Array;
  /** Per-user MCP credentials (docs/api.md §8); without it the connection routes are not served. */
  connections?: ConnectionService;
}

/** Largest request body (docs/api.md §7). */
export const SESSION_BODY_LIMIT = 64 * 1024;
const MAX_NAME = 128;
/** Most UTF-8 bytes of `participant_metadata` and an agent's `metadata` (docs/api.md §4). */
export const MAX_METADATA_BYTES = 4096;
/** Most participant attributes (docs/api.md §4). */
export const MAX_ATTRIBUTES = 32;
/** Attribute key prefixes LiveKit reserves: a key starting with one is 400 `field_not_allowed`. */
export const RESERVED_ATTRIBUTE_PREFIXES = ['lk.', 'sip.'] as const;

// A string of at most `max` UTF-8 bytes has at most `max` UTF-16 code units: the maxLength
// changes nothing the API accepts, it only lets the OpenAPI document state the bound.
const utf8Bytes = (max: number) =>
  string().check(
    maxLength(max, { message: `at most ${max} bytes`, abort: true }),
    refine<string>((v) => Buffer.byteLength(v, 'utf8') <= max, { message: `at most ${max} bytes` }),
  );

/** What LiveKit client SDKs' `TokenSource.endpoint` sends; unknown fields are ignored (also the OpenAPI schema). */
export const sessionRequest = looseObject({
  room_name: nullish(string()),
  participant_name: nullish(string().check(maxLength(MAX_NAME))),
  participant_identity: nullish(string()),
  participant_metadata: nullish(utf8Bytes(MAX_METADATA_BYTES)),
  participant_attributes: nullish(
    record(string(), string()).check(
      refine((v) => Object.keys(v).length <= MAX_ATTRIBUTES, {
        message: `at most ${MAX_ATTRIBUTES} attributes`,
      }),
    ),
  ),
  room_config: nullish(
    looseObject({
      agents: nullish(
        array(
          looseObject({
            agent_name: nullish(string()),
            metadata: nullish(utf8Bytes(MAX_METADATA_BYTES)),
            deployment: nullish(string()),
          }),
        ).check(maxLength(1, { message: 'at most one agent' })),
      ),
    }),
  ),
});

type SessionRequest = Infer<typeof sessionRequest>;

/**
 * The session function: `POST /v1/sessions`, a LiveKit token endpoint (docs/api.md §4) that also
 * dispatches the user's agent with their sealed MCP configuration.
 */
export function createSessionApp(deps: SessionAppDeps) {
  const log = deps.log ?? silentLog;
  const clock = deps.clock ?? (() => new Date());
  const { config } = deps;
  const servers = resolverOf({ ...deps, clock, log });
  const dispatcher = createDispatcher({
    store: deps.store,
    livekit: deps.livekit,
    sealer: deps.sealer,
    secretBox: deps.secretBox,
    servers,
    clock,
    log,
    config,
  });
  const sessions = createSessionService({
    store: deps.store,
    dispatcher,
    tokens: deps.livekit,
    sealer: deps.sealer,
    secretBox: deps.secretBox,
    servers,
    random: deps.random ?? cryptoRandom,
    log,
    config,
  });

  const metrics = deps.metrics ?? noMetrics;
  const app = withProblemHandling(new Hono(), (message, meta) => log.error(message, meta));
  app.use('/v1/sessions', requestContext());
  if (config.corsOrigins.length > 0) {
    app.use(
      '/v1/sessions',
      cors({
        origin: config.corsOrigins,
        allowMethods: ['POST', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
        exposeHeaders: ['Retry-After'],
        maxAge: 600,
      }),
    );
  }

  app.post('/v1/sessions', bodyLimitProblem(SESSION_BODY_LIMIT), async (c) => {
    const principal = await deps.verifier.verify(c.req.header('authorization'));
    // The user is the `sub` within the tenant the tenant claim names (docs/api.md §4).
    if (!isTenantId(principal.tenantId)) {
      throw new DomainError('tenant_mismatch', "The token's tenant claim is missing or not a tenant id.");
    }
    // User ids are 1-255 printable characters (docs/api.md §6): any other `sub` has no record.
    if (!isUserId(principal.sub)) {
      throw new DomainError('user_not_found', 'No user record exists for this token.');
    }
    const body = validate(sessionRequest, await readJson(c, { emptyAs: {} }));
    refuseClientChosenFields(body);
    if (
      body.participant_identity != null &&
      body.participant_identity !== '' &&
      body.participant_identity !== principal.sub
    ) {
      throw new DomainError('identity_mismatch', 'participant_identity must be the token subject.');
    }
    const idempotencyKey = c.req.header('idempotency-key');
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ValidationError('The Idempotency-Key header is invalid.', {
        details: {
          errors: [{ path: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' }],
        },
      });
    }

    const agent = body.room_config?.agents?.[0];
    const started = await countRefusals(metrics, () =>
      sessions.start({
        userId: principal.sub,
        tenantClaim: principal.tenantId,
        ...(body.participant_name == null ? {} : { participantName: body.participant_name }),
        ...(body.participant_metadata == null ? {} : { participantMetadata: body.participant_metadata }),
        ...(body.participant_attributes == null
          ? {}
          : { participantAttributes: body.participant_attributes }),
        ...(agent?.agent_name == null ? {} : { agentName: agent.agent_name }),
        ...(agent?.metadata == null ? {} : { agentMetadata: agent.metadata }),
        ...(idempotencyKey === undefined
          ? {}
          : { idempotency: { key: idempotencyKey, requestHash: hashOf(body) } }),
      }),
    );
    if (!started.replayed) {
      metrics.count('SessionsStarted');
      if (started.dispatchId !== null) metrics.count('DispatchesCreated');
    }

    c.header('cache-control', 'no-store');
    return c.json(
      {
        server_url: config.livekit.wsUrl,
        participant_token: started.participantToken,
        room_name: started.roomName,
        participant_identity: started.participantIdentity,
        agent_name: started.agentName,
        dispatch_id: started.dispatchId,
        expires_at: started.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        mcp_servers: started.mcpServers,
      } satisfies SessionResponse,
      201,
    );
  });

  if (deps.connections !== undefined) {
    app.use('/v1/connections', requestContext());
    app.use('/v1/connections/*', requestContext());
    app.use('/v1/oauth/*', requestContext());
    mountConnectionRoutes(app, {
      connections: deps.connections,
      verifier: deps.verifier,
      corsOrigins: config.corsOrigins,
    });
  }

  return methodNotAllowed(app, 'session');
}

/** Runs `start`, counting a quota or rate refusal before it propagates. */
async function countRefusals<T>(metrics: Metrics, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof DomainError && err.code === 'quota_exceeded') metrics.count('QuotaRejections');
    if (err instanceof DomainError && err.code === 'rate_limited') metrics.count('RateRejections');
    throw err;
  }
}

/** `room_name` and reserved attribute keys are the server's to set (400 `field_not_allowed`). */
function refuseClientChosenFields(body: SessionRequest): void {
  if (body.room_name != null && body.room_name !== '') {
    throw new DomainError('field_not_allowed', 'room_name is chosen by the server.', {
      details: { fields: ['room_name'] },
    });
  }
  const reserved = Object.keys(body.participant_attributes ?? {}).filter((k) =>
    RESERVED_ATTRIBUTE_PREFIXES.some((p) => k.startsWith(p)),
  );
  if (reserved.length > 0) {
    throw new DomainError('field_not_allowed', 'Attribute keys starting with lk. or sip. are reserved.', {
      details: { fields: reserved.map((k) => `participant_attributes.${k.slice(0, 64)}`) },
    });
  }
}

/** A hash of what the request asks for (known fields only, key order ignored). */
function hashOf(body: SessionRequest): string {
  const agent = body.room_config?.agents?.[0];
  const canonical = {
    participant_name: body.participant_name ?? null,
    participant_identity: body.participant_identity ?? null,
    participant_metadata: body.participant_metadata ?? null,
    participant_attributes: Object.fromEntries(
      Object.entries(body.participant_attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ),
    agent_name: agent?.agent_name ?? null,
    agent_metadata: agent?.metadata ?? null,
    agent_deployment: agent?.deployment ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
