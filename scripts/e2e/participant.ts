import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnPythonWorker } from './python.js';

const here = dirname(fileURLToPath(import.meta.url));

/** What join_room.py reports, one JSON object per stdout line. */
export type ParticipantEvent =
  | { event: 'connected'; identity: string; room: string; room_sid: string; remote: string[] }
  | { event: 'participant_joined'; identity: string; kind: number }
  | { event: 'participant_left'; identity: string }
  | { event: 'error'; message: string }
  | { event: 'left' };

/** An app user in a room, driven through the Python `livekit` rtc client. */
export interface JoinedParticipant {
  /** The `connected` event (identity, room, room sid, who was already there). */
  connected: Extract<ParticipantEvent, { event: 'connected' }>;
  events(): ParticipantEvent[];
  /** Waits for a remote participant whose identity matches (e.g. the agent, /^agent-/). */
  waitForRemote(identity: RegExp, timeoutMs?: number): Promise<string>;
  /** Disconnects cleanly and waits for the process to end. */
  leave(): Promise<void>;
}

function parse(line: string): ParticipantEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as ParticipantEvent;
  } catch {
    return undefined;
  }
}

/** Joins `url` with a participant token, as a mobile app would after POST /v1/sessions. */
export async function joinRoom(opts: {
  url: string;
  token: string;
  label?: string;
}): Promise<JoinedParticipant> {
  const label = opts.label ?? 'participant';
  const proc = spawnPythonWorker(
    join(here, 'join_room.py'),
    [],
    { LK_URL: opts.url, LK_TOKEN: opts.token },
    {
      label,
      stdin: true,
    },
  );
  const events = () =>
    proc
      .log()
      .split('\n')
      .map(parse)
      .filter((e): e is ParticipantEvent => e !== undefined);
  try {
    await proc.waitForLine((l) => ['connected', 'error'].includes(parse(l)?.event ?? ''), 30_000);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  const first = events().find((e) => e.event === 'connected' || e.event === 'error');
  if (first?.event !== 'connected') {
    await proc.stop();
    throw new Error(`${label} could not join: ${first?.event === 'error' ? first.message : 'no answer'}`);
  }
  return {
    connected: first,
    events,
    async waitForRemote(identity, timeoutMs = 30_000) {
      const present = first.remote.find((r) => identity.test(r));
      if (present) return present;
      const line = await proc.waitForLine((l) => {
        const event = parse(l);
        return event?.event === 'participant_joined' && identity.test(event.identity);
      }, timeoutMs);
      const event = parse(line);
      return event?.event === 'participant_joined' ? event.identity : '';
    },
    async leave() {
      proc.child.stdin?.end();
      const exited = new Promise<void>((resolve) => {
        if (proc.child.exitCode !== null) resolve();
        else proc.child.once('exit', () => resolve());
      });
      const timer = setTimeout(() => void proc.stop(), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
