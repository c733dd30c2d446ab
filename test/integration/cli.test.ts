import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, runCli } from '../../cli/main.js';
import type { LocalServer } from '../../functions/local.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

const SECRET_TOKEN = 'mcp-SECRET-cli-4b1d7e';
const SECRET_TOKEN_2 = 'mcp-SECRET-cli-2-9c3f';
const SECRET_HEADER = 'hdr-SECRET-cli-51aa';
const SECRETS = [SECRET_TOKEN, SECRET_TOKEN_2, SECRET_HEADER];

let dataDir: string;
let local: LocalServer;
let stack: LocalStack;
let baseUrl: string;
const tokens = { super: '', adminAcme: '', userAlice: '' };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON output is asserted field by field
  json: any;
}

/** Runs the CLI in-process with the given admin token (or none) and stdin. */
async function cli(argv: string[], options: { token?: string | null; stdin?: string } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const token = options.token === undefined ? tokens.super : options.token;
  const io: CliIo = {
    env: { LKMCP_URL: baseUrl, ...(token === null ? {} : { LKMCP_TOKEN: token }) },
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readStdin: async () => options.stdin ?? '',
  };
  const code = await runCli(argv, io);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  for (const secret of SECRETS) {
    expect(stdout).not.toContain(secret);
    expect(stderr).not.toContain(secret);
  }
  return { code, stdout, stderr, json };
}

/** Runs the real bin the way a user does: `npx livekit-mcp-dispatch …` in the repository. */
function npx(argv: string[], env: Record<string, string>, stdin = ''): Promise<Omit<Run, 'json'>> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['--offline', 'livekit-mcp-dispatch', ...argv], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function secretFile(name: string, content: string): string {
  const file = join(dataDir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  stack = await startLocalStack();
  ({ dataDir, local, base: baseUrl } = stack);
  tokens.super = await local.mintToken!({ user: 'ops', superadmin: true });
  tokens.adminAcme = await local.mintToken!({ user: 'acme-admin', tenant: 'acme', admin: true });
  tokens.userAlice = await local.mintToken!({ user: 'alice', tenant: 'acme' });
});

afterAll(async () => {
  await stack?.stop();
});

