import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDispatcher } from '../../functions/core/dispatcher.js';
import { silentLog } from '../../functions/core/log.js';
import type { TenantRecord } from '../../functions/core/model.js';
import { newRoomName } from '../../functions/core/rooms.js';
import { type LocalServer, startLocalServer } from '../../functions/local.js';
import { TEST_LIVEKIT } from '../../test/support/fixtures.js';
import type { Downstream } from './downstream-client.js';

/**
 * `npm start`'s local server (the real adapters) over the bench's downstream child: its dynalite
 * (through the counting proxy) and its LiveKit stand-in, in a fresh data directory; `env` adds
 * or overrides settings. Returns the server and its data directory (the caller removes it).
 */
export async function startLocalOver(
  downstream: Downstream,
  prefix: string,
  env: Record<string, string> = {},
): Promise<{ local: LocalServer; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const local = await startLocalServer({
    PORT: '0',
    DATA_DIR: dataDir,
    DYNAMODB_ENDPOINT: downstream.dynamoEndpoint,
    TABLE_NAME: 'bench',
    LIVEKIT_URL: downstream.livekitUrl,
    LIVEKIT_API_KEY: TEST_LIVEKIT.apiKey,
    LIVEKIT_API_SECRET: TEST_LIVEKIT.apiSecret,
    LOG_LEVEL: 'ERROR',
    ...env,
  });
  return { local, dataDir };
}

/** The session app's dispatcher over a local server's store and LiveKit, for seeding live sessions. */
export function localDispatcher(local: LocalServer, agentName: string) {
  const { store, secretBox, sealer, livekit, config } = local.services;
  return createDispatcher({
    store,
    livekit,
    sealer,
    secretBox,
    clock: () => new Date(),
    log: silentLog,
    config: {
      dispatchKeys: config.dispatchKeys,
      metadataTtlSeconds: config.metadataTtlSeconds,
      credentialsRefreshSeconds: config.credentialsRefreshSeconds,
      publicBaseUrl: config.publicBaseUrl,
      defaultAgentName: agentName,
      webhookRoomPrefix: config.webhookRoomPrefix,
    },
  } as Parameters<typeof createDispatcher>[0]);
}

/**
 * One live session of `userId` in a fresh room, dispatched by {@link localDispatcher} with one
 * MCP server (the API path: no app, no JWT). Throws unless it was dispatched.
 */
export async function dispatchLive(
  dispatcher: ReturnType<typeof localDispatcher>,
  tenant: TenantRecord,
  userId: string,
  options: { agentName: string; mcpUrl: string },
) {
  const r = await dispatcher.dispatch({
    tenant,
    userId,
    participantIdentity: userId,
    agentName: options.agentName,
    roomName: newRoomName('lk-mcp-', tenant.tenant_id, (n) => randomBytes(n)),
    perParticipant: false,
    freshRoom: true,
    mcpServers: [{ name: 'mcp', url: options.mcpUrl, transport: 'streamable_http', headers: {} }],
    mode: 'api',
    origin: 'session',
  } as Parameters<typeof dispatcher.dispatch>[0]);
  if (r.status !== 'dispatched') throw new Error(`bench seed: ${r.status}`);
  return r;
}
