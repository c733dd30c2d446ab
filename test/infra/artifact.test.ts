import { type ChildProcess, execFile, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeWorkerAssertion } from '@livekit-mcp-dispatch/contract';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { compactDecrypt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyringJson, parseKeyring } from '../../functions/core/keyring.js';
import { generateClientKeyring } from '../../functions/core/oauth/client-keys.js';
import { stackPropsFromContext } from '../../infra/context.js';
import { type FunctionName, LiveKitMcpDispatchStack } from '../../infra/stack.js';
import { BUNDLE_BUDGET_BYTES, bundleAssets, functionNames } from '../../scripts/esbuild-options.js';
import { startDynalite, type TestDynamo } from '../support/dynalite.js';
import { participantJoined, signWebhookBody, TEST_LIVEKIT, uid } from '../support/fixtures.js';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { type LiveKitStandIn, startLiveKitStandIn } from '../support/livekit-standin.js';
import { type SecretsManagerStandIn, startSecretsManager } from '../support/secrets-manager.js';

// The shipped artifact, not the source: each dist/functions/<name>/index.mjs is loaded by a plain
// Node process (no tsx, no vitest) with the environment the CDK stack gives that function, its
// secrets served by a Secrets Manager stand-in, and invoked with API Gateway HTTP API v2 events.

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const DIST = join(ROOT, 'dist/functions');
const RUNNER = join(ROOT, 'test/support/lambda-runner.mjs');
const REGION = 'eu-west-1';
const AGENT = 'artifact-agent';
const MCP_URL = 'https://93.184.215.14/mcp';
const MCP_TOKEN = `mcp-SECRET-${randomUUID()}`;
const DISPATCH_KEYS = generateKeyringJson('dispatch-artifact');
const STORAGE_KEYS = generateKeyringJson('storage-artifact');
/** Values that must never appear in a response or a log line of any bundle. */
const SECRETS = [
  TEST_LIVEKIT.apiSecret,
  MCP_TOKEN,
  ...Object.values(DISPATCH_KEYS.keys),
  ...Object.values(STORAGE_KEYS.keys),
];

/** The API Gateway HTTP API (payload 2.0) event, `$default` stage. */
interface HttpApiEvent {
  version: '2.0';
  routeKey: string;
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string>;
  requestContext: Record<string, unknown> & {
    http: Record<string, string> & { method: string; path: string };
  };
  body?: string;
  isBase64Encoded: boolean;
}

/** What a handler returned, body decoded. */
interface HttpResult {
  status: number;
  headers: Record<string, string>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
  json: any;
}