describe('livekit-mcp-dispatch tenants', () => {
  it('creates a tenant with an MCP token read from a file, showing only its fingerprint', async () => {
    // Prepare
    const tokenFile = secretFile('acme-token', `${SECRET_TOKEN}\n`);

    // Act
    const run = await cli([
      'tenants',
      'put',
      'acme',
      '--name',
      'Acme',
      '--agent-names',
      'mcp-agent,helper',
      '--mcp-url',
      'http://localhost:9/mcp',
      '--mcp-token-file',
      tokenFile,
      '--json',
    ]);

    // Assess
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({
      tenant_id: 'acme',
      name: 'Acme',
      agent_names: ['mcp-agent', 'helper'],
      version: 1,
      mcp: { url: 'http://localhost:9/mcp', token_set: true },
    });
    expect(run.json.mcp.token_fingerprint).toEqual(expect.any(String));
  });

  it('updates only the given fields: the rest of the record and the token are kept (If-Match)', async () => {
    // Act
    const run = await cli(['tenants', 'put', 'acme', '--webhook-dispatch', 'true', '--json']);

    // Assess
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({
      name: 'Acme',
      agent_names: ['mcp-agent', 'helper'],
      webhook_dispatch: true,
      version: 2,
      mcp: { url: 'http://localhost:9/mcp', token_set: true },
    });
  });

  it('lets a tenant admin update its tenant without sending the superadmin fields back', async () => {
    // Act
    const run = await cli(['tenants', 'put', 'acme', '--name', 'Acme Inc', '--json'], {
      token: tokens.adminAcme,
    });

    // Assess
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ name: 'Acme Inc', agent_names: ['mcp-agent', 'helper'], version: 3 });
  });

  it('reports a problem document with its code, fields and exit code 1', async () => {
    // Act
    const run = await cli(['tenants', 'put', 'acme', '--agent-names', 'x'], { token: tokens.adminAcme });

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('(field_requires_superadmin, HTTP 403)');
    expect(run.stderr).toContain('fields: agent_names');
  });

  it('prints a tenant as text and as JSON', async () => {
    // Act
    const text = await cli(['tenants', 'get', 'acme']);
    const json = await cli(['tenants', 'get', 'acme', '--json']);

    // Assess
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^name\s+Acme Inc$/m);
    expect(text.stdout).toMatch(/^ {2}token_set\s+true$/m);
    expect(json.json).toMatchObject({ tenant_id: 'acme', version: 3 });
  });

  it('refuses --create over an existing tenant (412 already_exists) and a stale --if-match (412)', async () => {
    // Act
    const create = await cli(['tenants', 'put', 'acme', '--name', 'X', '--create']);
    const stale = await cli(['tenants', 'put', 'acme', '--name', 'X', '--if-match', '1']);

    // Assess
    expect(create.code).toBe(1);
    expect(create.stderr).toContain('already_exists, HTTP 412');
    expect(create.stderr).toContain('hint: it exists; leave out --create');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('version_conflict, HTTP 412');
    // The same command would fail again: the hint is to read the current version.
    expect(stale.stderr).toContain(
      'hint: the record is no longer at version 1: read the current version (tenants get acme)',
    );
    expect(stale.stderr).not.toContain('run the command again');
  });

  it('lists tenants as a table, page by page or --all', async () => {
    // Prepare
    for (const t of ['globex', 'initech']) {
      expect((await cli(['tenants', 'put', t, '--name', t.toUpperCase(), '--create'])).code).toBe(0);
    }

    // Act
    const table = await cli(['tenants', 'list']);
    const page = await cli(['tenants', 'list', '--limit', '1', '--json']);
    const all = await cli(['tenants', 'list', '--limit', '1', '--all', '--json']);

    // Assess
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^TENANT\s+NAME\s+STATUS/);
    expect(table.stdout).toMatch(/^globex\s+GLOBEX\s+active/m);
    expect(page.json.items).toHaveLength(1);
    expect(page.json.next_cursor).toEqual(expect.any(String));
    expect(all.json.items.map((t: { tenant_id: string }) => t.tenant_id).sort()).toEqual([
      'acme',
      'globex',
      'initech',
    ]);
    expect(all.json.next_cursor).toBeNull();
  });

  it('keeps the catalog, its secrets and the return URLs on a put that changes other fields', async () => {
    // Prepare
    const body = secretFile(
      'catalog-body.json',
      JSON.stringify({
        name: 'Catalog',
        mcp_servers: [
          {
            name: 'docs',
            url: 'http://localhost:9/docs',
            headers: { 'X-Key': SECRET_HEADER },
            auth: { type: 'static', token: SECRET_TOKEN_2 },
          },
          {
            name: 'crm',
            url: 'http://localhost:9/crm',
            webhook: true,
            auth: { type: 'oauth', scopes: ['read'] },
          },
        ],
        oauth_return_urls: ['com.example.app:/oauth'],
      }),
    );
    const created = await cli(['tenants', 'put', 'catalog-cli', '--body-file', body, '--json']);
    expect(created.code, created.stderr).toBe(0);

    // Act
    const run = await cli(['tenants', 'put', 'catalog-cli', '--name', 'Catalog 2', '--json']);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.json.name).toBe('Catalog 2');
    expect(run.json.mcp_servers).toEqual(created.json.mcp_servers);
    expect(run.json.mcp_servers[0]).toMatchObject({ header_names: ['X-Key'], auth: { token_set: true } });
    expect(run.json.oauth_return_urls).toEqual(['com.example.app:/oauth']);
    expect((await cli(['tenants', 'rm', 'catalog-cli'])).code).toBe(0);
  });
});

