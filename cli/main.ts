import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AdminClient, ApiError, tenantPath, UnreachableError, userPath } from './client.js';

/** Where the CLI reads and writes; the process streams by default, buffers in tests. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The whole of standard input (for `--mcp-token-file -`). */
  readStdin: () => Promise<string>;
  fetch?: typeof fetch;
}

/** Exit codes: 0 success, 1 the API refused or could not be reached, 2 a usage error. */
export const EXIT = { ok: 0, api: 1, usage: 2 } as const;

const DEFAULT_URL = 'http://localhost:8787';

const USAGE = `usage: livekit-mcp-dispatch <command> [options]

  tenants list [--limit N] [--cursor C] [--all]
  tenants get <tenant>
  tenants put <tenant> [tenant fields] [mcp fields] [--create | --if-match V] [--replace] [--body-file F|-]
  tenants rm <tenant> [--cascade] [--if-match V]
  users list <tenant> [--limit N] [--cursor C] [--all]
  users get <tenant> <user>
  users put <tenant> <user> [user fields] [mcp fields] [--create | --if-match V] [--replace] [--body-file F|-]
  users rm <tenant> <user> [--if-match V]
  users revoke <tenant> <user>
  audit <tenant> [--limit N] [--cursor C] [--all]
  sessions <tenant> [--limit N] [--cursor C] [--all]
  connections list <tenant> [--status connected|pending|needs_reauth] [--limit N] [--cursor C] [--all]
  connections get <tenant> <user>
  connections rm <tenant> <user> <server>   (revokes the grant at its authorization server)

tenant fields: --name S  --dispatch-policy per_room|per_participant
  superadmin only: --agent-names a,b  --max-sessions N|none  --status active|suspended
                   --webhook-dispatch true|false  --sip-trunk-ids t1,t2
user fields:   --display-name S  --phone +E164[,+E164]  --status active|suspended
mcp fields:    --mcp-url URL  --mcp-transport streamable_http|sse  --mcp-name S  --allowed-tools a,b
               --mcp-token-file F|-  --mcp-headers-file F|- (JSON object)  --clear-mcp-token
               --clear-mcp-headers  --no-mcp
               Secrets are read from a file or stdin (-), never from the command line.

put reads the record, applies the given fields and writes it back with If-Match (or creates it
with If-None-Match: * when missing). --create only creates; --replace starts from an empty body
instead of the current record; --body-file starts from a JSON body.

global: --json (machine-readable output)  --url URL  -h, --help
env:    LKMCP_URL (default ${DEFAULT_URL}), LKMCP_TOKEN (admin bearer JWT, required)
exit:   0 ok, 1 API error or unreachable, 2 usage error
`;

