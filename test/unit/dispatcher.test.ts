import { describe, expect, it } from 'vitest';
import {
  createDispatcher,
  DispatchInProgressError,
  type DispatchRequest,
  QuotaExceededError,
} from '../../functions/core/dispatcher.js';
import { DomainError, LiveKitUnavailableError, StoreUnavailableError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import type { TenantRecord } from '../../functions/core/model.js';
import type { DispatchApi } from '../../functions/core/ports.js';
import { newRoomName, normalizeE164, roomTenantCandidates } from '../../functions/core/rooms.js';
import { createDispatchSealer } from '../../functions/core/sealing.js';
import { testKeyring } from '../support/fixtures.js';
import { MemoryStore } from '../support/memory-store.js';
import { tenantRecord, userRecord } from '../support/records.js';

/** A MemoryStore whose reads take a few ms and count how many run at once. */
class SlowReadStore extends MemoryStore {
  inFlight = 0;
  maxInFlight = 0;
  private async slow<T>(read: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return await read();
    } finally {
      this.inFlight -= 1;
    }
  }
  override getUser(tenantId: string, id: string) {
    return this.slow(() => super.getUser(tenantId, id));
  }
  override getTenant(id: string) {
    return this.slow(() => super.getTenant(id));
  }
  override roomSessions(room: string) {
    return this.slow(() => super.roomSessions(room));
  }
}

/** An in-memory LiveKit whose calls can be made to fail. */
class MemoryLiveKit implements DispatchApi {
  dispatches: { id: string; room: string; agentName: string; metadata: string }[] = [];
  failCreate: 'before' | 'after' | undefined;
  failList = false;
  private n = 0;

  async createDispatch(room: string, agentName: string, metadata: string) {
    if (this.failCreate === 'before') throw new LiveKitUnavailableError();
    this.n += 1;
    const id = `AD_${this.n}`;
    this.dispatches.push({ id, room, agentName, metadata });
    if (this.failCreate === 'after') throw new LiveKitUnavailableError();
    return { dispatchId: id };
  }
  async listDispatches(room: string) {
    if (this.failList) throw new LiveKitUnavailableError();
    return this.dispatches.filter((d) => d.room === room);
  }
  async deleteDispatch(id: string) {
    this.dispatches = this.dispatches.filter((d) => d.id !== id);
  }
}

const tenant = (overrides: Partial<TenantRecord> = {}) =>
  tenantRecord({
    webhook_dispatch: true,
    created_at: '2026-11-29T00:00:00Z',
    updated_at: '2026-11-29T00:00:00Z',
    ...overrides,
  });

function setup(store = new MemoryStore()) {
  // The tenant and user of request(): the saga's fence re-reads both after writing its marker.
  store.tenants.set('acme', tenant());
  for (const id of ['alice', 'bob']) store.setUser(userRecord('acme', { user_id: id }));
  const livekit = new MemoryLiveKit();
  const dispatcher = createDispatcher({
    store,
    livekit,
    sealer: createDispatchSealer(testKeyring('d1')),
    secretBox: { open: async () => 'never' },
    clock: () => new Date(),
    log: silentLog,
    config: { metadataTtlSeconds: 7200, defaultAgentName: 'mcp-agent', webhookRoomPrefix: 'lk-mcp-' },
  });
  return { store, livekit, dispatcher };
}

function request(overrides: Partial<DispatchRequest> = {}): DispatchRequest {
  return {
    tenant: tenant({ max_concurrent_sessions: 2 }),
    userId: 'alice',
    participantIdentity: 'alice',
    agentName: 'mcp-agent',
    roomName: 'lk-mcp-acme-room',
    roomSid: 'RM_1',
    perParticipant: false,
    mcpServers: [{ name: 'mcp', url: 'https://mcp.example.com', transport: 'streamable_http', headers: {} }],
    mode: 'api',
    origin: 'webhook',
    ...overrides,
  };
}

