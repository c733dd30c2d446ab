import { DISPATCH_ERROR_CODES } from '@livekit-mcp-dispatch/contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzzVectors, keyringJson, mismatches, namedVectors, now, outcome } from '../scripts/make-vectors.js';
import { openDispatchMetadata } from '../src/open.js';

// The same vectors the Python suite opens (worker/python/tests/test_open.py): the named ones
// with their written expectation, the fuzz ones with the verdict this opener gives.
describe('shared dispatch vectors, TypeScript opener', () => {
  it('gives every named vector its expected verdict, covering every code', async () => {
    // Prepare
    const vectors = await namedVectors();

    // Act
    const disagree = await mismatches(vectors);

    // Assess
    expect(disagree).toEqual([]);
    const verdicts = new Set(vectors.map((v) => ('ok' in v.expect ? 'ok' : v.expect.code)));
    expect(verdicts).toEqual(new Set(['ok', ...DISPATCH_ERROR_CODES]));
  });

  it('opens every accepted vector to a grant with a real expiry date', async () => {
    const accepted = (await namedVectors()).filter((v) => 'ok' in v.expect);
    for (const vector of accepted) {
      const grant = await openDispatchMetadata(vector.metadata, {
        keyring: keyringJson,
        agentName: vector.agent_name ?? 'mcp-agent',
        roomName: vector.room_name ?? 'lk-mcp-acme-7f3k2q',
        now: new Date(now * 1000),
      });
      expect(Number.isFinite(grant.expiresAt.getTime()), vector.name).toBe(true);
    }
  });

  it('opens the renewal claims and refuses bad values of them as malformed, as the Python opener does', async () => {
    const vectors = await namedVectors();
    const valid = vectors.find((v) => v.name === 'valid')!;
    const grant = await openDispatchMetadata(valid.metadata, {
      keyring: keyringJson,
      agentName: 'mcp-agent',
      roomName: 'lk-mcp-acme-7f3k2q',
      now: new Date(now * 1000),
    });
    expect(grant.sid).toMatch(/^sid-/);
    expect(grant.refreshAt?.getTime()).toBe((now + 300) * 1000);
    expect(grant.refreshUrl).toBe('https://dispatch.example.com/v1/worker/credentials');
    expect(grant.mcpServers[0]).toMatchObject({ auth: 'oauth', expires_at: now + 900 });
    const bad = vectors.filter((v) =>
      /^(sid|refresh_url|refresh_at|server_auth|server_expires_at)_/.test(v.name),
    );
    expect(bad.length).toBeGreaterThanOrEqual(15);
    for (const vector of bad) expect(await outcome(vector), vector.name).toBe('malformed');
  });

  it('answers any fuzzed input with ok or a contract code, never another error', async () => {
    // Act: outcome() rethrows anything that is not a DispatchMetadataError
    const vectors = await fuzzVectors(300, 20261203);

    // Assess
    const verdicts = vectors.map((v) => ('ok' in v.expect ? 'ok' : v.expect.code));
    for (const verdict of verdicts) expect(['ok', ...DISPATCH_ERROR_CODES]).toContain(verdict);
    expect(new Set(verdicts).size).toBeGreaterThanOrEqual(5);
  });

  it('never throws anything but a coded error for arbitrary five-segment strings', async () => {
    const segment = fc.string({
      unit: fc.constantFrom(...'ABCDEFabcdef0123456789-_=+/ \u00e9'),
      maxLength: 40,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 5, maxLength: 5 }), async (parts) => {
        expect(['ok', ...DISPATCH_ERROR_CODES]).toContain(await outcome({ metadata: parts.join('.') }));
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