const OPTIONS = {
  json: { type: 'boolean' },
  url: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  all: { type: 'boolean' },
  create: { type: 'boolean' },
  'if-match': { type: 'string' },
  replace: { type: 'boolean' },
  'body-file': { type: 'string' },
  cascade: { type: 'boolean' },
  name: { type: 'string' },
  'dispatch-policy': { type: 'string' },
  'agent-names': { type: 'string' },
  'max-sessions': { type: 'string' },
  status: { type: 'string' },
  'webhook-dispatch': { type: 'string' },
  'sip-trunk-ids': { type: 'string' },
  'display-name': { type: 'string' },
  phone: { type: 'string', multiple: true },
  'mcp-url': { type: 'string' },
  'mcp-transport': { type: 'string' },
  'mcp-name': { type: 'string' },
  'allowed-tools': { type: 'string' },
  'mcp-token-file': { type: 'string' },
  'token-file': { type: 'string' },
  'mcp-headers-file': { type: 'string' },
  'clear-mcp-token': { type: 'boolean' },
  'clear-mcp-headers': { type: 'boolean' },
  'no-mcp': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parse>['values'];
type Json = Record<string, unknown>;

const GLOBAL = ['json', 'url', 'help'];
const LIST = ['limit', 'cursor', 'all'];
const MCP = [
  'mcp-url',
  'mcp-transport',
  'mcp-name',
  'allowed-tools',
  'mcp-token-file',
  'token-file',
  'mcp-headers-file',
  'clear-mcp-token',
  'clear-mcp-headers',
  'no-mcp',
];
const PUT = ['create', 'if-match', 'replace', 'body-file', ...MCP];
const TENANT_FIELDS = [
  'name',
  'dispatch-policy',
  'agent-names',
  'max-sessions',
  'status',
  'webhook-dispatch',
  'sip-trunk-ids',
];
const USER_FIELDS = ['display-name', 'phone', 'status'];

/** Each command: its positional arguments and the options it takes. */
const COMMANDS: Record<string, { args: string[]; options: string[] }> = {
  'tenants list': { args: [], options: LIST },
  'tenants get': { args: ['tenant'], options: [] },
  'tenants put': { args: ['tenant'], options: [...PUT, ...TENANT_FIELDS] },
  'tenants rm': { args: ['tenant'], options: ['cascade', 'if-match'] },
  'users list': { args: ['tenant'], options: LIST },
  'users get': { args: ['tenant', 'user'], options: [] },
  'users put': { args: ['tenant', 'user'], options: [...PUT, ...USER_FIELDS] },
  'users rm': { args: ['tenant', 'user'], options: ['if-match'] },
  'users revoke': { args: ['tenant', 'user'], options: [] },
  audit: { args: ['tenant'], options: LIST },
  sessions: { args: ['tenant'], options: LIST },
  'connections list': { args: ['tenant'], options: [...LIST, 'status'] },
  'connections get': { args: ['tenant', 'user'], options: [] },
  'connections rm': { args: ['tenant', 'user', 'server'], options: [] },
};

/** A mistake in how the CLI was called (exit 2). */
class UsageError extends Error {}

/** Flags people type for a secret, and the file flag that takes it instead. */
const SECRET_FLAGS: Record<string, string> = {
  'mcp-token': 'mcp-token-file',
  token: 'mcp-token-file',
  'mcp-headers': 'mcp-headers-file',
  headers: 'mcp-headers-file',
  body: 'body-file',
};

/** Edit distance, for the did-you-mean of an unknown flag. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] ?? 0) + 1,
        (next[j - 1] ?? 0) + 1,
        (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/**
 * The usage error for a flag the CLI does not know: never Node's parser text (it repeats the
 * argument) nor the whole help, but the flag it probably is. A secret typed as a flag gets the
 * file flag and why (`ps` and shell history would keep it).
 */
function unknownFlag(flag: string): UsageError {
  const name = flag.replace(/^-+/, '');
  const secret = SECRET_FLAGS[name];
  if (secret !== undefined) {
    return new UsageError(
      `Unknown option '--${name}'; did you mean --${secret}? secrets are read from files (or - for stdin), never flags`,
    );
  }
  const known = Object.keys(OPTIONS);
  const near = known
    .map((k) => ({ k, d: k.startsWith(name) || name.startsWith(k) ? 1 : distance(name, k) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((x, y) => x.d - y.d)[0];
  return new UsageError(`Unknown option '${flag}'${near ? `; did you mean --${near.k}?` : ''}`);
}

/** Node's parseArgs errors as usage errors that name the flag and nothing the user typed after it. */
function parseError(err: unknown): UsageError {
  const e = err as { code?: string; message?: string };
  const flag = /option '(-{1,2}[^' ]+)/i.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag !== undefined) return unknownFlag(flag);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined) {
    const spec = OPTIONS[flag.replace(/^-+/, '') as keyof typeof OPTIONS];
    return new UsageError(spec?.type === 'boolean' ? `${flag} takes no value` : `${flag} needs a value`);
  }
  return new UsageError('cannot read the command line');
}

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