describe('dispatcher.dispatch', () => {
  it('creates one dispatch and one session, then reports already_dispatched', async () => {
    const { store, livekit, dispatcher } = setup();

    const first = await dispatcher.dispatch(request());
    const second = await dispatcher.dispatch(request({ userId: 'bob', participantIdentity: 'bob' }));

    expect(first.status).toBe('dispatched');
    expect(second.status).toBe('already_dispatched');
    expect(livekit.dispatches).toHaveLength(1);
    expect(store.sessions.size).toBe(1);
    expect(store.leases.size).toBe(1);
  });

  it('LiveKit failed after creating: the dispatch is removed, claim and lease released', async () => {
    const { store, livekit, dispatcher } = setup();
    livekit.failCreate = 'after';

    await expect(dispatcher.dispatch(request())).rejects.toBeInstanceOf(LiveKitUnavailableError);

    expect(livekit.dispatches).toHaveLength(0);
    expect(store.claims.size).toBe(0);
    expect(store.leases.size).toBe(0);
    expect(store.sessions.size).toBe(0);
  });

  it('cleanup impossible: the claim stays, abandoned, and the retry adopts instead of adding an agent', async () => {
    const { store, livekit, dispatcher } = setup();
    livekit.failCreate = 'after';
    livekit.failList = true;

    await expect(dispatcher.dispatch(request())).rejects.toBeInstanceOf(LiveKitUnavailableError);

    expect(store.leases.size).toBe(0);
    const [claim] = [...store.claims.values()];
    expect(claim?.state).toBe('in_progress');
    expect(claim!.holdUntil).toBeLessThan(Date.now());

    livekit.failCreate = undefined;
    livekit.failList = false;
    const retry = await dispatcher.dispatch(request());

    expect(retry.status).toBe('dispatched');
    expect(livekit.dispatches).toHaveLength(1);
    expect([...store.sessions.values()][0]?.dispatch_id).toBe(livekit.dispatches[0]?.id);
  });

  it('a claim another attempt is still holding is retryable, never already_dispatched', async () => {
    const { store, dispatcher } = setup();
    await store.tryClaim(
      { kind: 'dispatch', room: 'RM_1', agent: 'mcp-agent' },
      { ttlSeconds: 7200, holdSeconds: 30 },
    );

    await expect(dispatcher.dispatch(request())).rejects.toBeInstanceOf(DispatchInProgressError);
  });

  it('session write failed: the dispatch is removed and nothing stays', async () => {
    const { store, livekit, dispatcher } = setup();
    store.failPutSession = true;

    await expect(dispatcher.dispatch(request())).rejects.toBeInstanceOf(StoreUnavailableError);

    expect(livekit.dispatches).toHaveLength(0);
    expect(store.claims.size).toBe(0);
    expect(store.leases.size).toBe(0);
  });

  it('admit refusing: nothing created, claim and lease released', async () => {
    const { store, livekit, dispatcher } = setup();
    const refusal = new DomainError('rate_limited', 'slow down');

    await expect(
      dispatcher.dispatch(
        request({
          admit: async () => {
            throw refusal;
          },
        }),
      ),
    ).rejects.toBe(refusal);

    expect(livekit.dispatches).toHaveLength(0);
    expect(store.claims.size).toBe(0);
    expect(store.leases.size).toBe(0);
  });

  it('quota: the claim is released and QuotaExceededError thrown', async () => {
    const { store, dispatcher } = setup();
    const limited = tenant({ max_concurrent_sessions: 1 });
    await dispatcher.dispatch(request({ tenant: limited }));

    await expect(
      dispatcher.dispatch(request({ tenant: limited, roomName: 'lk-mcp-acme-two', roomSid: 'RM_2' })),
    ).rejects.toBeInstanceOf(QuotaExceededError);

    expect(store.claims.size).toBe(1);
  });

  it('a fresh room (session API) takes no claim; a LiveKit failure still removes the dispatch and frees the lease', async () => {
    const { store, livekit, dispatcher } = setup();
    const fresh = (roomName: string) =>
      request({ origin: 'session', roomSid: undefined, roomName, freshRoom: true });

    const ok = await dispatcher.dispatch(fresh('lk-mcp-acme-fresh1'));
    livekit.failCreate = 'after';
    const failed = dispatcher.dispatch(fresh('lk-mcp-acme-fresh2'));

    expect(ok.status).toBe('dispatched');
    await expect(failed).rejects.toBeInstanceOf(LiveKitUnavailableError);
    expect(store.claims.size).toBe(0);
    expect(livekit.dispatches.map((d) => d.room)).toEqual(['lk-mcp-acme-fresh1']);
    expect([...store.sessions.values()].map((s) => s.room_name)).toEqual(['lk-mcp-acme-fresh1']);
    expect([...store.leases.values()]).toEqual([
      JSON.stringify(['lk-mcp-acme-fresh1', 'mcp-agent', 'alice']),
    ]);
  });

  it('a fresh room whose session write failed: the dispatch is removed, the lease freed, nothing stays', async () => {
    const { store, livekit, dispatcher } = setup();
    store.failPutSession = true;

    await expect(
      dispatcher.dispatch(request({ origin: 'session', roomSid: undefined, freshRoom: true })),
    ).rejects.toBeInstanceOf(StoreUnavailableError);

    expect(livekit.dispatches).toHaveLength(0);
    expect(store.claims.size).toBe(0);
    expect(store.leases.size).toBe(0);
  });

  it('token mode records the session with no LiveKit call', async () => {
    const { store, livekit, dispatcher } = setup();

    const result = await dispatcher.dispatch(
      request({ mode: 'token', origin: 'session', roomSid: undefined }),
    );

    expect(result.status).toBe('dispatched');
    expect(livekit.dispatches).toHaveLength(0);
    expect([...store.sessions.values()][0]).toMatchObject({ mode: 'token', dispatch_id: null });
  });

  it('per participant, an abandoned claim adopts only its own dispatch', async () => {
    const { store, livekit, dispatcher } = setup();
    // Bob's dispatch exists; Alice's attempt died after CreateDispatch, before recording it.
    await dispatcher.dispatch(request({ userId: 'bob', participantIdentity: 'bob', perParticipant: true }));
    livekit.failCreate = 'after';
    livekit.failList = true;
    await expect(dispatcher.dispatch(request({ perParticipant: true }))).rejects.toBeInstanceOf(
      LiveKitUnavailableError,
    );
    for (const c of store.claims.values()) c.holdUntil = 0;
    livekit.failCreate = undefined;
    livekit.failList = false;

    const retry = await dispatcher.dispatch(request({ perParticipant: true }));

    expect(retry.status).toBe('dispatched');
    expect(livekit.dispatches).toHaveLength(2);
    const alice = [...store.sessions.values()].find((s) => s.participant_identity === 'alice');
    const bob = [...store.sessions.values()].find((s) => s.participant_identity === 'bob');
    expect(alice?.dispatch_id).not.toBe(bob?.dispatch_id);
    expect(livekit.dispatches.map((d) => d.id)).toContain(alice?.dispatch_id);
  });
});

