import { CompactSign, compactVerify, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/core/errors.js';
import {
  currentSigningKey,
  generateClientKeyring,
  parseClientKeyring,
  publicJwks,
} from '../../functions/core/oauth/client-keys.js';
import { buildClientMetadataDocument } from '../../functions/core/oauth/client-metadata.js';
import type { DiscoveredServer } from '../../functions/core/oauth/discovery.js';
import { selectScopes } from '../../functions/core/oauth/flow.js';

describe('OAUTH_CLIENT_KEYS', () => {
  it('round-trips, publishes public parts only, and signs with current', async () => {
    const ring = await generateClientKeyring('k1');
    const older = await generateClientKeyring('k0');
    const parsed = parseClientKeyring(JSON.stringify({ current: 'k1', keys: [...ring.keys, ...older.keys] }));
    const jwks = publicJwks(parsed);
    expect(jwks.keys.map((k) => k.kid)).toEqual(['k1', 'k0']);
    expect(JSON.stringify(jwks)).not.toContain(String(ring.keys[0]?.d));
    const { key, kid } = await currentSigningKey(parsed);
    expect(kid).toBe('k1');
    const jws = await new CompactSign(new TextEncoder().encode('x'))
      .setProtectedHeader({ alg: 'ES256', kid })
      .sign(key);
    await expect(compactVerify(jws, await importJWK(jwks.keys[0] as object, 'ES256'))).resolves.toBeTruthy();
  });

  it('lists every problem without key material', () => {
    const raw = JSON.stringify({
      current: 'nope',
      keys: [{ kid: 'a', kty: 'RSA', d: 'SECRETD' }, { kid: 'a' }],
    });
    const error = (() => {
      try {
        parseClientKeyring(raw);
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.problems.length).toBeGreaterThanOrEqual(4);
    expect(error?.message).toContain('current is not listed');
    expect(error?.message).not.toContain('SECRETD');
    expect(() => parseClientKeyring('not json')).toThrow(ConfigError);
  });
});

describe('client metadata document', () => {
  it('follows §8', () => {
    expect(
      buildClientMetadataDocument({
        publicBaseUrl: 'https://api.example.com/',
        tenantId: 'acme',
        tenantName: 'Acme',
      }),
    ).toEqual({
      client_id: 'https://api.example.com/oauth/tenants/acme/client-metadata.json',
      client_name: 'Acme',
      redirect_uris: ['https://api.example.com/v1/oauth/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: 'https://api.example.com/oauth/jwks.json',
    });
  });
});

describe('scope selection (§8)', () => {
  const server = (challenge?: string[], supported = ['a', 'b', 'offline_access']) =>
    ({
      resource: 'https://mcp.example.com/mcp',
      issuer: 'https://as.example.com',
      resourceMetadata: { resource: 'https://mcp.example.com/mcp', scopes_supported: ['a', 'b'] },
      authorizationServer: { issuer: 'https://as.example.com', scopes_supported: supported },
      metadataSource: 'oauth2',
      ...(challenge ? { challengeScopes: challenge } : {}),
    }) as DiscoveredServer;

  it('asked (step-up: union with granted), else configured, else challenge, else supported; offline_access when listed', () => {
    expect(selectScopes(server(['c']), { requested: ['write'], granted: ['a'], configured: ['x'] })).toEqual([
      'a',
      'write',
      'offline_access',
    ]);
    expect(selectScopes(server(['c']), { configured: ['x'] })).toEqual(['x', 'offline_access']);
    expect(selectScopes(server(['c']), {})).toEqual(['c', 'offline_access']);
    expect(selectScopes(server(), {})).toEqual(['a', 'b', 'offline_access']);
    expect(selectScopes(server(undefined, ['a']), {})).toEqual(['a', 'b']);
  });
});