function oneOf(flag: string, value: string, allowed: string[]): string {
  if (!allowed.includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}`);
  return value;
}

/** Reads the `sub`/scopes of a JWT without verifying it: only to decide which fields to send back. */
function isSuperadmin(token: string): boolean {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const scopes = [
      ...(typeof payload.scope === 'string' ? payload.scope.split(' ') : []),
      ...(Array.isArray(payload.scp) ? payload.scp : []),
    ];
    return scopes.includes('dispatch:superadmin');
  } catch {
    return false;
  }
}

/** Turns the `mcp` of a response back into a request body; secrets are left out, so they are kept. */
function mcpBodyOf(view: Json | null | undefined): Json | undefined {
  if (view === null || view === undefined) return undefined;
  const out: Json = {};
  for (const f of ['url', 'transport', 'allowed_tools', 'name']) {
    if (view[f] !== null && view[f] !== undefined) out[f] = view[f];
  }
  return out;
}

/**
 * Turns a catalog entry of a response back into a request entry: secrets (and `header_names`) are
 * left out, so the API keeps them for the entry of the same name and URL.
 */
function catalogEntryOf(view: Json): Json {
  const out: Json = {};
  for (const [f, v] of Object.entries(view)) {
    if (f !== 'header_names' && f !== 'auth' && v !== null && v !== undefined) out[f] = v;
  }
  const auth: Json = {};
  for (const [f, v] of Object.entries((view.auth as Json | undefined) ?? { type: 'none' })) {
    if (!['token_set', 'token_fingerprint', 'client_secret_set'].includes(f) && v !== null) auth[f] = v;
  }
  out.auth = auth;
  return out;
}

function tenantBodyOf(view: Json, superadmin: boolean): Json {
  const body: Json = { name: view.name, dispatch_policy: view.dispatch_policy };
  const mcp = mcpBodyOf(view.mcp as Json | null);
  if (mcp !== undefined) body.mcp = mcp;
  // PUT replaces the record: the catalog and the return URLs go back as they are.
  if (Array.isArray(view.mcp_servers) && view.mcp_servers.length > 0) {
    body.mcp_servers = (view.mcp_servers as Json[]).map(catalogEntryOf);
  }
  if (Array.isArray(view.oauth_return_urls) && view.oauth_return_urls.length > 0) {
    body.oauth_return_urls = view.oauth_return_urls;
  }
  // PUT replaces the record: a superadmin sends these back unchanged; a tenant admin may not send them at all.
  if (superadmin) {
    for (const f of [
      'agent_names',
      'max_concurrent_sessions',
      'status',
      'webhook_dispatch',
      'sip_trunk_ids',
    ]) {
      if (view[f] !== null && view[f] !== undefined) body[f] = view[f];
    }
  }
  return body;
}

function userBodyOf(view: Json): Json {
  const body: Json = { phone_numbers: view.phone_numbers, status: view.status };
  if (view.display_name !== null && view.display_name !== undefined) body.display_name = view.display_name;
  const mcp = mcpBodyOf(view.mcp as Json | null);
  if (mcp !== undefined) body.mcp = mcp;
  return body;
}

async function readSecret(path: string, io: CliIo, what: string): Promise<string> {
  let text: string;
  try {
    text = path === '-' ? await io.readStdin() : await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${what} from ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return text.trim();
}

async function readJsonFile(path: string, io: CliIo, what: string): Promise<Json> {
  const text = await readSecret(path, io, what);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${what} in ${path} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${what} in ${path} must be a JSON object`);
  }
  return value as Json;
}

async function applyMcpFlags(body: Json, v: Values, io: CliIo): Promise<void> {
  const tokenFile = v['mcp-token-file'] ?? v['token-file'];
  if (tokenFile === '-' && v['mcp-headers-file'] === '-') {
    throw new UsageError('only one of --mcp-token-file and --mcp-headers-file can read stdin');
  }
  if (v['no-mcp']) {
    const others = MCP.filter((f) => f !== 'no-mcp' && v[f as keyof Values] !== undefined);
    if (others.length > 0) throw new UsageError(`--no-mcp cannot be combined with --${others.join(', --')}`);
    body.mcp = null;
    return;
  }
  const touched = MCP.some((f) => v[f as keyof Values] !== undefined);
  if (!touched) return;
  const mcp: Json = typeof body.mcp === 'object' && body.mcp !== null ? { ...(body.mcp as Json) } : {};
  if (v['mcp-url'] !== undefined) {
    if (v['mcp-url'] === '') delete mcp.url;
    else mcp.url = v['mcp-url'];
  }
  if (v['mcp-transport'] !== undefined) {
    mcp.transport = oneOf('mcp-transport', v['mcp-transport'], ['streamable_http', 'sse']);
  }
  if (v['mcp-name'] !== undefined) {
    if (v['mcp-name'] === '') delete mcp.name;
    else mcp.name = v['mcp-name'];
  }
  if (v['allowed-tools'] !== undefined) {
    const tools = list(v['allowed-tools']);
    if (tools.length === 0) delete mcp.allowed_tools;
    else mcp.allowed_tools = tools;
  }
  if (tokenFile !== undefined && v['clear-mcp-token']) {
    throw new UsageError('--mcp-token-file and --clear-mcp-token cannot be combined');
  }
  if (v['mcp-headers-file'] !== undefined && v['clear-mcp-headers']) {
    throw new UsageError('--mcp-headers-file and --clear-mcp-headers cannot be combined');
  }
  if (tokenFile !== undefined) {
    const token = await readSecret(tokenFile, io, 'the MCP token');
    if (token === '') throw new UsageError(`the MCP token in ${tokenFile} is empty`);
    mcp.token = token;
  }
  if (v['clear-mcp-token']) mcp.token = null;
  if (v['mcp-headers-file'] !== undefined) {
    mcp.headers = await readJsonFile(v['mcp-headers-file'], io, 'the MCP headers');
  }
  if (v['clear-mcp-headers']) mcp.headers = null;
  body.mcp = mcp;
}