describe('dispatcher.finishRoom', () => {
  it('ends the sessions of that room incarnation, releasing leases and claims', async () => {
    const { store, dispatcher } = setup();
    await dispatcher.dispatch(request());
    await dispatcher.dispatch(request({ roomSid: 'RM_old', userId: 'bob', participantIdentity: 'bob' }));

    expect(await dispatcher.finishRoom('lk-mcp-acme-room', 'RM_1')).toBe(1);
    expect(await dispatcher.finishRoom('lk-mcp-acme-room', 'RM_1')).toBe(0);

    const ended = [...store.sessions.values()].filter((s) => s.status === 'ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]?.participant_identity).toBe('alice');
    expect(ended[0]?.duration_seconds).toBeGreaterThanOrEqual(0);
    // Only the other incarnation's session still holds a lease and a claim.
    expect([...store.leases.values()]).toEqual([JSON.stringify(['lk-mcp-acme-room', 'mcp-agent', 'bob'])]);
    expect([...store.claims.keys()]).toEqual([expect.stringContaining('RM_old')]);
  });
});

describe('dispatcher.participantJoined', () => {
  it('refuses a room whose name belongs to a longer tenant id', async () => {
    const { store, livekit, dispatcher } = setup();
    store.tenants.set('acme', tenant());
    store.tenants.set('acme-corp', tenant({ tenant_id: 'acme-corp' }));
    store.setUser({
      tenant_id: 'acme',
      user_id: 'alice',
      phone_numbers: [],
      status: 'active',
      mcp: { url: 'https://mcp.example.com' },
      version: 1,
      created_at: '',
      updated_at: '',
    });
    const join = (roomName: string) =>
      dispatcher.participantJoined({
        roomName,
        roomSid: `RM_${roomName}`,
        identity: 'alice',
        kind: 0,
        attributes: {},
      });

    expect(await join('lk-mcp-acme-corp-x')).toBe('ignored');
    expect(await join('lk-mcp-acme-x')).toBe('dispatched');
    // v3: a room that names no tenant gets no dispatch (docs/api.md §5).
    expect(await join('lk-mcp-free-form')).toBe('ignored');
    expect(await join('lk-mcp-acme-daily-x')).toBe('dispatched');
    expect(livekit.dispatches).toHaveLength(2);
  });

  it("reads the room's sessions, the user and the room name's tenant at once", async () => {
    const store = new SlowReadStore();
    const { livekit, dispatcher } = setup(store);
    store.tenants.set('acme', tenant());
    store.setUser({
      tenant_id: 'acme',
      user_id: 'alice',
      phone_numbers: [],
      status: 'active',
      mcp: { url: 'https://mcp.example.com' },
      version: 1,
      created_at: '',
      updated_at: '',
    });

    const outcome = await dispatcher.participantJoined({
      roomName: 'lk-mcp-acme-x',
      roomSid: 'RM_x',
      identity: 'alice',
      kind: 0,
      attributes: {},
    });

    expect(outcome).toBe('dispatched');
    expect(livekit.dispatches).toHaveLength(1);
    expect(store.maxInFlight).toBe(3);
  });
});

describe('rooms', () => {
  it('names rooms <prefix><tenant>-<120 random bits, no hyphen>', () => {
    const names = new Set(
      Array.from({ length: 200 }, () =>
        newRoomName('lk-mcp-', 'acme-corp', (n) => crypto.getRandomValues(new Uint8Array(n))),
      ),
    );
    expect(names.size).toBe(200);
    for (const name of names) expect(name).toMatch(/^lk-mcp-acme-corp-[a-z2-7]{24}$/);
    expect(roomTenantCandidates([...names][0]!, 'lk-mcp-')).toEqual(['acme-corp', 'acme']);
  });

  it('lists tenant candidates longest first, only valid ids, only under the prefix', () => {
    expect(roomTenantCandidates('lk-mcp-a-b-c-d', 'lk-mcp-')).toEqual(['a-b-c', 'a-b']);
    expect(roomTenantCandidates('other-acme-x', 'lk-mcp-')).toEqual([]);
    expect(roomTenantCandidates('lk-mcp-Acme-x', 'lk-mcp-')).toEqual([]);
  });

  it('normalises SIP numbers to E.164', () => {
    expect(normalizeE164('+15551234567')).toBe('+15551234567');
    expect(normalizeE164('15551234567')).toBe('+15551234567');
    expect(normalizeE164(' +1 (555) 123-4567 ')).toBe('+15551234567');
    expect(normalizeE164('abc')).toBeUndefined();
    expect(normalizeE164('+0123')).toBeUndefined();
    expect(normalizeE164(undefined)).toBeUndefined();
  });
});
