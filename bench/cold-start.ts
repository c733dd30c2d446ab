import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { generateKeyringJson } from '../functions/core/keyring.js';
import { generateClientKeyring } from '../functions/core/oauth/client-keys.js';
import { functionNames, lambdaBuildOptions } from '../scripts/esbuild-options.js';
import { runNodeScript } from './lib/child.js';
import { type SecretsStub, startSecretsStub } from './lib/secrets-stub.js';
import { type Summary, shuffled, summarize } from './lib/stats.js';

/** One measured bundle. */
export interface BundleTarget {
  name: string;
  file: string;
  metafile: Metafile;
}

/** Per bundle: import() times in fresh processes, and its size with top contributors. */
export interface ColdStartResult {
  name: string;
  bytes: number;
  /** `import()` of the bundle, ms: module evaluation plus (for ours) the Secrets Manager reads. */
  importMs: Summary;
  /** CPU time (user + system, all threads) of that `import()`, ms: less sensitive to neighbours. */
  cpuMs: Summary;
  /**
   * Per round, this bundle's time over the floor's from the same round (seconds apart), then
   * summarized: drift and load bursts longer than a round cancel out. The budget uses its p50.
   */
  pairedRatio: { wall: Summary; cpu: Summary };
  /** Process start to handler ready, ms. */
  readyMs: Summary;
  /** Largest inputs by bytes in the output, grouped by package (or our folder). */
  topContributors: { source: string; bytes: number }[];
}

interface Sample {
  importMs: number;
  cpuMs: number;
  readyMs: number;
}

const CHILD = `
const c0 = process.cpuUsage();
const t0 = performance.now();
const m = await import(process.env.BENCH_IMPORT);
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
if (typeof m.handler !== 'function') throw new Error('no handler export');
process.stdout.write(JSON.stringify({ importMs: t1 - t0, cpuMs: (c1.user + c1.system) / 1000, readyMs: t1 }));
process.exit(0);
`;

/** Builds a bench entry with the one esbuild definition, into `dir`/`name`. */
export async function buildBenchEntry(dir: string, name: string, entry: string): Promise<BundleTarget> {
  const outdir = join(dir, name);
  const result = await build({
    ...lambdaBuildOptions,
    entryPoints: { index: entry },
    outdir,
    outExtension: { '.js': '.mjs' },
  });
  return { name, file: join(outdir, 'index.mjs'), metafile: result.metafile! };
}

/** The floor and the explanatory variants, built in this run. */
export async function buildFloors(dir: string): Promise<{ floor: BundleTarget; variants: BundleTarget[] }> {
  const [floor, ...variants] = await Promise.all([
    buildBenchEntry(dir, 'floor', 'bench/floor/handler.ts'),
    buildBenchEntry(dir, 'floor+secrets', 'bench/floor/floor-secrets.ts'),
    buildBenchEntry(dir, 'session-injected', 'bench/floor/session-config-injected.ts'),
  ]);
  return { floor: floor!, variants };
}

/** The function bundles `npm run build` wrote. */
export async function distTargets(): Promise<BundleTarget[]> {
  return Promise.all(
    functionNames.map(async (name) => ({
      name,
      file: resolve(`dist/functions/${name}/index.mjs`),
      metafile: JSON.parse(await readFile(`dist/functions/${name}/meta.json`, 'utf8')) as Metafile,
    })),
  );
}

/** Bytes of the `.mjs` output and the inputs that fill it, grouped by package. */
export function sizeOf(target: BundleTarget, top = 8): Pick<ColdStartResult, 'bytes' | 'topContributors'> {
  const output = Object.entries(target.metafile.outputs).find(([path]) => path.endsWith('.mjs'));
  if (!output) throw new Error(`no .mjs output in the metafile of ${target.name}`);
  const groups = new Map<string, number>();
  for (const [path, input] of Object.entries(output[1].inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
    const source = pkg ?? path.split('/').slice(0, 2).join('/');
    groups.set(source, (groups.get(source) ?? 0) + input.bytesInOutput);
  }
  return {
    bytes: output[1].bytes,
    topContributors: [...groups]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([source, bytes]) => ({ source, bytes })),
  };
}

async function runChild(file: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  const out = await runNodeScript(
    CHILD,
    { ...env, BENCH_IMPORT: pathToFileURL(file).href },
    [],
    `import of ${file}`,
  );
  return JSON.parse(out.slice(out.lastIndexOf('{')));
}

/**
 * A throwaway RSA-2048 certificate for 127.0.0.1 (AWS endpoints present RSA-2048 chains), so the
 * secret reads pay a real TLS handshake each; undefined (plain HTTP) when `openssl` is missing.
 */
export async function selfSignedCertificate(
  dir: string,
): Promise<{ key: string; cert: string; certFile: string } | undefined> {
  const keyFile = join(dir, 'stub-key.pem');
  const certFile = join(dir, 'stub-cert.pem');
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8'), certFile };
  } catch {
    return undefined;
  }
}