function httpEvent(
  method: string,
  path: string,
  options: { routeKey?: string; headers?: Record<string, string>; body?: string; base64?: boolean } = {},
): HttpApiEvent {
  const domainName = 'abc123def4.execute-api.eu-west-1.amazonaws.com';
  const now = new Date();
  const event: HttpApiEvent = {
    version: '2.0',
    routeKey: options.routeKey ?? `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      host: domainName,
      'user-agent': 'artifact-test',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...options.headers,
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123def4',
      domainName,
      domainPrefix: 'abc123def4',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'artifact-test' },
      requestId: randomUUID(),
      routeKey: options.routeKey ?? `${method} ${path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: options.base64 ?? false,
  };
  if (options.body !== undefined) {
    event.body = options.base64 ? Buffer.from(options.body).toString('base64') : options.body;
  }
  return event;
}

/** One bundle running in its own process, as one Lambda execution environment. */
interface LambdaProcess {
  invoke(event: HttpApiEvent): Promise<HttpResult>;
  /** Everything the process wrote (its logs). */
  output(): string;
  stop(): void;
}

type Started =
  | { ok: true; fn: LambdaProcess }
  | {
      ok: false;
      error: { name?: string; constructorName?: string; code?: string; message: string };
      output: string;
    };

/** Forks the runner on `dist/functions/<name>/index.mjs` and waits for its cold start to end. */
function startLambda(name: FunctionName, env: Record<string, string>): Promise<Started> {
  const child: ChildProcess = fork(RUNNER, [join(DIST, name, 'index.mjs')], {
    env,
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  let seq = 0;
  const pending = new Map<number, { ok: (r: unknown) => void; fail: (e: Error) => void }>();
  const fn: LambdaProcess = {
    invoke(event) {
      seq += 1;
      const id = seq;
      return new Promise<unknown>((ok, fail) => {
        pending.set(id, { ok, fail });
        child.send({ id, event });
      }).then((raw) => {
        const r = raw as {
          statusCode: number;
          headers?: Record<string, string>;
          body?: string;
          isBase64Encoded?: boolean;
        };
        const text = r.isBase64Encoded
          ? Buffer.from(r.body ?? '', 'base64').toString('utf8')
          : (r.body ?? '');
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        return { status: r.statusCode, headers, text, json };
      });
    },
    output: () => output,
    stop: () => {
      if (child.exitCode === null) child.kill();
    },
  };
  return new Promise<Started>((settle, reject) => {
    const timer = setTimeout(() => {
      fn.stop();
      reject(new Error(`${name}: no cold-start outcome within 20 s\n${output}`));
    }, 20_000);
    child.on('message', (m: { type: string; id?: number; result?: unknown; error?: { message: string } }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        settle({ ok: true, fn });
      } else if (m.type === 'init-error') {
        clearTimeout(timer);
        child.once('exit', () => settle({ ok: false, error: m.error!, output }));
      } else if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.type === 'result') p?.ok(m.result);
        else p?.fail(new Error(`${name} handler threw: ${m.error?.message}`));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      for (const p of pending.values()) p.fail(new Error(`${name} exited (${code})\n${output}`));
      pending.clear();
    });
  });
}

/** The newest modification time of everything a bundle is built from. */
async function newestSourceMtime(): Promise<number> {
  const files = [
    ...(await readdir(join(ROOT, 'functions'), { recursive: true })).map((f) => join('functions', f)),
    'scripts/build.ts',
    'scripts/esbuild-options.ts',
    'package-lock.json',
  ];
  const times = await Promise.all(files.map((f) => stat(join(ROOT, f)).then((s) => s.mtimeMs)));
  return Math.max(...times);
}

/** Runs `npx tsx scripts/build.ts` when a bundle or a file beside it is missing or older than its sources. */
async function ensureBundles(): Promise<void> {
  const files = functionNames.flatMap((n) => [
    join(DIST, n, 'index.mjs'),
    ...(bundleAssets[n] ?? []).map((a) => join(DIST, n, a.to)),
  ]);
  const built = await Promise.all(
    files.map((f) =>
      stat(f).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    ),
  );
  if (Math.min(...built) > (await newestSourceMtime())) return;
  await promisify(execFile)('npx', ['tsx', 'scripts/build.ts'], { cwd: ROOT, timeout: 50_000 });
}

/**
 * Each function's environment as the CDK stack sets it (synthesised with the bundles), with the
 * values a deployment chooses pointed at the loopback servers, the table and secret references
 * resolved, and what the Lambda service itself adds.
 */
function stackEnvironments(refs: {
  tableName: string;
  secretArns: Record<string, string>;
  livekitUrl: string;
  jwks: JwksServer;
}): Record<FunctionName, Record<string, string>> {
  const props = stackPropsFromContext(
    (key) =>
      ({
        livekitUrl: 'wss://livekit.example.com',
        authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
        authIssuer: 'https://id.example.com/',
        authAudience: 'livekit-mcp-dispatch',
        functionsDir: DIST,
      })[key],
  );
  const stack = new LiveKitMcpDispatchStack(new App(), 'ArtifactTest', {
    ...props,
    livekitUrl: refs.livekitUrl,
    auth: {
      ...props.auth,
      jwksUrl: refs.jwks.jwksUrl,
      issuer: refs.jwks.issuer,
      audience: refs.jwks.audience,
    },
    defaultAgentName: AGENT,
  });
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Properties: { Environment: { Variables: Record<string, unknown> } } }
  >;
  const envs = {} as Record<FunctionName, Record<string, string>>;
  for (const name of functionNames) {
    const id = stack.getLogicalId(stack.functions[name].function.node.defaultChild as CfnElement);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(resources[id]!.Properties.Environment.Variables)) {
      if (typeof v === 'string') env[k] = v;
      else if (k === 'TABLE_NAME') env[k] = refs.tableName;
      else if (k === 'PUBLIC_BASE_URL') env[k] = 'https://api.example.com';
      else if (refs.secretArns[k] !== undefined) env[k] = refs.secretArns[k];
      else throw new Error(`${name}: no test value for the stack's ${k} (${JSON.stringify(v)})`);
    }
    envs[name] = {
      PATH: process.env.PATH ?? '',
      ...env,
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIAARTIFACTTEST0000',
      AWS_SECRET_ACCESS_KEY: 'artifact-test-not-a-real-secret',
      AWS_SESSION_TOKEN: 'artifact-test-session',
      AWS_CONFIG_FILE: join(ROOT, 'nonexistent-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(ROOT, 'nonexistent-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_NAME: `artifact-${name}`,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      TZ: ':UTC',
    };
  }
  return envs;
}

