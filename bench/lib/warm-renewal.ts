import { randomBytes } from 'node:crypto';
import { dispatchHeader, makeWorkerAssertion } from '@livekit-mcp-dispatch/contract';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type { LocalServer } from '../../functions/local.js';
import { seedTenant, seedUser } from '../../test/support/fixtures.js';
import { dispatchLive, localDispatcher } from './local-over.js';

/** Live sessions to renew, and the two sides of the renewal comparison (issue 19). */
export interface RenewalBench {
  /** `POST /v1/worker/credentials` over HTTP, as a worker calls it; resolves to the status. */
  renew(i: number): Promise<string>;
  /** The bare floor: open the JWE, one GetItem (the sid pointer), seal new metadata. */
  floor(i: number): Promise<void>;
  sessions: number;
}

const AGENT = 'mcp-agent';
const MCP = { url: 'https://mcp.example.com/mcp', token: 'bench-renewal-token-0123456789' };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Seeds a tenant with `sessions` users and dispatches one live session each (the session app's
 * dispatcher over the local server's store and LiveKit), keeping the metadata a worker got.
 * Renewals go round-robin over the sessions so the per-session limit (20 per minute,
 * core/renewal.ts) is never reached by the bench.
 */
export async function renewalBench(local: LocalServer, sessions: number): Promise<RenewalBench> {
  const { store, secretBox, config } = local.services;
  const tenant = await seedTenant(store, secretBox, { tenant_id: 'bench-r' });
  const dispatcher = localDispatcher(local, AGENT);
  const live: { sid: string; metadata: string }[] = [];
  for (let i = 0; i < sessions; i++) {
    const userId = `bench-r-u${i}`;
    await seedUser(store, secretBox, { tenant_id: tenant.tenant_id, user_id: userId, mcp: MCP });
    const r = await dispatchLive(dispatcher, tenant, userId, { agentName: AGENT, mcpUrl: MCP.url });
    live.push({ sid: (r.session as { sid: string }).sid, metadata: r.metadata });
  }
  const refreshUrl = `${config.publicBaseUrl}/v1/worker/credentials`;
  const keyring = config.dispatchKeys;
  const key = await crypto.subtle.importKey(
    'raw',
    new Uint8Array(keyring.keys.get(keyring.current)!),
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
  const header = dispatchHeader(keyring.current);
  const pick = (i: number) => live[i % live.length]!;
  return {
    sessions,
    async renew(i) {
      const s = pick(i);
      const assertion = await makeWorkerAssertion({ keyring, agentName: AGENT, refreshUrl, sid: s.sid });
      const res = await fetch(refreshUrl.replace(config.publicBaseUrl, local.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${assertion}`, 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: s.metadata }),
      });
      const json = (await res.json()) as { metadata?: string; code?: string };
      if (res.status !== 200 || typeof json.metadata !== 'string')
        throw new Error(`renewal answered ${res.status} ${json.code ?? ''}`);
      return String(res.status);
    },
    async floor(i) {
      const s = pick(i);
      const { plaintext } = await compactDecrypt(s.metadata, key);
      const claims = JSON.parse(decoder.decode(plaintext)) as Record<string, unknown> & { sid: string };
      if ((await store.sessionPointer(claims.sid)) === undefined) throw new Error('floor: no pointer');
      const now = Math.floor(Date.now() / 1000);
      await new CompactEncrypt(
        encoder.encode(
          JSON.stringify({
            ...claims,
            jti: randomBytes(16).toString('base64url'),
            iat: now,
            exp: now + 7200,
          }),
        ),
      )
        .setProtectedHeader({ ...header })
        .encrypt(key);
    },
  };
}
