import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../infra/app.js';
import { functionNames } from '../../scripts/esbuild-options.js';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'lkmcp-app-'));
const functionsDir = join(work, 'functions');
for (const name of functionNames) {
  mkdirSync(join(functionsDir, name), { recursive: true });
  writeFileSync(
    join(functionsDir, name, 'index.mjs'),
    'export const handler = async () => ({ statusCode: 204 });\n',
  );
}
const CONTEXT = {
  livekitUrl: 'wss://livekit.example.com',
  authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
  authIssuer: 'https://id.example.com/',
  authAudience: 'livekit-mcp-dispatch',
  functionsDir,
};

/** Runs the `cdk` entry point the way the CLI does: context and output directory in the environment. */
function synth(context: Record<string, unknown>, outdir: string) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_OUTDIR: outdir,
    CDK_CONTEXT_JSON: JSON.stringify(context),
  };
  delete env.CDK_DEFAULT_ACCOUNT;
  delete env.CDK_DEFAULT_REGION;
  delete env.AWS_PROFILE;
  return run(process.execPath, ['--import', 'tsx', 'infra/main.ts'], { env, timeout: 120_000 });
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('cdk app', () => {
  // A `cdk synth` subprocess of four bundles' stack plus cdk-nag: ~30 s on a loaded 2-core runner.
  it('synthesizes offline, with no account, and cdk-nag passes', async () => {
    // Prepare
    const outdir = join(work, 'cdk.out');

    // Act
    await synth(CONTEXT, outdir);

    // Assess
    const template = JSON.parse(readFileSync(join(outdir, 'LiveKitMcpDispatch.template.json'), 'utf8'));
    expect(
      Object.values(template.Resources).filter(
        (r) => (r as { Type: string }).Type === 'AWS::Lambda::Function',
      ),
    ).toHaveLength(5);
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports.filter((r: { conclusion: string }) => r.conclusion !== 'success')).toEqual(
      [],
    );
    // A real `cdk synth` in a child process; slow on a loaded machine (the stack has 40+ routes).
  }, 90_000);

  it('refuses bad context with one message listing every problem', async () => {
    // Act
    const failed = await synth({ livekitUrl: 'ws://insecure', functionsDir }, join(work, 'bad.out')).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );

    // Assess
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('livekitUrl must use wss: or https:');
    expect(failed?.stderr).toContain('authJwksUrl is required');
    expect(failed?.stderr).toContain('authAudience is required');
    expect(failed?.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to synthesize without the built bundles', async () => {
    // Act
    const failed = await synth(
      { ...CONTEXT, functionsDir: join(work, 'missing') },
      join(work, 'none.out'),
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );

    // Assess
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('run `npm run build` first');
  });

  it('registers cdk-nag: an unacknowledged finding fails synth', () => {
    // Prepare
    const { app, stack } = createApp(new App({ context: CONTEXT, outdir: join(work, 'nag.out') }));
    new Queue(stack, 'UnencryptedQueueWithoutDlq');

    // Act
    const act = () => app.synth();

    // Assess
    expect(act).toThrow(/AwsSolutions-SQS4/);
    const report = JSON.parse(readFileSync(join(work, 'nag.out', 'validation-report.json'), 'utf8'));
    const violations = report.pluginReports
      .filter((r: { pluginName: string }) => r.pluginName === 'AwsSolutions')
      .flatMap(
        (r: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }) =>
          r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
      );
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.every((v: string) => v.includes('/UnencryptedQueueWithoutDlq/'))).toBe(true);
  });
});
