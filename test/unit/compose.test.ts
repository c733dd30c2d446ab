import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createServices } from '../../functions/compose.js';
import { loadConfig } from '../../functions/core/config.js';
import { ConfigError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';

const keyring = (kid: string) =>
  JSON.stringify({ current: kid, keys: { [kid]: randomBytes(32).toString('base64url') } });

const ENV = {
  LIVEKIT_URL: 'wss://example.livekit.cloud',
  LIVEKIT_API_KEY: 'key',
  LIVEKIT_API_SECRET: 'secret',
  STORAGE_KEYS: keyring('s1'),
  AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
  AUTH_ISSUER: 'https://issuer.example.com/',
  AUTH_AUDIENCE: 'livekit-mcp-dispatch',
};

/** A minimal dispatch to seal. */
const SEAL_INPUT = {
  agentName: 'a',
  userId: 'u',
  tenantId: 't',
  roomName: 'r',
  participantIdentity: 'u',
  mcpServers: [],
  ttlSeconds: 60,
};

describe('createServices', () => {
  it('composes the admin function, which holds no dispatch keyring, and refuses to seal', async () => {
    // Prepare
    const config = loadConfig(ENV, 'lambda', { needsDispatchKeys: false });

    // Act
    const services = createServices(config, silentLog);

    // Assess
    await expect(services.sealer.seal(SEAL_INPUT)).rejects.toBeInstanceOf(ConfigError);
  });

  it('seals with the dispatch keyring when the function has one', async () => {
    // Prepare
    const config = loadConfig({ ...ENV, DISPATCH_KEYS: keyring('d1') }, 'lambda');

    // Act
    const services = createServices(config, silentLog);
    const sealed = await services.sealer.seal(SEAL_INPUT);

    // Assess
    expect(sealed.metadata.split('.')).toHaveLength(5);
  });
});
