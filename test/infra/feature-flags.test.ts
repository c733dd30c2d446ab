import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { functionNames } from '../../scripts/esbuild-options.js';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'lkmcp-flags-'));
const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
const recommended = JSON.parse(
  readFileSync('node_modules/aws-cdk-lib/recommended-feature-flags.json', 'utf8'),
) as Record<string, unknown>;

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('cdk.json feature flags', () => {
  it('sets every flag the installed aws-cdk-lib recommends, as `cdk init` would', () => {
    // Assess
    const flags = Object.fromEntries(
      Object.entries(cdkJson.context).filter(([k]) => k.startsWith('@aws-cdk')),
    );
    expect(flags).toEqual(recommended);
  });

  it('synthesizes with them (what `cdk synth` runs), and cdk-nag still passes', async () => {
    // Prepare: stand-in bundles and the context the CLI would pass (cdk.json's plus -c values).
    const functionsDir = join(work, 'functions');
    for (const name of functionNames) {
      mkdirSync(join(functionsDir, name), { recursive: true });
      writeFileSync(join(functionsDir, name, 'index.mjs'), 'export const handler = async () => ({});\n');
    }
    const outdir = join(work, 'cdk.out');
    const context = {
      ...cdkJson.context,
      livekitUrl: 'wss://livekit.example.com',
      authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
      authIssuer: 'https://id.example.com/',
      authAudience: 'livekit-mcp-dispatch',
      functionsDir,
    };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify(context),
    };
    delete env.CDK_DEFAULT_ACCOUNT;
    delete env.CDK_DEFAULT_REGION;
    delete env.AWS_PROFILE;

    // Act
    await run(process.execPath, ['--import', 'tsx', 'infra/main.ts'], { env, timeout: 120_000 });

    // Assess
    const template = JSON.parse(readFileSync(join(outdir, 'LiveKitMcpDispatch.template.json'), 'utf8'));
    const functions = Object.values(template.Resources).filter(
      (r) => (r as { Type: string }).Type === 'AWS::Lambda::Function',
    );
    expect(functions).toHaveLength(5);
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports.filter((r: { conclusion: string }) => r.conclusion !== 'success')).toEqual(
      [],
    );
  }, 120_000);
});
