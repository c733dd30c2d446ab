import { WebhookReceiver } from 'livekit-server-sdk';
import { answer, dispatchFor, type HttpEvent, livekitCreds, putNew } from './first-common.js';

/**
 * First-request floor of a dispatching webhook `participant_joined`: the signature checked by
 * the SDK's WebhookReceiver, the event claimed once (one conditional put: exactly-once delivery
 * needs it), then {@link dispatchFor}. The tenant is the room name's `lk-mcp-<tenant>-` part.
 */
const receiver = new WebhookReceiver(livekitCreds.api_key, livekitCreds.api_secret);

export async function handler(event: HttpEvent) {
  const body = event.isBase64Encoded
    ? Buffer.from(event.body ?? '', 'base64').toString()
    : (event.body ?? '');
  const hook = await receiver.receive(body, event.headers.authorization);
  if (hook.event !== 'participant_joined') return answer(200, { action: 'ignored' });
  await putNew(`EVENT#${hook.id}`, 'CLAIM');
  const room = hook.room?.name ?? '';
  const tenantId = /^lk-mcp-(.+)-[^-]+$/.exec(room)?.[1] ?? '';
  await dispatchFor(hook.participant?.identity ?? '', tenantId, room);
  return answer(200, { action: 'dispatched' });
}
