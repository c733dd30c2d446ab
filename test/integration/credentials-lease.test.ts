import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../functions/adapters/dynamo/store.js';
import { QuotaExceededError } from '../../functions/core/dispatcher.js';
import { type Harness, startHarness } from '../support/fixtures.js';
import { renew, renewalRig, startSession } from '../support/renewal.js';

// docs/api.md §4, §9: a session's quota lease lasts METADATA_TTL_SECONDS until a renewal extends
// it to now + 2 × CREDENTIALS_REFRESH_SECONDS; a job that renews keeps it, one that stops loses it.
// One clock drives the store (lease and window TTLs), the sealer and the credentials app.

let h: Harness;
let now = Date.now();
const clock = () => new Date(now);
const seconds = () => Math.floor(now / 1000);

beforeAll(async () => {
  h = await startHarness();
}, 30_000);

afterAll(async () => {
  await h?.stop();
});

describe('renewals and the quota lease', () => {
  it('a job that renews keeps its lease past METADATA_TTL_SECONDS; one that stops loses it', async () => {
    // Prepare: one lease for the tenant, leases of 60 s, renewals every 60 s (extend to now + 120 s).
    const store = new DynamoStore({ client: h.db.client, tableName: h.db.tableName, clock: () => now });
    const rig = renewalRig(h, { store, clock, metadataTtlSeconds: 60, credentialsRefreshSeconds: 60 });
    const t0 = now;
    const a = await startSession(h, rig, { maxConcurrentSessions: 1 });
    const startAnother = () => startSession(h, rig, { tenantId: a.tenantId });
    await expect(startAnother()).rejects.toBeInstanceOf(QuotaExceededError);

    // Act: A renews at t0 + 50 s and t0 + 150 s, with assertions made at the shared clock.
    now = t0 + 50_000;
    expect((await renew(h, rig, { sid: a.session.sid, metadata: a.metadata, now: seconds() })).status).toBe(
      200,
    );
    now = t0 + 150_000;
    // Assess: past the first 60 s, and past the first extension's 120 s from t0 + 50, still held.
    expect((await renew(h, rig, { sid: a.session.sid, metadata: a.metadata, now: seconds() })).status).toBe(
      200,
    );
    now = t0 + 260_000;
    await expect(startAnother()).rejects.toBeInstanceOf(QuotaExceededError);

    // A stops renewing: 120 s after its last renewal (t0 + 150 s) the lease lapses and B gets it.
    now = t0 + 271_000;
    const b = await startAnother();
    expect(b.session.lease_slot).toBe(0);
    // A's late renewal cannot take back the lease B holds now (its holder is B's session).
    expect((await renew(h, rig, { sid: a.session.sid, metadata: a.metadata, now: seconds() })).status).toBe(
      200,
    );
    now = t0 + 300_000;
    await expect(startAnother()).rejects.toBeInstanceOf(QuotaExceededError);
    const [lease] = await h.db
      .scan()
      .then((items) => items.filter((i) => String(i.pk) === `LEASE#${a.tenantId}`));
    expect(lease?.holder).toContain(b.session.room_name);
  }, 30_000);
});
