import { Hono } from 'hono';
import { type WebhookEvent, WebhookReceiver } from 'livekit-server-sdk';
import type { Config } from '../core/config.js';
import type { ConnectionReader, OAuthTokenSource } from '../core/connections/ports.js';
import { createDispatcher } from '../core/dispatcher.js';
import { KeyTooLongError, LiveKitUnavailableError } from '../core/errors.js';
import { addLogContext, type Log, silentLog } from '../core/log.js';
import { type MetricName, type Metrics, noMetrics } from '../core/metrics.js';
import { once } from '../core/once.js';
import type { DispatchApi, DispatchStore, RoomApi } from '../core/ports.js';
import { isServiceParticipant, ParticipantKind } from '../core/rooms.js';
import type { DispatchSealer, SecretBox } from '../core/sealing.js';
import { resolverOf } from '../core/servers.js';
import { bodyLimitProblem } from '../http/body-limit.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import {
  problem,
  problemWithStatus,
  retryAfterFor,
  statusFor,
  toProblem,
  WEBHOOK_STATUS,
  withProblemHandling,
} from '../http/problem.js';
import { requestContext } from '../http/request-context.js';
import type { WebhookResponse } from '../http/responses.js';

/** Everything the webhook function is composed from. */
export interface WebhookAppDeps {
  /** `DynamoStore`. */
  store: DispatchStore;
  /** The LiveKit gateway (dispatch calls; deleting a room whose session ended). */
  livekit: DispatchApi & RoomApi;
  /** Sealer of dispatch metadata (dispatch keyring). */
  sealer: DispatchSealer;
  /** Opens stored MCP tokens and headers (storage keyring). */
  secretBox: Pick<SecretBox, 'open'>;
  /** The users' connections (docs/api.md §8), read strongly consistent; none when omitted. */
  connectionReader?: ConnectionReader;
  /** Usable OAuth access tokens; the stored token while unexpired when omitted (token-source.ts). */
  oauthTokens?: OAuthTokenSource;
  config: Pick<Config, 'defaultAgentName' | 'metadataTtlSeconds' | 'webhookRoomPrefix'> &
    Partial<Pick<Config, 'publicBaseUrl' | 'credentialsRefreshSeconds'>> & {
      livekit: Pick<Config['livekit'], 'apiKey' | 'apiSecret'>;
    };
  clock?: () => Date;
  log?: Log;
  /** Counts dispatches, duplicate events, rejected signatures and quota refusals. */
  metrics?: Metrics;
}

/** Largest webhook body (docs/api.md §5: LiveKit events carry room and participant metadata). */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;
export { EVENT_CLAIM_HOLD_SECONDS, EVENT_CLAIM_TTL_SECONDS } from '../core/once.js';

/** The `action` of a 200 answer (docs/api.md §5). */
export type WebhookAction =
  | 'dispatched'
  | 'already_dispatched'
  | 'duplicate_event'
  | 'ended'
  | 'ignored'
  | 'quota_exceeded';

/** The metric each counted action adds to. */
const ACTION_METRIC: Partial<Record<WebhookAction, MetricName>> = {
  dispatched: 'DispatchesCreated',
  duplicate_event: 'DuplicateEvents',
  quota_exceeded: 'QuotaRejections',
};

/**
 * The webhook function: `POST /v1/livekit/webhook`, LiveKit's webhook target (docs/api.md §5).
 * The signature is checked against the raw body before anything is parsed, read or written.
 */
export function createWebhookApp(deps: WebhookAppDeps) {
  const log = deps.log ?? silentLog;
  const { store, config } = deps;
  const receiver = new WebhookReceiver(config.livekit.apiKey, config.livekit.apiSecret);
  const clock = deps.clock ?? (() => new Date());
  const dispatcher = createDispatcher({
    store,
    livekit: deps.livekit,
    sealer: deps.sealer,
    secretBox: deps.secretBox,
    servers: resolverOf({ ...deps, clock, log }),
    clock,
    log,
    config,
  });

  const exactlyOnce = (eventId: string, work: () => Promise<WebhookAction>) =>
    once(store, log, eventId, work);

  /**
   * An event whose ids do not fit a table key (the store's `KeyTooLongError`) can name no room,
   * user or event of ours, and that is no reason for a 5xx: it is ignored.
   */
  async function handle(event: WebhookEvent): Promise<WebhookAction> {
    try {
      return await route(event);
    } catch (err) {
      if (err instanceof KeyTooLongError) return 'ignored';
      throw err;
    }
  }

  async function route(event: WebhookEvent): Promise<WebhookAction> {
    const room = event.room;
    switch (event.event) {
      case 'participant_joined': {
        const participant = event.participant;
        if (!room?.name || !participant?.identity) return 'ignored';
        if (isServiceParticipant(participant.kind)) return 'ignored';
        // Cheap refusals first, so most events of unrelated rooms cost no write.
        if (participant.kind !== ParticipantKind.SIP && !room.name.startsWith(config.webhookRoomPrefix)) {
          return 'ignored';
        }
        return exactlyOnce(event.id, async () => {
          const outcome = await dispatcher.participantJoined({
            roomName: room.name,
            roomSid: room.sid,
            identity: participant.identity,
            kind: participant.kind,
            attributes: { ...participant.attributes },
          });
          if (outcome !== 'session_ended') return outcome;
          // A replayed participant token must not bring the agent (and its old sealed metadata)
          // back: the room goes, and everyone in it with it.
          await deps.livekit.deleteRoom(room.name);
          return 'ended';
        });
      }
      case 'room_finished': {
        if (!room?.name) return 'ignored';
        return exactlyOnce(event.id, async () =>
          (await dispatcher.finishRoom(room.name, room.sid || undefined)) > 0 ? 'ended' : 'ignored',
        );
      }
      default:
        return 'ignored';
    }
  }

  const metrics = deps.metrics ?? noMetrics;
  const app = withProblemHandling(new Hono(), (message, meta) => log.error(message, meta));
  // LiveKit retries a delivery answered 5xx: a LiveKit failure is worth a retry (WEBHOOK_STATUS).
  app.onError((err) =>
    err instanceof LiveKitUnavailableError
      ? problemWithStatus(statusFor(err.code, WEBHOOK_STATUS), err.code, err.message, undefined, {
          'retry-after': retryAfterFor(err.code, statusFor(err.code, WEBHOOK_STATUS)) ?? '1',
        })
      : toProblem(err, (message, meta) => log.error(message, meta)),
  );

  app.use('/v1/livekit/webhook', requestContext());
  app.post('/v1/livekit/webhook', bodyLimitProblem(WEBHOOK_BODY_LIMIT), async (c) => {
    const body = await c.req.text();
    let event: WebhookEvent;
    try {
      event = await receiver.receive(body, c.req.header('authorization'));
    } catch (err) {
      log.warn('webhook refused', { reason: err instanceof Error ? err.message.slice(0, 120) : typeof err });
      metrics.count('RejectedSignatures');
      return problem('invalid_signature', 'The webhook signature is missing or invalid.');
    }
    // Every later line of this delivery (the dispatcher's too) names the event and the room.
    addLogContext({ event_id: event.id, room: event.room?.name });
    const eventLog = log.child({ event: event.event });
    const action = await handle(event);
    const counted = ACTION_METRIC[action];
    if (counted !== undefined) metrics.count(counted);
    eventLog.info('webhook handled', { action });
    return c.json({ ok: true, action } satisfies WebhookResponse, 200);
  });

  return methodNotAllowed(app, 'webhook');
}