function applyTenantFlags(body: Json, v: Values): void {
  if (v.name !== undefined) body.name = v.name;
  if (v['dispatch-policy'] !== undefined) {
    body.dispatch_policy = oneOf('dispatch-policy', v['dispatch-policy'], ['per_room', 'per_participant']);
  }
  if (v['agent-names'] !== undefined) body.agent_names = list(v['agent-names']);
  if (v['max-sessions'] !== undefined) {
    const raw = v['max-sessions'];
    if (raw === 'none') body.max_concurrent_sessions = null;
    else if (/^[0-9]{1,9}$/.test(raw)) body.max_concurrent_sessions = Number(raw);
    else throw new UsageError('--max-sessions must be a whole number or none');
  }
  if (v.status !== undefined) body.status = oneOf('status', v.status, ['active', 'suspended']);
  if (v['webhook-dispatch'] !== undefined) {
    body.webhook_dispatch = oneOf('webhook-dispatch', v['webhook-dispatch'], ['true', 'false']) === 'true';
  }
  if (v['sip-trunk-ids'] !== undefined) body.sip_trunk_ids = list(v['sip-trunk-ids']);
}

function applyUserFlags(body: Json, v: Values): void {
  if (v['display-name'] !== undefined)
    body.display_name = v['display-name'] === '' ? null : v['display-name'];
  if (v.phone !== undefined) body.phone_numbers = v.phone.flatMap(list);
  if (v.status !== undefined) body.status = oneOf('status', v.status, ['active', 'suspended']);
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

function mcpSummary(mcp: unknown): string {
  if (mcp === null || typeof mcp !== 'object') return '-';
  const m = mcp as Json;
  const parts = [m.url === null ? '(tenant URL)' : String(m.url)];
  if (m.token_set) parts.push(`token ${String(m.token_fingerprint ?? 'set')}`);
  const headers = (m.header_names as string[] | undefined) ?? [];
  if (headers.length > 0) parts.push(`headers ${headers.join(',')}`);
  return parts.join(' ');
}

/** Column layouts of the list commands. */
const COLUMNS: Record<string, [string, (r: Json) => unknown][]> = {
  tenants: [
    ['TENANT', (r) => r.tenant_id],
    ['NAME', (r) => r.name],
    ['STATUS', (r) => r.status],
    ['AGENTS', (r) => r.agent_names],
    ['MAX', (r) => r.max_concurrent_sessions],
    ['VERSION', (r) => r.version],
    ['MCP', (r) => mcpSummary(r.mcp)],
  ],
  users: [
    ['USER', (r) => r.user_id],
    ['STATUS', (r) => r.status],
    ['NAME', (r) => r.display_name],
    ['PHONES', (r) => r.phone_numbers],
    ['VERSION', (r) => r.version],
    ['MCP', (r) => mcpSummary(r.mcp)],
  ],
  audit: [
    ['AT', (r) => r.at],
    ['ACTION', (r) => r.action],
    ['TARGET', (r) => r.target],
    ['VERSION', (r) => r.version],
    ['ACTOR', (r) => r.actor],
    ['CHANGED', (r) => r.changed_fields],
  ],
  connections: [
    ['USER', (r) => r.user_id],
    ['SERVER', (r) => r.server],
    ['AUTH', (r) => r.auth],
    ['STATUS', (r) => r.status],
    ['REASON', (r) => r.reason ?? r.last_error],
    ['ISSUER', (r) => r.issuer],
    ['UPDATED', (r) => r.updated_at],
  ],
  sessions: [
    ['CREATED', (r) => r.created_at],
    ['ROOM', (r) => r.room_name],
    ['USER', (r) => r.user_id],
    ['AGENT', (r) => r.agent_name],
    ['STATUS', (r) => r.status],
    ['SECONDS', (r) => r.duration_seconds],
    ['DISPATCH', (r) => r.dispatch_id],
  ],
};

function describe(record: Json): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  const lines: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (k === 'mcp' && v !== null && typeof v === 'object') {
      lines.push(`${k.padEnd(width)}  ${mcpSummary(v)}`);
      for (const [mk, mv] of Object.entries(v as Json)) lines.push(`  ${mk.padEnd(width - 2)}  ${cell(mv)}`);
    } else {
      lines.push(`${k.padEnd(width)}  ${cell(v)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The CLI's settings, taken from flags and the environment. */
interface Context {
  client: AdminClient;
  token: string;
  values: Values;
  json: boolean;
  io: CliIo;
}

function print(ctx: Context, body: unknown, human: () => string): void {
  ctx.io.stdout(ctx.json ? `${JSON.stringify(body, null, 2)}\n` : human());
}

async function listCommand(
  ctx: Context,
  kind: string,
  path: string,
  query: Record<string, string | undefined> = {},
): Promise<void> {
  const { values: v } = ctx;
  if (v.limit !== undefined && !/^(100|[1-9][0-9]?)$/.test(v.limit)) {
    throw new UsageError('--limit must be a whole number from 1 to 100');
  }
  const items: Json[] = [];
  let cursor = v.cursor;
  let next: string | null = null;
  do {
    const page = await ctx.client.request<{ items: Json[]; next_cursor: string | null }>('GET', path, {
      query: { ...query, limit: v.limit, cursor },
    });
    items.push(...page.body.items);
    next = page.body.next_cursor;
    cursor = next ?? undefined;
  } while (v.all && next !== null);
  print(ctx, { items, next_cursor: next }, () => {
    const columns = COLUMNS[kind] ?? [];
    const out = table(
      columns.map(([h]) => h),
      items.map((r) => columns.map(([, f]) => cell(f(r)))),
    );
    return items.length === 0 ? `no ${kind}\n` : out;
  });
  if (!ctx.json && next !== null) ctx.io.stderr(`more: --cursor ${next} (or --all)\n`);
}

async function putCommand(ctx: Context, kind: 'tenant' | 'user', path: string): Promise<void> {
  const { values: v, io } = ctx;
  if (v.create && v['if-match'] !== undefined)
    throw new UsageError('--create and --if-match cannot be combined');
  if (v['if-match'] !== undefined && !/^[0-9]{1,15}$/.test(v['if-match'])) {
    throw new UsageError('--if-match takes the record version (a number, as shown by get)');
  }
  const stdinUsers = [v['body-file'], v['mcp-token-file'] ?? v['token-file'], v['mcp-headers-file']];
  if (stdinUsers.filter((f) => f === '-').length > 1)
    throw new UsageError('only one option can read stdin (-)');

  let existing: { body: Json; version: string | undefined } | undefined;
  if (!v.create) {
    try {
      const got = await ctx.client.request<Json>('GET', path);
      existing = { body: got.body, version: got.version };
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      if (v['if-match'] !== undefined) throw err;
    }
  }
  let body: Json;
  if (v['body-file'] !== undefined) body = await readJsonFile(v['body-file'], io, 'the body');
  else if (existing === undefined || v.replace) body = {};
  else
    body =
      kind === 'tenant' ? tenantBodyOf(existing.body, isSuperadmin(ctx.token)) : userBodyOf(existing.body);
  if (kind === 'tenant') applyTenantFlags(body, v);
  else applyUserFlags(body, v);
  await applyMcpFlags(body, v, io);

  const written = await ctx.client.request<Json>('PUT', path, {
    body,
    ...(existing === undefined ? { createOnly: true } : { ifMatch: v['if-match'] ?? existing.version }),
  });
  print(
    ctx,
    written.body,
    () => `${written.status === 201 ? 'created' : 'updated'} ${kind}\n${describe(written.body)}`,
  );
}

async function deleteCommand(ctx: Context, what: string, path: string): Promise<void> {
  const { values: v } = ctx;
  if (v['if-match'] !== undefined && !/^[0-9]{1,15}$/.test(v['if-match'])) {
    throw new UsageError('--if-match takes the record version (a number, as shown by get)');
  }
  let deletedUsers = 0;
  // A cascade answers 202 while it still has users to delete; each repeat makes progress.
  for (let round = 0; ; round++) {
    const res = await ctx.client.request<Json | undefined>('DELETE', path, {
      ...(v.cascade ? { query: { cascade: 'true' } } : {}),
      ...(v['if-match'] === undefined ? {} : { ifMatch: v['if-match'] }),
    });
    if (res.status !== 202) break;
    deletedUsers += Number(res.body?.deleted_users ?? 0);
    if (!ctx.json) ctx.io.stderr(`deleting… ${deletedUsers} users so far\n`);
    if (round >= 10_000) throw new Error('the cascade made no progress');
  }
  print(ctx, { ok: true, deleted: what }, () => `deleted ${what}\n`);
}

async function dispatch(command: string, args: string[], ctx: Context): Promise<void> {
  const [tenant = '', user = ''] = args;
  switch (command) {
    case 'tenants list':
      return listCommand(ctx, 'tenants', '/v1/admin/tenants');
    case 'users list':
      return listCommand(ctx, 'users', `${tenantPath(tenant)}/users`);
    case 'audit':
      return listCommand(ctx, 'audit', `${tenantPath(tenant)}/audit`);
    case 'sessions':
      return listCommand(ctx, 'sessions', `${tenantPath(tenant)}/sessions`);
    case 'connections list': {
      const status = ctx.values.status;
      if (status !== undefined && !['connected', 'pending', 'needs_reauth'].includes(status)) {
        throw new UsageError('--status must be connected, pending or needs_reauth');
      }
      return listCommand(ctx, 'connections', `${tenantPath(tenant)}/connections`, { status });
    }
    case 'connections get': {
      const got = await ctx.client.request<{ items: Json[] }>('GET', `${userPath(tenant, user)}/connections`);
      const columns = (COLUMNS.connections ?? []).slice(1);
      return print(ctx, got.body, () =>
        got.body.items.length === 0
          ? 'no connections\n'
          : table(
              columns.map(([h]) => h),
              got.body.items.map((r) => columns.map(([, f]) => cell(f(r)))),
            ),
      );
    }
    case 'connections rm': {
      const server = args[2] ?? '';
      await ctx.client.request(
        'DELETE',
        `${userPath(tenant, user)}/connections/${encodeURIComponent(server)}`,
      );
      return print(
        ctx,
        { ok: true, deleted: `connection ${server} of ${user}` },
        () => `deleted connection ${server} of ${user} in ${tenant}\n`,
      );
    }
    case 'tenants get':
    case 'users get': {
      const got = await ctx.client.request<Json>('GET', user ? userPath(tenant, user) : tenantPath(tenant));
      return print(ctx, got.body, () => describe(got.body));
    }
    case 'tenants put':
      return putCommand(ctx, 'tenant', tenantPath(tenant));
    case 'users put':
      return putCommand(ctx, 'user', userPath(tenant, user));
    case 'tenants rm':
      return deleteCommand(ctx, `tenant ${tenant}`, tenantPath(tenant));
    case 'users rm':
      return deleteCommand(ctx, `user ${user} of ${tenant}`, userPath(tenant, user));
    case 'users revoke': {
      const res = await ctx.client.request<Json>('POST', `${userPath(tenant, user)}/revoke`);
      return print(
        ctx,
        res.body,
        () => `revoked ${user}: suspended, ${String(res.body.ended_sessions)} session(s) ended\n`,
      );
    }
  }
}

/** What to do about a refusal, for this command as it was called (undefined: nothing to add). */
function hintFor(err: ApiError, command: string, args: string[], values: Values): string | undefined {
  const [tenant = '', user = ''] = args;
  const getCommand = user ? `users get ${tenant} ${user}` : `tenants get ${tenant}`;
  switch (err.code) {
    case 'unauthenticated':
      return 'check LKMCP_TOKEN (missing, expired, or from another issuer)';
    case 'forbidden':
      return 'the token needs the dispatch:admin scope and a tenant, or dispatch:superadmin';
    case 'version_conflict':
      // With --if-match the same command fails again: the version it insists on is gone.
      return values['if-match'] !== undefined
        ? `the record is no longer at version ${values['if-match']}: read the current version (${getCommand}), check it, then pass that to --if-match (or leave --if-match out)`
        : 'the record changed between reading and writing it; run the command again (it reads the current version)';
    case 'already_exists':
      return 'it exists; leave out --create to update it';
    case 'tenant_has_users':
      return 'delete the users first, or add --cascade';
    case 'tenant_not_found':
      return command === 'tenants put' ? undefined : `no tenant ${tenant} (tenants list shows them)`;
    case 'user_not_found':
      return `no user ${user} in ${tenant} (users list ${tenant} shows them)`;
    case 'unsafe_mcp_url':
      return 'MCP URLs are resolved and checked when written: https, port 443 (or MCP_ALLOWED_PORTS), a host that resolves to public addresses only; locally ALLOW_INSECURE_MCP_URLS=true also allows http://localhost and loopback';
    default:
      return undefined;
  }
}

function reportApiError(err: ApiError, io: CliIo, hint: string | undefined): void {
  io.stderr(`error: ${err.detail} (${err.code}, HTTP ${err.status})\n`);
  for (const e of err.errors) io.stderr(`  - ${e.path === '' ? '(body)' : e.path}: ${e.message}\n`);
  if (err.fields.length > 0) io.stderr(`  fields: ${err.fields.join(', ')}\n`);
  if (hint !== undefined) io.stderr(`  hint: ${hint}\n`);
  if (err.retryAfter !== undefined) io.stderr(`  retry after ${err.retryAfter} s\n`);
}

/**
 * Runs the admin CLI with `argv` (without `node` and the script) and returns the exit code.
 * Never throws: API errors, unreachable servers and usage mistakes are reported on stderr.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr(`error: ${parseError(err).message}\n(livekit-mcp-dispatch --help for usage)\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.stdout : io.stderr)(USAGE);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const two = positionals.slice(0, 2).join(' ');
  const command = COMMANDS[two] ? two : positionals[0]!;
  const spec = COMMANDS[command];
  const args = positionals.slice(command.split(' ').length);
  try {
    if (spec === undefined) throw new UsageError(`unknown command: ${positionals.slice(0, 2).join(' ')}`);
    if (args.length !== spec.args.length) {
      throw new UsageError(`${command} takes ${spec.args.map((a) => `<${a}>`).join(' ') || 'no arguments'}`);
    }
    if (args.some((a) => a === '')) throw new UsageError('ids must not be empty');
    const allowed = new Set([...GLOBAL, ...spec.options]);
    const extra = Object.keys(values).filter((k) => !allowed.has(k));
    if (extra.length > 0) throw new UsageError(`${command} does not take --${extra.join(', --')}`);
    const token = io.env.LKMCP_TOKEN?.trim();
    if (!token)
      throw new UsageError('LKMCP_TOKEN is not set (an admin bearer JWT; locally: npm run dev:token)');
    const baseUrl = values.url ?? io.env.LKMCP_URL ?? DEFAULT_URL;
    try {
      new URL(baseUrl);
    } catch {
      throw new UsageError(`not a URL: ${baseUrl}`);
    }
    const client = new AdminClient({ baseUrl, token, ...(io.fetch ? { fetch: io.fetch } : {}) });
    await dispatch(command, args, { client, token, values, json: values.json ?? false, io });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n(livekit-mcp-dispatch --help for usage)\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      reportApiError(err, io, spec === undefined ? undefined : hintFor(err, command, args, values));
      return EXIT.api;
    }
    if (err instanceof UnreachableError) {
      io.stderr(`error: ${err.message}; is the server running (npm start) and LKMCP_URL right?\n`);
      return EXIT.api;
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.api;
  }
}

/** The process's streams and environment. */
export function processIo(): CliIo {
  return {
    env: process.env,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** Entry point of the `livekit-mcp-dispatch` bin. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCli(argv, processIo());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
