import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoStore } from '../functions/adapters/dynamo/store.js';
import { createDynamoClient } from '../functions/adapters/dynamo.js';
import { startEmbeddedDynalite } from '../functions/adapters/embedded-dynamo.js';
import { createTable } from '../functions/adapters/table.js';
import { generateKeyringJson, parseKeyring } from '../functions/core/keyring.js';
import { createSecretBox } from '../functions/core/sealing.js';
import {
  participantJoined,
  seedTenant,
  seedUser,
  signWebhookBody,
  TEST_LIVEKIT,
} from '../test/support/fixtures.js';
import { startJwksServer } from '../test/support/jwks-server.js';
import { startLiveKitStandIn } from '../test/support/livekit-standin.js';
import {
  type BundleTarget,
  buildBenchEntry,
  distTargets,
  selfSignedCertificate,
  sizeOf,
  startLambdaEnv,
} from './cold-start.js';
import { runNodeScript } from './lib/child.js';
import { selfTimeByPackage } from './lib/cpu-profile.js';
import { type Summary, shuffled, summarize } from './lib/stats.js';
import { startTlsFront } from './lib/tls-front.js';

/**
 * Issue 20, item 1: what a user waits for at a cold start. A fresh `node` process per sample
 * imports a bundle (its init reads the three secrets from Secrets Manager over TLS) and answers
 * one API Gateway HTTP API v2 event: a session request (JWT via the issuer's JWKS, user and
 * tenant reads, seal, CreateDispatch, session write, participant token) or a dispatching webhook
 * `participant_joined`. Every stand-in is reached over TLS on loopback: Secrets Manager (stub),
 * DynamoDB (dynalite behind a TLS front), LiveKit (the Twirp stand-in behind one), the JWKS.
 * The floor (bench/floor/first-*.ts) does the same required calls with the bare libraries.
 */

/** One path measured: ours against its floor, paired per round. */
export interface FirstRequestResult {
  name: string;
  floor: string;
  bytes: number;
  floorBytes: number;
  /** Process start → answer, ms (Node's `performance.now()` at the answer: bootstrap included). */
  answerMs: Summary;
  floorAnswerMs: Summary;
  /** CPU (user + system) of the whole process at the answer, ms. */
  cpuMs: Summary;
  floorCpuMs: Summary;
  /** Process start → handler ready (import resolved), ms. */
  initMs: Summary;
  floorInitMs: Summary;
  /** New TLS connections per process (median) to DynamoDB, LiveKit and the JWKS: ours, floor. */
  connections: { dynamo: [number, number]; livekit: [number, number]; jwks: [number, number] };
  /** Per round: ours over the floor's from the same round; the budget uses the wall p50. */
  pairedRatio: { wall: Summary; cpu: Summary; init: Summary };
}

interface Sample {
  connections?: { dynamo: number; livekit: number; jwks: number };
  answerMs: number;
  initMs: number;
  cpuMs: number;
  status: number;
  body: string;
}

const CHILD = `
const m = await import(process.env.BENCH_IMPORT);
const initMs = performance.now();
const event = JSON.parse(process.env.BENCH_EVENT);
const context = { awsRequestId: event.requestContext.requestId, functionName: 'bench', functionVersion: '$LATEST',
  memoryLimitInMB: '512', getRemainingTimeInMillis: () => 29000 };
const res = await m.handler(event, context);
const answerMs = performance.now();
const c = process.cpuUsage();
process.stdout.write('\\nBENCH_RESULT ' + JSON.stringify({ answerMs, initMs, cpuMs: (c.user + c.system) / 1000,
  status: res.statusCode, body: String(res.body ?? '').slice(0, 300) }) + '\\n');
process.exit(0);
`;

async function runChild(
  file: string,
  env: NodeJS.ProcessEnv,
  event: unknown,
  profileDir?: string,
): Promise<Sample> {
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const out = await runNodeScript(
    CHILD,
    { ...env, BENCH_IMPORT: pathToFileURL(file).href, BENCH_EVENT: JSON.stringify(event) },
    prof,
    file,
  );
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`${file} printed no result: ${out.slice(-1500)}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as Sample;
}

/** An API Gateway HTTP API (payload v2) event for one POST. */
function httpEvent(path: string, headers: Record<string, string>, body: string) {
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: `POST ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'api.bench.example', 'user-agent': 'bench', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'bench',
      domainName: 'api.bench.example',
      domainPrefix: 'api',
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey: `POST ${path}`,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
    body,
    isBase64Encoded: false,
  };
}

