import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DispatchErrorCode } from '@livekit-mcp-dispatch/worker';
import { DispatchMetadataError, openDispatchMetadata } from '@livekit-mcp-dispatch/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyringJson } from '../../functions/core/keyring.js';
import { seedTenant, seedUser, uid } from '../support/fixtures.js';
import { postJson, type Stack, startStack } from './stack.js';

const WORKER_PY = resolve('worker/python');
const VENV_PYTHON = join(
  process.env.LKMCP_CACHE ?? join(homedir(), '.cache', 'livekit-mcp-dispatch'),
  'venv',
  'bin',
  'python',
);
const MCP_TOKEN = `tok-WORKER-${uid('s')}`;
const HEADER_VALUE = `hv-WORKER-${uid('s')}`;

/** One attempt to open metadata as a worker would for a job. */
interface Job {
  name: string;
  metadata: string;
  keyring: string;
  agent: string;
  room: string;
  /** Epoch seconds the worker's clock reads. */
  now: number;
}

interface Outcome {
  code: DispatchErrorCode | 'ok';
  /** Everything the refusal shows (message, JSON / repr), to check for leaked secrets. */
  text: string;
}

const PY_SNIPPET = `
import json, sys
sys.path.insert(0, sys.argv[1])
import livekit_mcp_dispatch as lkmd
out = []
for job in json.load(sys.stdin):
    try:
        grant = lkmd.open_dispatch_metadata(job["metadata"], job["keyring"], job["agent"], job["room"], now=job["now"])
        out.append({"code": "ok", "text": repr(grant)})
    except lkmd.DispatchMetadataError as error:
        out.append({"code": error.code, "text": str(error) + " " + repr(error) + " " + repr(error.args)})
print(json.dumps(out))
`;

let s: Stack;
let sealed: string;
let room: string;
let agent: string;
let exp: number;

beforeAll(async () => {
  // The Python opener runs in the worker's venv; setup-venv.sh reuses an up-to-date one at once
  // and builds (or rebuilds) a missing or stale one, so this never skips.
  const built = spawnSync('bash', [join(WORKER_PY, 'setup-venv.sh')], { stdio: 'inherit', timeout: 900_000 });
  if (built.status !== 0 || !existsSync(VENV_PYTHON)) throw new Error('worker/python/setup-venv.sh failed');
  s = await startStack();
  // Real metadata, as the session function seals it into a CreateDispatch.
  const { store, secretBox } = s.server.services;
  const tenant = await seedTenant(store, secretBox, { agent_names: ['agent-a', 'agent-b'] });
  const user = await seedUser(store, secretBox, {
    tenant_id: tenant.tenant_id,
    mcp: { url: 'https://mcp.example.com/u', token: MCP_TOKEN, headers: { 'X-Api-Key': HEADER_VALUE } },
  });
  const jwt = await s.userToken(user.user_id, tenant.tenant_id);
  const res = await postJson(`${s.url}/v1/sessions`, {}, { authorization: `Bearer ${jwt}` });
  expect(res.status, res.text).toBe(201);
  room = res.json.room_name as string;
  agent = res.json.agent_name as string;
  const dispatch = s.livekit.dispatches.find((d) => d.room === room)!;
  sealed = dispatch.metadata;
  exp =
    (
      await openDispatchMetadata(sealed, { keyring: s.dispatchKeysJson, agentName: agent, roomName: room })
    ).expiresAt.getTime() / 1000;
}, 900_000);
afterAll(async () => {
  await s?.stop();
});

async function openTs(job: Job): Promise<Outcome> {
  try {
    await openDispatchMetadata(job.metadata, {
      keyring: job.keyring,
      agentName: job.agent,
      roomName: job.room,
      now: new Date(job.now * 1000),
    });
    return { code: 'ok', text: '' };
  } catch (err) {
    if (!(err instanceof DispatchMetadataError)) throw err;
    return { code: err.code, text: `${err.message} ${JSON.stringify(err)} ${String(err.stack)}` };
  }
}