let db: TestDynamo;
let livekit: LiveKitStandIn;
let jwks: JwksServer;
let secrets: SecretsManagerStandIn;
let envs: Record<FunctionName, Record<string, string>>;
const lambdas = {} as Record<FunctionName, LambdaProcess>;
const started: LambdaProcess[] = [];
const responses: string[] = [];
let superadmin: string;

async function call(name: FunctionName, event: HttpApiEvent): Promise<HttpResult> {
  const res = await lambdas[name].invoke(event);
  responses.push(JSON.stringify(res.headers), res.text);
  return res;
}

function json(body: unknown): { 'content-type': string } & Record<string, string> {
  return {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(JSON.stringify(body))),
  };
}

async function adminPut(path: string, body: unknown, headers: Record<string, string>): Promise<HttpResult> {
  return call(
    'admin',
    httpEvent('PUT', path, {
      routeKey: 'ANY /v1/admin/{proxy+}',
      headers: { authorization: `Bearer ${superadmin}`, ...json(body), ...headers },
      body: JSON.stringify(body),
    }),
  );
}

/** A tenant (superadmin-only fields set) and one user with an MCP URL and token, via the admin bundle. */
async function provision(options: {
  webhookDispatch: boolean;
}): Promise<{ tenantId: string; userId: string }> {
  const tenantId = uid('art-t');
  const userId = uid('art-u');
  const tenant = await adminPut(
    `/v1/admin/tenants/${tenantId}`,
    { name: 'Artifact', agent_names: [AGENT], webhook_dispatch: options.webhookDispatch },
    { 'if-none-match': '*' },
  );
  expect(tenant.status, tenant.text).toBe(201);
  const user = await adminPut(
    `/v1/admin/tenants/${tenantId}/users/${userId}`,
    { mcp: { url: MCP_URL, token: MCP_TOKEN } },
    { 'if-none-match': '*' },
  );
  expect(user.status, user.text).toBe(201);
  return { tenantId, userId };
}

/** Opens a dispatch's sealed metadata with the dispatch keyring, as a worker would. */
async function openMetadata(jwe: string): Promise<Record<string, unknown>> {
  const { kid } = decodeProtectedHeader(jwe);
  const key = Buffer.from(DISPATCH_KEYS.keys[kid as string]!, 'base64url');
  const { plaintext } = await compactDecrypt(jwe, key);
  return JSON.parse(new TextDecoder().decode(plaintext));
}

beforeAll(async () => {
  const built = ensureBundles();
  [db, livekit, jwks, secrets] = await Promise.all([
    startDynalite(),
    startLiveKitStandIn(TEST_LIVEKIT),
    startJwksServer(),
    startSecretsManager({ region: REGION }),
  ]);
  const secretArns = {
    LIVEKIT_CREDENTIALS_SECRET_ARN: secrets.put(
      'LiveKitCredentials',
      JSON.stringify({ api_key: TEST_LIVEKIT.apiKey, api_secret: TEST_LIVEKIT.apiSecret }),
    ),
    DISPATCH_KEYS_SECRET_ARN: secrets.put('DispatchKeys', JSON.stringify(DISPATCH_KEYS)),
    STORAGE_KEYS_SECRET_ARN: secrets.put('StorageKeys', JSON.stringify(STORAGE_KEYS)),
    OAUTH_CLIENT_KEYS_SECRET_ARN: secrets.put(
      'OAuthClientKeys',
      JSON.stringify(await generateClientKeyring('k-artifact')),
    ),
  };
  await built;
  envs = stackEnvironments({ tableName: db.tableName, secretArns, livekitUrl: livekit.url, jwks });
  for (const name of functionNames) {
    envs[name].AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.url;
    // Not a stack setting: the DynamoDB endpoint is the test's dynalite instead of the regional one.
    envs[name].DYNAMODB_ENDPOINT = db.endpoint;
  }
  const outcomes = await Promise.all(functionNames.map((name) => startLambda(name, envs[name])));
  for (const [i, name] of functionNames.entries()) {
    const outcome = outcomes[i]!;
    if (!outcome.ok)
      throw new Error(`${name} failed to initialise: ${outcome.error.message}\n${outcome.output}`);
    lambdas[name] = outcome.fn;
    started.push(outcome.fn);
  }
  superadmin = await jwks.mint({ sub: 'ops-artifact', scope: 'dispatch:superadmin' });
}, 60_000);