const MCP = { url: 'https://mcp.example.com/mcp', token: 'bench-mcp-token-0123456789' };

/** Runs `rounds` interleaved rounds (plus one discarded warm-up round) and pairs them. */
export async function measureFirstRequest(options: {
  rounds: number;
  /** Also CPU-profile every measured child and report self time by package (explanations only). */
  profile?: boolean;
  /** Also run the explanatory floor variant with the contract's extra session I/O. */
  variants?: boolean;
}): Promise<{
  results: FirstRequestResult[];
  /** With `profile`: per target, mean self CPU ms per process by package. */
  profiles?: Record<string, { group: string; ms: number }[]>;
  createDispatchCalls: number;
  jwksFetches: number;
  secretsCalls: number;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'lkmcp-first-'));
  const tls = await selfSignedCertificate(dir);
  if (!tls) throw new Error('first-request bench needs openssl for its TLS stand-ins');
  const secrets = {
    dispatch: JSON.stringify(generateKeyringJson('bench-dispatch')),
    storage: JSON.stringify(generateKeyringJson('bench-storage')),
  };
  const dynalite = await startEmbeddedDynalite();
  const client = createDynamoClient({ endpoint: dynalite.endpoint, requestTimeoutMs: 5000 });
  const tableName = 'bench-first';
  await createTable(client, tableName);
  const storage = parseKeyring('STORAGE_KEYS', secrets.storage).keyring!;
  const store = new DynamoStore({ client, tableName });
  const box = createSecretBox(storage);
  const livekit = await startLiveKitStandIn(TEST_LIVEKIT);
  const issuer = 'https://issuer.bench.example/';
  const audience = 'livekit-mcp-dispatch';
  const jwks = await startJwksServer({ issuer, audience });
  const fronts = await Promise.all([
    startTlsFront(dynalite.endpoint, tls),
    startTlsFront(livekit.url, tls),
    startTlsFront(new URL(jwks.jwksUrl).origin, tls),
  ]);
  const [dynamoFront, livekitFront, jwksFront] = fronts;
  const lambda = await startLambdaEnv(dir, { tls, secrets, livekit: TEST_LIVEKIT });
  const env: NodeJS.ProcessEnv = {
    ...lambda.env,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoFront!.url,
    TABLE_NAME: tableName,
    LIVEKIT_URL: livekitFront!.url.replace(/^https/, 'wss'),
    AUTH_JWKS_URL: `${jwksFront!.url}/.well-known/jwks.json`,
    AUTH_ISSUER: issuer,
    AUTH_AUDIENCE: audience,
    SESSION_RATE_LIMIT_PER_MINUTE: '10000',
  };
  try {
    await seedTenant(store, box, { tenant_id: 'bench-s' });
    await seedTenant(store, box, { tenant_id: 'bench-w', webhook_dispatch: true });
    const users = 8;
    for (let i = 0; i < users; i++) {
      await seedUser(store, box, { tenant_id: 'bench-s', user_id: `bench-s-u${i}`, mcp: MCP });
      await seedUser(store, box, { tenant_id: 'bench-w', user_id: `bench-w-u${i}`, mcp: MCP });
    }
    const [floorSession, floorWebhook, floorContract] = await Promise.all([
      buildBenchEntry(dir, 'floor-session', 'bench/floor/first-session.ts'),
      buildBenchEntry(dir, 'floor-webhook', 'bench/floor/first-webhook.ts'),
      buildBenchEntry(dir, 'floor-session+contract-io', 'bench/floor/first-session-contract.ts'),
    ]);
    const dist = await distTargets();
    const ours = (n: string) => dist.find((d) => d.name === n)!;
    let k = 0;
    const events = {
      session: async () => {
        const u = `bench-s-u${k++ % users}`;
        const token = await jwks.mint({ sub: u, tenant_id: 'bench-s' });
        return httpEvent(
          '/v1/sessions',
          { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          JSON.stringify({ participant_name: 'Bench User' }),
        );
      },
      webhook: async () => {
        const signed = await signWebhookBody(
          participantJoined({
            roomName: `lk-mcp-bench-w-${randomBytes(12).toString('hex')}`,
            identity: `bench-w-u${k++ % users}`,
          }),
          TEST_LIVEKIT,
        );
        return httpEvent(
          '/v1/livekit/webhook',
          { authorization: signed.authorization, 'content-type': 'application/webhook+json' },
          signed.body,
        );
      },
    };
    const paths = [
      { name: 'session', target: ours('session'), floor: floorSession, event: events.session, expect: 201 },
      { name: 'webhook', target: ours('webhook'), floor: floorWebhook, event: events.webhook, expect: 200 },
      ...(options.variants
        ? [
            {
              name: 'floor-session+contract-io',
              target: floorContract!,
              floor: floorSession,
              event: events.session,
              expect: 201,
            },
          ]
        : []),
    ];
    // A variant is paired with the session floor's samples of the same round.
    const targets: { key: string; target: BundleTarget; path: (typeof paths)[number] }[] = paths.flatMap(
      (p) =>
        p.name.startsWith('floor-')
          ? [{ key: p.name, target: p.target, path: p }]
          : [
              { key: p.name, target: p.target, path: p },
              { key: `floor-${p.name}`, target: p.floor, path: p },
            ],
    );
    const profileDir = (key: string) => (options.profile && measuring ? join(dir, 'prof', key) : undefined);
    let measuring = false;
    const run = async (t: (typeof targets)[number]) => {
      const before = fronts.map((f) => f.handshakes);
      const s = await runChild(t.target.file, env, await t.path.event(), profileDir(t.key));
      const [dynamo, lk, jw] = fronts.map((f, i) => f.handshakes - before[i]!);
      s.connections = { dynamo: dynamo!, livekit: lk!, jwks: jw! };
      if (s.status !== t.path.expect || (t.path.name === 'webhook' && !s.body.includes('dispatched'))) {
        throw new Error(`${t.key} answered ${s.status} ${s.body}`);
      }
      return s;
    };
    // One discarded round warms the page cache and proves every path answers.
    for (const t of targets) await run(t);
    const samples = new Map(targets.map((t) => [t.key, [] as Sample[]]));
    measuring = true;
    for (let i = 0; i < options.rounds; i++) {
      for (const t of shuffled(targets)) samples.get(t.key)!.push(await run(t));
    }
    const med = (list: Sample[], k: 'dynamo' | 'livekit' | 'jwks') =>
      summarize(list.map((x) => x.connections![k])).p50;
    const results = paths.map((p) => {
      const s = samples.get(p.name)!;
      const f = samples.get(p.name.startsWith('floor-') ? 'floor-session' : `floor-${p.name}`)!;
      return {
        name: p.name,
        floor: p.floor.name,
        bytes: sizeOf(p.target).bytes,
        floorBytes: sizeOf(p.floor).bytes,
        answerMs: summarize(s.map((x) => x.answerMs)),
        floorAnswerMs: summarize(f.map((x) => x.answerMs)),
        cpuMs: summarize(s.map((x) => x.cpuMs)),
        floorCpuMs: summarize(f.map((x) => x.cpuMs)),
        initMs: summarize(s.map((x) => x.initMs)),
        floorInitMs: summarize(f.map((x) => x.initMs)),
        connections: {
          dynamo: [med(s, 'dynamo'), med(f, 'dynamo')] as [number, number],
          livekit: [med(s, 'livekit'), med(f, 'livekit')] as [number, number],
          jwks: [med(s, 'jwks'), med(f, 'jwks')] as [number, number],
        },
        pairedRatio: {
          wall: summarize(s.map((x, i) => x.answerMs / f[i]!.answerMs)),
          cpu: summarize(s.map((x, i) => x.cpuMs / f[i]!.cpuMs)),
          init: summarize(s.map((x, i) => x.initMs / f[i]!.initMs)),
        },
      };
    });
    const profiles = options.profile
      ? Object.fromEntries(
          await Promise.all(
            targets.map(async (t) => [t.key, await selfTimeByPackage(join(dir, 'prof', t.key))] as const),
          ),
        )
      : undefined;
    return {
      results,
      ...(profiles ? { profiles } : {}),
      createDispatchCalls: livekit.calls.filter((c) => c.rpc === 'AgentDispatchService/CreateDispatch')
        .length,
      jwksFetches: jwks.requests,
      secretsCalls: lambda.stub.calls,
    };
  } finally {
    await Promise.all(fronts.map((f) => f.stop()));
    await lambda.stub.stop();
    await jwks.stop();
    await livekit.stop();
    client.destroy();
    await dynalite.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // `npx tsx bench/first-request.ts [rounds] [--profile]`: the measurement alone, as JSON.
  const r = await measureFirstRequest({
    rounds: Number(process.argv[2] ?? 3),
    profile: process.argv.includes('--profile'),
    variants: process.argv.includes('--variants'),
  });
  console.log(JSON.stringify(r, null, 1));
}