function openPython(jobs: Job[]): Outcome[] {
  const out = execFileSync(VENV_PYTHON, ['-c', PY_SNIPPET, WORKER_PY], {
    input: JSON.stringify(jobs),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as Outcome[];
}

function tamper(segmentIndex: number, metadata: string): string {
  const parts = metadata.split('.');
  const seg = parts[segmentIndex]!;
  parts[segmentIndex] = `${seg.slice(0, 4)}${seg[4] === 'A' ? 'B' : 'A'}${seg.slice(5)}`;
  return parts.join('.');
}

describe('worker side: both openers refuse misused metadata with the shared codes', () => {
  it('another room, another agent, past exp, another deployment, tampering → same code in TS and Python', async () => {
    // Prepare
    const keyring = s.dispatchKeysJson;
    const now = Math.floor(Date.now() / 1000);
    const otherKid = JSON.stringify(generateKeyringJson('other-deployment'));
    const sameKidOtherKey = JSON.stringify(generateKeyringJson('dispatch-hardening'));
    const header = JSON.parse(Buffer.from(sealed.split('.')[0]!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const withHeader = (h: Record<string, unknown>) =>
      [Buffer.from(JSON.stringify(h)).toString('base64url'), ...sealed.split('.').slice(1)].join('.');
    const jobs: [Job, DispatchErrorCode | 'ok'][] = [
      [{ name: 'the job it was sealed for', metadata: sealed, keyring, agent, room, now }, 'ok'],
      [
        { name: 'copied into another room', metadata: sealed, keyring, agent, room: `${room}-x`, now },
        'wrong_room',
      ],
      [
        {
          name: 'another room of the tenant',
          metadata: sealed,
          keyring,
          agent,
          room: room.replace(/.$/, 'z'),
          now,
        },
        'wrong_room',
      ],
      [
        {
          name: 'to another agent',
          metadata: sealed,
          keyring,
          agent: agent === 'agent-a' ? 'agent-b' : 'agent-a',
          room,
          now,
        },
        'wrong_audience',
      ],
      [
        {
          name: 'another agent and room',
          metadata: sealed,
          keyring,
          agent: 'agent-z',
          room: 'elsewhere',
          now,
        },
        'wrong_audience',
      ],
      [{ name: 'just inside the 30 s leeway', metadata: sealed, keyring, agent, room, now: exp + 29 }, 'ok'],
      [{ name: 'past exp', metadata: sealed, keyring, agent, room, now: exp + 32 }, 'expired'],
      [{ name: 'long past exp', metadata: sealed, keyring, agent, room, now: exp + 86_400 }, 'expired'],
      [
        { name: 'another deployment (kid)', metadata: sealed, keyring: otherKid, agent, room, now },
        'unknown_kid',
      ],
      [
        {
          name: 'another deployment (same kid)',
          metadata: sealed,
          keyring: sameKidOtherKey,
          agent,
          room,
          now,
        },
        'decrypt_failed',
      ],
      [
        { name: 'ciphertext tampered', metadata: tamper(3, sealed), keyring, agent, room, now },
        'decrypt_failed',
      ],
      [{ name: 'tag tampered', metadata: tamper(4, sealed), keyring, agent, room, now }, 'decrypt_failed'],
      [
        { name: 'zip header', metadata: withHeader({ ...header, zip: 'DEF' }), keyring, agent, room, now },
        'bad_header',
      ],
      [
        {
          name: 'alg changed',
          metadata: withHeader({ ...header, alg: 'A256KW' }),
          keyring,
          agent,
          room,
          now,
        },
        'bad_header',
      ],
      [
        { name: 'truncated', metadata: sealed.split('.').slice(0, 4).join('.'), keyring, agent, room, now },
        'malformed',
      ],
    ];

    // Act
    const ts = await Promise.all(jobs.map(([job]) => openTs(job)));
    const py = openPython(jobs.map(([job]) => job));

    // Assess
    const table = jobs.map(([job, want], i) => ({ job: job.name, want, ts: ts[i]!.code, py: py[i]!.code }));
    expect(table).toEqual(jobs.map(([job, want]) => ({ job: job.name, want, ts: want, py: want })));
    for (const outcome of [...ts, ...py]) {
      if (outcome.code === 'ok') continue;
      expect(outcome.text).not.toContain(MCP_TOKEN);
      expect(outcome.text).not.toContain(HEADER_VALUE);
      expect(outcome.text).not.toContain(sealed);
    }
    // An opened grant's repr hides the header values too (Python).
    expect(py[0]!.text).not.toContain(MCP_TOKEN);
    expect(py[0]!.text).not.toContain(HEADER_VALUE);
  }, 120_000);
});