afterAll(async () => {
  for (const fn of started) fn.stop();
  await Promise.all([db?.stop(), livekit?.stop(), jwks?.stop(), secrets?.stop()]);
});

describe('artifact: bundle contents', () => {
  it.each(functionNames)('%s holds no dynalite, tsx or test code', async (name) => {
    // Prepare
    const code = await readFile(join(DIST, name, 'index.mjs'), 'utf8');
    const meta = JSON.parse(await readFile(join(DIST, name, 'meta.json'), 'utf8')) as {
      inputs: Record<string, unknown>;
    };

    // Act
    const inputs = Object.keys(meta.inputs);

    // Assess
    expect(code).not.toMatch(/dynalite/i);
    expect(inputs).toContain(`functions/${name}/handler.ts`);
    expect(
      inputs.filter((i) => /(^|\/)node_modules\/(dynalite|tsx|vitest|leveldown|memdown)\//.test(i)),
    ).toEqual([]);
    expect(inputs.filter((i) => i.startsWith('test/') || i.startsWith('scripts/'))).toEqual([]);
    expect(inputs).not.toContain('functions/local.ts');
    expect(inputs).not.toContain('functions/adapters/embedded-dynamo.ts');
  });

  it.each(functionNames)(`%s is within the bundle budget (${BUNDLE_BUDGET_BYTES} bytes)`, async (name) => {
    // Act
    const { size } = await stat(join(DIST, name, 'index.mjs'));
    const modules = (await readdir(join(DIST, name), { recursive: true })).filter((f) =>
      /\.[cm]?js$/.test(f),
    );

    // Assess
    expect(size).toBeLessThanOrEqual(BUNDLE_BUDGET_BYTES);
    // One module per function: a chunk beside index.mjs would load at cold start unmeasured.
    expect(modules).toEqual(['index.mjs']);
  });

  it.each(functionNames)('%s bundles only the OAuth and input code its function runs', async (name) => {
    // Prepare
    const meta = JSON.parse(await readFile(join(DIST, name, 'meta.json'), 'utf8')) as {
      outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
    };
    const output = meta.outputs[`dist/functions/${name}/index.mjs`]!;

    // Act
    const bundled = Object.entries(output.inputs)
      .filter(([, input]) => input.bytesInOutput > 0)
      .map(([path]) => path);

    // Assess: the document is a file beside the admin bundle; the authorization code flow is the
    // session function's; the webhook and credentials functions only refresh tokens.
    expect(bundled.filter((p) => p.startsWith('functions/openapi/'))).toEqual([]);
    const sessionOnly = ['service', 'callback', 'mcp-probe'].map((f) => `functions/core/connections/${f}.ts`);
    if (name !== 'session') expect(bundled.filter((p) => sessionOnly.includes(p))).toEqual([]);
    if (name === 'webhook' || name === 'credentials') {
      const adminOnly = [
        'functions/core/connections/admin.ts',
        'functions/core/connections/revoke.ts',
        'functions/core/admin-input.ts',
        'functions/core/catalog-input.ts',
      ];
      expect(bundled.filter((p) => adminOnly.includes(p))).toEqual([]);
      expect(bundled).toContain('functions/core/connections/token-source.ts');
    }
  });
});

describe('artifact: cold start', () => {
  it('reads its secrets from Secrets Manager; admin never the dispatch keyring, credentials never LiveKit', () => {
    // Prepare
    const reads = (arn: string | undefined) => secrets.calls.filter((c) => c.secretId === arn).length;

    // Act
    const targets = new Set(secrets.calls.map((c) => c.target));

    // Assess
    expect([...targets]).toEqual(['secretsmanager.GetSecretValue']);
    expect(secrets.calls.every((c) => c.signed && c.status === 200)).toBe(true);
    // One cold start each: the LiveKit secret by session, webhook and admin; the storage keyring by
    // all four; the dispatch keyring by session, webhook and credentials.
    expect(reads(envs.session.LIVEKIT_CREDENTIALS_SECRET_ARN)).toBe(3);
    expect(reads(envs.session.STORAGE_KEYS_SECRET_ARN)).toBe(4);
    expect(reads(envs.session.DISPATCH_KEYS_SECRET_ARN)).toBe(3);
    expect(envs.admin.DISPATCH_KEYS_SECRET_ARN).toBeUndefined();
    expect(envs.credentials.LIVEKIT_CREDENTIALS_SECRET_ARN).toBeUndefined();
  });

  it('refuses a plain-env DISPATCH_KEYS with one ConfigError naming no secret', async () => {
    // Prepare
    const callsBefore = secrets.calls.length;
    const plain = JSON.stringify(DISPATCH_KEYS);

    // Act
    const outcome = await startLambda('session', { ...envs.session, DISPATCH_KEYS: plain });

    // Assess
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    // What Lambda reports as errorType/errorMessage of the failed init.
    expect(outcome.error.name).toBe('ConfigError');
    expect(outcome.error.code).toBe('invalid_config');
    expect(outcome.error.message).toBe(
      'Invalid configuration:\n  - DISPATCH_KEYS must come from Secrets Manager, not the environment',
    );
    for (const secret of [plain, ...Object.values(DISPATCH_KEYS.keys)]) {
      expect(outcome.output).not.toContain(secret);
    }
    expect(secrets.calls.length).toBe(callsBefore);
  });
});

describe('artifact: admin bundle', () => {
  it('GET /openapi.json serves the document shipped beside the bundle, compact, cacheable, without a token', async () => {
    // Prepare
    const source = await readFile(join(ROOT, 'functions/openapi/openapi.json'), 'utf8');
    const shipped = await readFile(join(DIST, 'admin', 'openapi.json'), 'utf8');

    // Act
    const res = await call('admin', httpEvent('GET', '/openapi.json'));

    // Assess
    expect(shipped).toBe(source);
    expect(res.status, res.text).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.text).toBe(JSON.stringify(JSON.parse(source)));
  });

  it('PUT of a tenant creates (201) then replaces (200) it, each with an ETag', async () => {
    // Prepare
    const tenantId = uid('art-adm');
    const body = { name: 'Artifact Admin', agent_names: [AGENT] };

    // Act
    const created = await adminPut(`/v1/admin/tenants/${tenantId}`, body, { 'if-none-match': '*' });
    const replaced = await adminPut(
      `/v1/admin/tenants/${tenantId}`,
      { ...body, name: 'Renamed' },
      { 'if-match': created.headers.etag ?? '' },
    );

    // Assess
    expect(created.status, created.text).toBe(201);
    expect(created.headers.etag).toMatch(/^"[^"]+"$/);
    expect(created.json).toMatchObject({ tenant_id: tenantId, name: 'Artifact Admin', agent_names: [AGENT] });
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.headers.etag).toMatch(/^"[^"]+"$/);
    expect(replaced.headers.etag).not.toBe(created.headers.etag);
    expect(replaced.json.name).toBe('Renamed');
  });
});