describe('livekit-mcp-dispatch users', () => {
  it('creates a user with the MCP token read from stdin and lists it', async () => {
    // Act
    const put = await cli(
      [
        'users',
        'put',
        'acme',
        'alice',
        '--display-name',
        'Alice',
        '--phone',
        '+14155550100',
        '--mcp-token-file',
        '-',
        '--json',
      ],
      { stdin: `${SECRET_TOKEN_2}\n` },
    );
    const listed = await cli(['users', 'list', 'acme']);

    // Assess
    expect(put.code).toBe(0);
    expect(put.json).toMatchObject({
      user_id: 'alice',
      display_name: 'Alice',
      phone_numbers: ['+14155550100'],
      status: 'active',
      mcp: { url: null, token_set: true },
    });
    expect(listed.stdout).toMatch(/^alice\s+active\s+Alice\s+\+14155550100/m);
  });

  it('sets headers from a JSON file: names shown, values never', async () => {
    // Prepare
    const headersFile = secretFile('headers.json', JSON.stringify({ 'X-Api-Key': SECRET_HEADER }));

    // Act
    const run = await cli(['users', 'put', 'acme', 'alice', '--mcp-headers-file', headersFile, '--json']);

    // Assess
    expect(run.code).toBe(0);
    expect(run.json.mcp).toMatchObject({ token_set: true, header_names: ['X-Api-Key'] });
    expect(run.json.display_name).toBe('Alice');
  });

  it('lists each failing field when the API refuses the body (422)', async () => {
    // Act: the kept token would follow a URL to another origin.
    const run = await cli(['users', 'put', 'acme', 'alice', '--mcp-url', 'http://127.0.0.1:9/other']);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('(invalid_request, HTTP 422)');
    expect(run.stderr).toMatch(/ {2}- mcp\.token: must be sent again/);
  });

  it('shows sessions started by the user, then revokes the user', async () => {
    // Prepare
    const started = await fetch(`${baseUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.userAlice}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(started.status).toBe(201);
    const { room_name: room } = (await started.json()) as { room_name: string };

    // Act
    const sessions = await cli(['sessions', 'acme', '--json']);
    const revoked = await cli(['users', 'revoke', 'acme', 'alice']);
    const after = await cli(['users', 'get', 'acme', 'alice', '--json']);

    // Assess
    expect(sessions.json.items).toEqual([expect.objectContaining({ room_name: room, user_id: 'alice' })]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe('revoked alice: suspended, 1 session(s) ended\n');
    expect(after.json.status).toBe('suspended');
  });

  it('keeps a suspension when a put leaves the status out', async () => {
    // Act
    const run = await cli(['users', 'put', 'acme', 'alice', '--display-name', 'Alice B', '--json']);

    // Assess
    expect(run.json).toMatchObject({ display_name: 'Alice B', status: 'suspended' });
  });

  it('shows the audit trail across pages', async () => {
    // Act
    const run = await cli(['audit', 'acme', '--limit', '2', '--all', '--json']);
    const text = await cli(['audit', 'acme']);

    // Assess
    expect(run.code).toBe(0);
    const actions = run.json.items.map((a: { action: string }) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['create', 'update', 'revoke']));
    expect(run.json.items.length).toBeGreaterThanOrEqual(7);
    expect(text.stdout.split('\n')[0]).toMatch(/^AT\s+ACTION\s+TARGET/);
  });

  it('deletes a user, and a tenant with users only with --cascade', async () => {
    // Prepare
    expect((await cli(['users', 'put', 'globex', 'gina', '--create'])).code).toBe(0);
    expect((await cli(['users', 'put', 'globex', 'gus', '--create'])).code).toBe(0);

    // Act
    const userRm = await cli(['users', 'rm', 'globex', 'gina']);
    const refused = await cli(['tenants', 'rm', 'globex']);
    const cascade = await cli(['tenants', 'rm', 'globex', '--cascade']);
    const gone = await cli(['tenants', 'get', 'globex']);

    // Assess
    expect(userRm).toMatchObject({ code: 0, stdout: 'deleted user gina of globex\n' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('tenant_has_users, HTTP 409');
    expect(refused.stderr).toContain('hint: delete the users first, or add --cascade');
    expect(cascade.code).toBe(0);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('tenant_not_found, HTTP 404');
  });

  it('answers users list of a tenant that does not exist with tenant_not_found', async () => {
    // Act
    const listed = await cli(['users', 'list', 'nosuch']);

    // Assess
    expect(listed.code).toBe(1);
    expect(listed.stderr).toContain('tenant_not_found, HTTP 404');
  });
});

describe('livekit-mcp-dispatch connections', () => {
  it('lists the tenant’s connections by status, shows a user’s, and deletes one; never a token', async () => {
    // Prepare: a tenant whose catalog has a user-token server, and two users who set theirs.
    const body = secretFile(
      'connections-body.json',
      JSON.stringify({
        name: 'Conn',
        mcp_servers: [{ name: 'plain', url: 'http://localhost:9/plain', auth: { type: 'user_token' } }],
      }),
    );
    expect((await cli(['tenants', 'put', 'conn-cli', '--body-file', body])).code).toBe(0);
    for (const user of ['uma', 'vic']) {
      expect((await cli(['users', 'put', 'conn-cli', user, '--create'])).code).toBe(0);
      const token = await local.mintToken!({ user, tenant: 'conn-cli' });
      const set = await fetch(`${baseUrl}/v1/connections/plain`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token: SECRET_TOKEN }),
      });
      expect(set.status).toBe(200);
    }

    // Act
    const listed = await cli(['connections', 'list', 'conn-cli', '--status', 'connected', '--json']);
    const text = await cli(['connections', 'list', 'conn-cli']);
    const none = await cli(['connections', 'list', 'conn-cli', '--status', 'needs_reauth']);
    const one = await cli(['connections', 'get', 'conn-cli', 'uma']);
    const removed = await cli(['connections', 'rm', 'conn-cli', 'uma', 'plain']);
    const after = await cli(['connections', 'list', 'conn-cli', '--json']);
    const badStatus = await cli(['connections', 'list', 'conn-cli', '--status', 'bogus']);

    // Assess
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.json.items.map((i: { user_id: string }) => i.user_id)).toEqual(['uma', 'vic']);
    expect(text.stdout).toMatch(/^USER +SERVER +AUTH +STATUS/);
    expect(text.stdout).toMatch(/vic +plain +user_token +connected/);
    expect(none.stdout).toBe('no connections\n');
    expect(one.stdout).toMatch(/plain +user_token +connected/);
    expect(removed.stdout).toBe('deleted connection plain of uma in conn-cli\n');
    expect(after.json.items.map((i: { user_id: string }) => i.user_id)).toEqual(['vic']);
    expect(badStatus.code).toBe(2);
    expect((await cli(['tenants', 'rm', 'conn-cli', '--cascade'])).code).toBe(0);
  });
});

describe('livekit-mcp-dispatch lists of a missing tenant', () => {
  it('exits 1 and prints the problem when the API answers 404 (users list of a tenant it does not show)', async () => {
    // Prepare: a tenant admin of acme asking for another tenant: the API answers 404 as for a
    // missing tenant (and, for a superadmin, `users list nosuch` is the same 404).
    // Act
    const run = await cli(['users', 'list', 'nosuch'], { token: tokens.adminAcme });

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\(tenant_not_found, HTTP 404\)/);
    expect(run.stderr).toContain('hint: no tenant nosuch (tenants list shows them)');
    expect(run.stdout).toBe('');
  });
});

describe('livekit-mcp-dispatch usage and connection errors', () => {
  it('answers a secret typed as a flag with the file flag, without the help or the value', async () => {
    // Act
    const run = await cli(['users', 'put', 'acme', 'bob', '--mcp-token', SECRET_TOKEN]);

    // Assess (cli() also checks that the value is never printed)
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "Unknown option '--mcp-token'; did you mean --mcp-token-file? secrets are read from files (or - for stdin), never flags",
    );
    expect(run.stderr).not.toContain('usage:');
  });

  it.each([
    [['tenants', 'put', 'acme', '--mcp-urll', 'x'], 'did you mean --mcp-url?'],
    [['users', 'list', 'acme', '--limt', '5'], 'did you mean --limit?'],
    [['tenants', 'rm', 'acme', '--cascde'], 'did you mean --cascade?'],
    [['tenants', 'list', '--limit'], '--limit needs a value'],
  ])('suggests the flag meant for %j', async (argv, message) => {
    // Act
    const run = await cli(argv);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it.each([
    [['frobnicate'], 'unknown command: frobnicate'],
    [['tenants', 'get'], 'tenants get takes <tenant>'],
    [['users', 'get', 'acme'], 'users get takes <tenant> <user>'],
    [['tenants', 'get', 'acme', '--cascade'], 'tenants get does not take --cascade'],
    [['tenants', 'put', 'acme', '--status', 'paused'], '--status must be one of active, suspended'],
    [['tenants', 'list', '--limit', '500'], '--limit must be a whole number from 1 to 100'],
    [['tenants', 'list', '--bogus'], "Unknown option '--bogus'"],
    [['users', 'put', 'acme', 'x', '--mcp-token-file', '/nonexistent/file'], 'cannot read the MCP token'],
  ])('exits 2 for %j', async (argv, message) => {
    // Act
    const run = await cli(argv);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('exits 2 without LKMCP_TOKEN and 1 with a token the API refuses', async () => {
    // Act
    const missing = await cli(['tenants', 'list'], { token: null });
    const refused = await cli(['tenants', 'list'], { token: 'not-a-jwt' });

    // Assess
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('LKMCP_TOKEN is not set');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(unauthenticated, HTTP 401)');
    expect(refused.stderr).toContain('hint: check LKMCP_TOKEN');
  });

  it('exits 1 when the server cannot be reached', async () => {
    // Prepare: a port that was just free.
    const probe = createServer();
    await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
    const { port } = probe.address() as AddressInfo;
    await new Promise((ok) => probe.close(ok));

    // Act
    const run = await cli(['tenants', 'list', '--url', `http://127.0.0.1:${port}`]);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot reach http://127.0.0.1:${port} (ECONNREFUSED)`);
  });
});

describe('npx livekit-mcp-dispatch', () => {
  it('runs the bin with LKMCP_URL and LKMCP_TOKEN, reading a secret from stdin', async () => {
    // Act
    const put = await npx(
      [
        'users',
        'put',
        'initech',
        'peter',
        '--mcp-url',
        'http://localhost:7/mcp',
        '--mcp-token-file',
        '-',
        '--json',
      ],
      { LKMCP_URL: baseUrl, LKMCP_TOKEN: tokens.super },
      `${SECRET_TOKEN}\n`,
    );
    const missing = await npx(['users', 'get', 'initech', 'nobody'], {
      LKMCP_URL: baseUrl,
      LKMCP_TOKEN: tokens.super,
    });
    const usage = await npx(['tenants'], { LKMCP_URL: baseUrl, LKMCP_TOKEN: tokens.super });

    // Assess
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ user_id: 'peter', mcp: { token_set: true } });
    expect(put.stdout).not.toContain(SECRET_TOKEN);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('user_not_found, HTTP 404');
    expect(usage.code).toBe(2);
  });
});