/**
 * A Lambda-like environment for a bundle's cold start: the settings the stack passes, dummy
 * credentials, and a loopback Secrets Manager stub holding the three secrets. `dir` is a scratch
 * directory (the AWS config files point into it and do not exist).
 */
export async function startLambdaEnv(
  dir: string,
  given: {
    tls?: { key: string; cert: string; certFile: string };
    secrets?: { dispatch: string; storage: string };
    livekit?: { apiKey: string; apiSecret: string };
  } = {},
): Promise<{ env: NodeJS.ProcessEnv; stub: SecretsStub; tls: boolean }> {
  const arn = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-${name}-AbCdEf`;
  const secrets = given.secrets ?? {
    dispatch: JSON.stringify(generateKeyringJson('bench-dispatch')),
    storage: JSON.stringify(generateKeyringJson('bench-storage')),
  };
  const tls = given.tls ?? (await selfSignedCertificate(dir));
  const stub = await startSecretsStub(
    {
      [arn('livekit')]: JSON.stringify({
        api_key: given.livekit?.apiKey ?? 'APIbench',
        api_secret: given.livekit?.apiSecret ?? 'bench-secret-0123456789abcdef0123',
      }),
      [arn('dispatch')]: secrets.dispatch,
      [arn('storage')]: secrets.storage,
      [arn('oauth-client')]: JSON.stringify(await generateClientKeyring('bench-oauth')),
    },
    tls ? { tls } : {},
  );
  // A clean, Lambda-like environment: nothing of the caller's AWS setup leaks in.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    TZ: 'UTC',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIABENCHBENCHBENCH0',
    AWS_SECRET_ACCESS_KEY: 'bench/bench/bench/bench/bench/bench/bench0',
    AWS_SESSION_TOKEN: 'bench',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: stub.endpoint,
    ...(tls ? { NODE_EXTRA_CA_CERTS: tls.certFile } : {}),
    AWS_LAMBDA_FUNCTION_NAME: 'bench',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    TABLE_NAME: 'livekit-mcp-dispatch',
    LIVEKIT_URL: 'wss://bench.livekit.cloud',
    LIVEKIT_CREDENTIALS_SECRET_ARN: arn('livekit'),
    DISPATCH_KEYS_SECRET_ARN: arn('dispatch'),
    STORAGE_KEYS_SECRET_ARN: arn('storage'),
    OAUTH_CLIENT_KEYS_SECRET_ARN: arn('oauth-client'),
    PUBLIC_BASE_URL: 'https://api.bench.example.com',
    AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
    AUTH_ISSUER: 'https://issuer.example.com/',
    AUTH_AUDIENCE: 'livekit-mcp-dispatch',
    // Read only by the session-injected variant.
    BENCH_DISPATCH_KEYS: secrets.dispatch,
    BENCH_STORAGE_KEYS: secrets.storage,
  };
  return { env, stub, tls: tls !== undefined };
}

/**
 * Measures cold start: `runs` rounds, each importing every bundle once in a fresh Node process,
 * in a shuffled order (so drift on a noisy machine hits all bundles alike). The functions' top-level
 * await reads their three secrets from a loopback Secrets Manager stub with dummy credentials.
 */
export async function measureColdStart(options: {
  runs: number;
  floorDir?: string;
  /** More bundles to measure in the same rounds (experiments). */
  extraTargets?: BundleTarget[];
}): Promise<{
  results: ColdStartResult[];
  secretsCalls: number;
  /** Whether the secret reads went over TLS (needs `openssl`). */
  secretsOverTls: boolean;
}> {
  const dir = options.floorDir ?? (await mkdtemp(join(tmpdir(), 'lkmcp-floor-')));
  const { floor, variants } = await buildFloors(dir);
  const targets = [floor, ...(await distTargets()), ...variants, ...(options.extraTargets ?? [])];
  const lambda = await startLambdaEnv(dir);
  const env = lambda.env;
  try {
    // One discarded round warms the page cache and proves every bundle starts.
    for (const t of targets) await runChild(t.file, env);
    const samples = new Map(targets.map((t) => [t.name, [] as Sample[]]));
    for (let i = 0; i < options.runs; i++) {
      for (const t of shuffled(targets)) samples.get(t.name)!.push(await runChild(t.file, env));
    }
    return {
      secretsCalls: lambda.stub.calls,
      secretsOverTls: lambda.tls,
      results: targets.map((t) => {
        const s = samples.get(t.name)!;
        const f = samples.get(floor.name)!;
        return {
          name: t.name,
          ...sizeOf(t),
          importMs: summarize(s.map((x) => x.importMs)),
          cpuMs: summarize(s.map((x) => x.cpuMs)),
          readyMs: summarize(s.map((x) => x.readyMs)),
          pairedRatio: {
            wall: summarize(s.map((x, i) => x.importMs / f[i]!.importMs)),
            cpu: summarize(s.map((x, i) => x.cpuMs / f[i]!.cpuMs)),
          },
        };
      }),
    };
  } finally {
    await lambda.stub.stop();
    if (!options.floorDir) await rm(dir, { recursive: true, force: true });
  }
}
