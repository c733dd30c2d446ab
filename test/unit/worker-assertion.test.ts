import { Buffer } from 'node:buffer';
import { createHmac } from 'node:crypto';
import {
  makeWorkerAssertion,
  parseKeyring,
  verifyWorkerAssertion,
  WorkerAssertionError,
  workerAssertionKey,
} from '@livekit-mcp-dispatch/contract';
import { base64url } from 'jose';
import { describe, expect, it } from 'vitest';

const { keyring } = parseKeyring('', {
  current: 'k2',
  keys: { k1: Buffer.alloc(32, 1).toString('base64url'), k2: Buffer.alloc(32, 2).toString('base64url') },
});
const ring = keyring!;
const aud = 'https://api.example.com/v1/worker/credentials';
const base = { keyring: ring, agentName: 'agent', refreshUrl: aud, sid: 'sid-1', now: 1_000_000, jti: 'j1' };

/** Signs any header and claims with the HKDF-derived key of `kid`, as a forger holding the keyring could. */
function forge(header: object, claims: object, kid = 'k2'): string {
  const h = base64url.encode(JSON.stringify(header));
  const c = base64url.encode(JSON.stringify(claims));
  const key = workerAssertionKey(ring.keys.get(kid)!);
  return `${h}.${c}.${base64url.encode(createHmac('sha256', key).update(`${h}.${c}`).digest())}`;
}

async function reason(token: string, now = 1_000_010, audience = aud): Promise<string> {
  try {
    await verifyWorkerAssertion(token, { keyring: ring, audience, now });
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(WorkerAssertionError);
    expect((error as Error).message).not.toContain('sid-1');
    return (error as WorkerAssertionError).reason;
  }
}

describe('worker assertion (docs/api.md §9)', () => {
  it('has exactly the contract header and claims, in order, and verifies', async () => {
    const token = await makeWorkerAssertion(base);
    const [h, c] = token.split('.');
    expect(Buffer.from(h!, 'base64url').toString()).toBe(
      '{"alg":"HS256","kid":"k2","typ":"lk-mcp-worker+jwt"}',
    );
    expect(Buffer.from(c!, 'base64url').toString()).toBe(
      `{"iss":"agent","aud":"${aud}","sub":"sid-1","iat":1000000,"exp":1000060,"jti":"j1"}`,
    );
    await expect(
      verifyWorkerAssertion(token, { keyring: ring, audience: aud, now: 1_000_010 }),
    ).resolves.toEqual({
      iss: 'agent',
      aud,
      sub: 'sid-1',
      iat: 1_000_000,
      exp: 1_000_060,
      jti: 'j1',
    });
  });

  it('uses a key derived with HKDF, never the dispatch key itself', async () => {
    const derived = workerAssertionKey(ring.keys.get('k2')!);
    expect(Buffer.from(derived).equals(Buffer.from(ring.keys.get('k2')!))).toBe(false);
    const raw = ring.keys.get('k2')!;
    const h = base64url.encode('{"alg":"HS256","kid":"k2","typ":"lk-mcp-worker+jwt"}');
    const c = base64url.encode(
      JSON.stringify({ iss: 'a', aud, sub: 's', iat: 1_000_000, exp: 1_000_060, jti: 'x' }),
    );
    const withRawKey = `${h}.${c}.${base64url.encode(createHmac('sha256', raw).update(`${h}.${c}`).digest())}`;
    expect(await reason(withRawKey)).toBe('bad_signature');
  });

  it('accepts an older listed key by kid and refuses an unknown one', async () => {
    const claims = { iss: 'a', aud, sub: 's', iat: 1_000_000, exp: 1_000_060, jti: 'x' };
    expect(await reason(forge({ alg: 'HS256', kid: 'k1', typ: 'lk-mcp-worker+jwt' }, claims, 'k1'))).toBe(
      'ok',
    );
    expect(await reason(forge({ alg: 'HS256', kid: 'k9', typ: 'lk-mcp-worker+jwt' }, claims))).toBe(
      'unknown_kid',
    );
    expect(await reason(forge({ alg: 'HS256', kid: '__proto__', typ: 'lk-mcp-worker+jwt' }, claims))).toBe(
      'unknown_kid',
    );
  });

  it.each([
    ['another typ', { alg: 'HS256', kid: 'k2', typ: 'JWT' }],
    ['another alg', { alg: 'HS384', kid: 'k2', typ: 'lk-mcp-worker+jwt' }],
    ['an extra member', { alg: 'HS256', kid: 'k2', typ: 'lk-mcp-worker+jwt', crit: ['x'] }],
    ['a missing member', { alg: 'HS256', kid: 'k2' }],
  ])('refuses a header with %s', async (_name, header) => {
    const claims = { iss: 'a', aud, sub: 's', iat: 1_000_000, exp: 1_000_060, jti: 'x' };
    expect(await reason(forge(header, claims))).toBe('bad_header');
  });

  it('refuses a wrong audience, expiry, a lifetime over 60 s, a future iat, a tampered signature', async () => {
    const token = await makeWorkerAssertion(base);
    expect(await reason(token, 1_000_010, 'https://other.example.com/v1/worker/credentials')).toBe(
      'wrong_audience',
    );
    expect(await reason(token, 1_000_060)).toBe('expired');
    const header = { alg: 'HS256', kid: 'k2', typ: 'lk-mcp-worker+jwt' };
    expect(
      await reason(forge(header, { iss: 'a', aud, sub: 's', iat: 1_000_000, exp: 1_000_061, jti: 'x' })),
    ).toBe('lifetime_too_long');
    expect(
      await reason(
        forge(header, { iss: 'a', aud, sub: 's', iat: 1_000_100, exp: 1_000_120, jti: 'x' }),
        1_000_000,
      ),
    ).toBe('not_yet_valid');
    expect(await reason(`${token.slice(0, -2)}AA`)).toBe('bad_signature');
    expect(
      await reason(forge(header, { iss: 'a', aud, sub: '', iat: 1_000_000, exp: 1_000_060, jti: 'x' })),
    ).toBe('malformed');
    expect(await reason('not-a-jws')).toBe('malformed');
  });

  it('refuses to make an assertion that would live longer than 60 s', async () => {
    await expect(makeWorkerAssertion({ ...base, lifetimeSeconds: 61 })).rejects.toThrow(TypeError);
  });
});