describe('artifact: session bundle', () => {
  it('POST /v1/sessions answers 201 with a verifying token and makes one sealed dispatch', async () => {
    // Prepare
    const { tenantId, userId } = await provision({ webhookDispatch: false });
    const jwt = await jwks.mint({ sub: userId, tenant_id: tenantId });
    const body = JSON.stringify({ participant_name: 'Ada' });

    // Act
    const res = await call(
      'session',
      httpEvent('POST', '/v1/sessions', {
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body,
      }),
    );

    // Assess
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({
      server_url: livekit.url.replace(/^http/, 'ws'),
      participant_identity: userId,
    });
    expect(res.json.agent_name).toBe(AGENT);
    const { payload } = await jwtVerify(
      res.json.participant_token,
      new TextEncoder().encode(TEST_LIVEKIT.apiSecret),
      {
        issuer: TEST_LIVEKIT.apiKey,
      },
    );
    expect(payload.sub).toBe(userId);
    expect(payload.video).toMatchObject({ room: res.json.room_name, roomJoin: true });
    const creates = livekit.calls.filter(
      (c) =>
        c.rpc === 'AgentDispatchService/CreateDispatch' &&
        (c.body as { room?: string }).room === res.json.room_name,
    );
    expect(creates).toHaveLength(1);
    expect(creates[0]!.authOk).toBe(true);
    const dispatch = livekit.dispatches.find((d) => d.room === res.json.room_name)!;
    expect(dispatch.id).toBe(res.json.dispatch_id);
    expect(dispatch.agentName).toBe(AGENT);
    const claims = await openMetadata(dispatch.metadata);
    expect(claims).toMatchObject({ aud: AGENT, sub: userId, tid: tenantId, room: res.json.room_name });
    expect(claims.mcp_servers).toMatchObject([
      { url: MCP_URL, headers: { Authorization: `Bearer ${MCP_TOKEN}` } },
    ]);
    expect(claims.refresh_url).toBe('https://api.example.com/v1/worker/credentials');

    // The credentials bundle renews that job's credentials for a worker assertion.
    const assertion = await makeWorkerAssertion({
      keyring: parseKeyring('DISPATCH_KEYS', JSON.stringify(DISPATCH_KEYS)).keyring!,
      agentName: AGENT,
      refreshUrl: claims.refresh_url as string,
      sid: claims.sid as string,
    });
    const renewed = await call(
      'credentials',
      httpEvent('POST', '/v1/worker/credentials', {
        headers: { authorization: `Bearer ${assertion}`, 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: dispatch.metadata }),
      }),
    );
    expect(renewed.status, renewed.text).toBe(200);
    const fresh = await openMetadata(renewed.json.metadata);
    expect(fresh).toMatchObject({ sid: claims.sid, room: res.json.room_name, sub: userId });
    expect(fresh.jti).not.toBe(claims.jti);
  });
});

