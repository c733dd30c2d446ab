import { DomainError } from './errors.js';
import type { Log } from './log.js';
import type { ClaimStore } from './ports.js';

/** How long a processed event id is remembered: far beyond LiveKit's retries. */
export const EVENT_CLAIM_TTL_SECONDS = 24 * 3600;
/** How long a delivery being processed holds its event id before a retry may take over. */
export const EVENT_CLAIM_HOLD_SECONDS = 30;

/** What {@link once} answers when the event was already processed. */
export const DUPLICATE_EVENT = 'duplicate_event';

/**
 * Runs `work` for an event id at most once: the first delivery claims the id, a repeat of a
 * completed one answers {@link DUPLICATE_EVENT}, a repeat while it runs is 503
 * `event_in_progress`. A failed attempt releases its claim, so LiveKit's retry runs again.
 * An empty id (no id to deduplicate by) just runs `work`.
 */
export async function once<A extends string>(
  store: Pick<ClaimStore, 'tryClaim' | 'releaseClaim' | 'completeClaim'>,
  log: Log,
  eventId: string,
  work: () => Promise<A>,
): Promise<A | typeof DUPLICATE_EVENT> {
  if (eventId === '') return work();
  const ref = { kind: 'event', id: eventId } as const;
  const claim = await store.tryClaim(ref, {
    ttlSeconds: EVENT_CLAIM_TTL_SECONDS,
    holdSeconds: EVENT_CLAIM_HOLD_SECONDS,
  });
  if (!claim.won) {
    if (claim.current.state === 'completed') return DUPLICATE_EVENT;
    throw new DomainError('event_in_progress', 'This event is being processed; retry later.');
  }
  let action: A;
  try {
    action = await work();
  } catch (err) {
    await store.releaseClaim(ref, claim.owner).catch((e: unknown) => {
      log.warn('event claim release failed', { error: e instanceof Error ? e.name : typeof e });
    });
    throw err;
  }
  await store.completeClaim(ref, claim.owner, { action }, EVENT_CLAIM_TTL_SECONDS);
  return action;
}
