import { createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { AccessToken, WebhookEvent } from 'livekit-server-sdk';

/** LiveKit API credentials a webhook is signed with. */
export interface WebhookCredentials {
  apiKey: string;
  apiSecret: string;
}

/** A webhook delivery as LiveKit sends it: the JSON body and its `Authorization` header. */
export interface SignedWebhook {
  body: string;
  authorization: string;
}

/** `ParticipantInfo.Kind` names as LiveKit writes them in webhook JSON. */
export type ParticipantKindName = 'STANDARD' | 'INGRESS' | 'EGRESS' | 'SIP' | 'AGENT' | 'CONNECTOR';

/**
 * Signs a body exactly as LiveKit's webhook notifier does: an access token from the API key
 * and secret whose `sha256` claim is the base64 SHA-256 of the body, sent as the bare
 * `Authorization` header (no `Bearer`), valid for 5 minutes.
 */
export async function signWebhookBody(body: string, credentials: WebhookCredentials): Promise<SignedWebhook> {
  const token = new AccessToken(credentials.apiKey, credentials.apiSecret, { ttl: '5m' });
  token.sha256 = createHash('sha256').update(body).digest('base64');
  return { body, authorization: await token.toJwt() };
}

/** Signs like {@link signWebhookBody} but with an `exp` already in the past. */
export async function signExpiredWebhookBody(
  body: string,
  credentials: WebhookCredentials,
): Promise<SignedWebhook> {
  const now = Math.floor(Date.now() / 1000);
  const authorization = await new SignJWT({ sha256: createHash('sha256').update(body).digest('base64') })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(credentials.apiKey)
    .setNotBefore(now - 3600)
    .setExpirationTime(now - 600)
    .sign(new TextEncoder().encode(credentials.apiSecret));
  return { body, authorization };
}

/** Options of {@link participantJoined}. */
export interface ParticipantJoinedOptions {
  id?: string;
  roomName: string;
  roomSid?: string;
  identity: string;
  kind?: ParticipantKindName;
  attributes?: Record<string, string>;
}

/** A `participant_joined` event body as LiveKit serialises it (protojson). */
export function participantJoined(options: ParticipantJoinedOptions): string {
  return eventJson({
    event: 'participant_joined',
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: options.roomSid ?? roomSidOf(options.roomName), name: options.roomName },
    participant: {
      sid: `PA_${randomUUID().slice(0, 12)}`,
      identity: options.identity,
      kind: options.kind ?? 'STANDARD',
      state: 'ACTIVE',
      attributes: options.attributes ?? {},
    },
  });
}

/** A `room_finished` event body. */
export function roomFinished(options: { id?: string; roomName: string; roomSid?: string }): string {
  return eventJson({
    event: 'room_finished',
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: options.roomSid ?? roomSidOf(options.roomName), name: options.roomName },
  });
}

/** Any other event, e.g. `track_published`. */
export function otherEvent(event: string, options: { id?: string; roomName: string }): string {
  return eventJson({
    event,
    id: options.id ?? `EV_${randomUUID()}`,
    room: { sid: roomSidOf(options.roomName), name: options.roomName },
  });
}

/** A stable room sid for a room name, as tests do not care which. */
export function roomSidOf(roomName: string): string {
  return `RM_${createHash('sha256').update(roomName).digest('hex').slice(0, 12)}`;
}

function eventJson(json: Record<string, unknown>): string {
  // Round-trips through the SDK's event type so the body is what LiveKit's protojson writes.
  const event = WebhookEvent.fromJson(
    { ...json, createdAt: String(Math.floor(Date.now() / 1000)) } as never,
    { ignoreUnknownFields: false },
  );
  return event.toJsonString();
}