describe('artifact: webhook bundle', () => {
  it('a signed participant_joined delivered base64-encoded is dispatched once', async () => {
    // Prepare
    const { tenantId, userId } = await provision({ webhookDispatch: true });
    const roomName = `lk-mcp-${tenantId}-${randomUUID().slice(0, 8)}`;
    livekit.addRoom(roomName);
    const signed = await signWebhookBody(participantJoined({ roomName, identity: userId }), TEST_LIVEKIT);
    const delivery = () =>
      httpEvent('POST', '/v1/livekit/webhook', {
        headers: { authorization: signed.authorization, 'content-type': 'application/webhook+json' },
        body: signed.body,
        base64: true,
      });

    // Act
    const first = await call('webhook', delivery());
    const again = await call('webhook', delivery());

    // Assess
    expect(first.status, first.text).toBe(200);
    expect(first.json).toEqual({ ok: true, action: 'dispatched' });
    expect(again.status, again.text).toBe(200);
    expect(again.json).toEqual({ ok: true, action: 'duplicate_event' });
    const dispatches = livekit.dispatches.filter((d) => d.room === roomName);
    expect(dispatches).toHaveLength(1);
    const claims = await openMetadata(dispatches[0]!.metadata);
    expect(claims).toMatchObject({ aud: AGENT, sub: userId, tid: tenantId, room: roomName, pid: userId });
  });

  it('a base64 delivery whose signature does not match is 401 invalid_signature', async () => {
    // Prepare
    const roomName = `lk-mcp-${uid('art-x')}`;
    const signed = await signWebhookBody(participantJoined({ roomName, identity: 'someone' }), TEST_LIVEKIT);
    const tampered = signed.body.replace('someone', 'someone-else');

    // Act
    const res = await call(
      'webhook',
      httpEvent('POST', '/v1/livekit/webhook', {
        headers: { authorization: signed.authorization, 'content-type': 'application/webhook+json' },
        body: tampered,
        base64: true,
      }),
    );

    // Assess
    expect(res.status, res.text).toBe(401);
    expect(res.json.code).toBe('invalid_signature');
    expect(livekit.calls.filter((c) => (c.body as { room?: string }).room === roomName)).toEqual([]);
  });
});

describe('artifact: secrets stay secret', () => {
  it('no response and no log line of any bundle holds a secret value', () => {
    // Prepare
    const logs = started.map((fn) => fn.output()).join('\n');

    // Act
    const seen = SECRETS.filter((s) => logs.includes(s) || responses.some((r) => r.includes(s)));

    // Assess
    expect(logs.length).toBeGreaterThan(0);
    expect(seen).toEqual([]);
  });
});
