import { type Context, Hono } from 'hono';
import {
  array,
  boolean,
  enum as enumOf,
  type infer as Infer,
  int,
  maximum,
  maxLength,
  minimum,
  minLength,
  nullable,
  optional,
  record,
  regex,
  strictObject,
  string,
} from 'zod/mini';
import type { JwtVerifier } from '../adapters/auth.js';
import type { LiveKitGateway } from '../adapters/livekit.js';
import { keys } from '../adapters/schema.js';
import type { DynamoStore, PageRequest } from '../adapters/store.js';
import type { Config } from '../core/config.js';
import { createCursorCodec } from '../core/cursor.js';
import { holderOf } from '../core/dispatcher.js';
import { ConditionFailedError, DomainError, ValidationError } from '../core/errors.js';
import { addLogContext, type Log, silentLog } from '../core/log.js';
import type {
  AuditRecord,
  SessionRecord,
  Status,
  StoredMcp,
  TenantRecord,
  UserRecord,
} from '../core/model.js';
import { mcpHeadersProblems, originOf } from '../core/resolve.js';
import type { SecretBox } from '../core/sealing.js';
import { checkMcpUrl, type HostResolver, MAX_MCP_URL_LENGTH } from '../core/url-guard.js';
import { bodyLimitProblem, DEFAULT_BODY_LIMIT } from '../http/body-limit.js';
import { withProblemHandling } from '../http/problem.js';
import { requestContext } from '../http/request-context.js';
import { type FieldError, readJson, validate } from '../http/validate.js';
import openApiDocument from '../openapi/openapi.json' with { type: 'json' };

/** Scope of a tenant admin (with the tenant claim naming the tenant). */
export const ADMIN_SCOPE = 'dispatch:admin';
/** Scope of an operator who administers every tenant. */
export const SUPERADMIN_SCOPE = 'dispatch:superadmin';

/** Tenant fields only a superadmin may set (CONTRACT §6). */
export const SUPERADMIN_FIELDS = [
  'agent_names',
  'max_concurrent_sessions',
  'status',
  'webhook_dispatch',
  'sip_trunk_ids',
] as const;

/** The store operations the admin API uses (a {@link DynamoStore} in production and tests). */
export type AdminStore = Pick<
  DynamoStore,
  | 'getTenant'
  | 'createTenant'
  | 'updateTenant'
  | 'deleteTenant'
  | 'listTenants'
  | 'getUser'
  | 'createUser'
  | 'updateUser'
  | 'deleteUser'
  | 'listUsers'
  | 'hasUsers'
  | 'listSessions'
  | 'activeSessionsOfUser'
  | 'activeSessionsOfTenant'
  | 'endSession'
  | 'releaseLease'
  | 'getClaim'
  | 'releaseClaim'
  | 'putAudit'
  | 'getAudit'
  | 'listAudit'
>;

/** What {@link createAdminApp} is composed from. */
export interface AdminAppDeps {
  store: AdminStore;
  /** Seals tokens and headers at rest; makes their display fingerprints. */
  secretBox: SecretBox;
  /** Verifies the bearer JWT (same issuer as app users). */
  verifier: JwtVerifier;
  /** Deletes the rooms of sessions ended by revoke, suspension or deletion. */
  livekit: Pick<LiveKitGateway, 'deleteRoom'>;
  /** `storageKeys` also keys the list cursors (HKDF-derived, never the AES key itself). */
  config: Pick<Config, 'mcpAllowedPorts' | 'allowInsecureMcpUrls' | 'storageKeys'>;
  /** Resolves MCP URL hosts for the URL guard: `dns.lookup(host, { all: true })` in production. */
  resolveHost: HostResolver;
  clock?: () => Date;
  log?: Log;
  /** How long one `?cascade=true` delete works before answering 202 (repeat to continue); default 20 s. */
  cascadeBudgetMs?: number;
}

interface Actor {
  sub: string;
  superadmin: boolean;
  /** The tenant a tenant admin administers; unset for a superadmin without the claim. */
  tenantId: string | undefined;
}

type Env = { Variables: { actor: Actor } };

const TENANT_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;
/** How old a write must be before its missing audit entry counts as lost (ms). */
const AUDIT_REPAIR_GRACE_MS = 60_000;
/** Users deleted per page of a cascading tenant delete. */
const CASCADE_PAGE = 25;
// 1–255 printable characters: no control characters and no lone surrogates.
const USER_ID = /^[^\p{Cc}\p{Cs}]+$/u;
const MAX_USER_ID = 255;

const bounded = (min: number, max: number) => string().check(minLength(min), maxLength(max));
const printable = (max: number) =>
  string().check(minLength(1), maxLength(max), regex(/^[^\p{Cc}]+$/u, 'must not contain control characters'));

const transportSchema = enumOf(['streamable_http', 'sse']);
const statusSchema = enumOf(['active', 'suspended']);

const mcpFields = {
  // The URL guard does the real check; the schema only bounds the size.
  token: optional(
    nullable(
      string().check(
        minLength(1),
        maxLength(4096),
        regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
      ),
    ),
  ),
  headers: optional(nullable(record(bounded(1, 128), string().check(maxLength(4096))))),
  transport: optional(transportSchema),
  allowed_tools: optional(
    array(string().check(regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 characters [A-Za-z0-9_.-]'))).check(
      maxLength(200),
    ),
  ),
  name: optional(string().check(regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters [A-Za-z0-9_-]'))),
};

const tenantMcpSchema = strictObject({ url: bounded(1, MAX_MCP_URL_LENGTH), ...mcpFields });
/** A user's MCP settings may leave out `url` to use the tenant's server with the user's own token. */
const userMcpSchema = strictObject({ url: optional(bounded(1, MAX_MCP_URL_LENGTH)), ...mcpFields });

/** Body of `PUT /v1/admin/tenants/{tenantId}` (also the OpenAPI request schema). */
export const tenantBodySchema = strictObject({
  name: printable(200),
  mcp: optional(nullable(tenantMcpSchema)),
  dispatch_policy: optional(enumOf(['per_room', 'per_participant'])),
  agent_names: optional(
    array(
      string().check(regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be 1-128 characters [A-Za-z0-9_.-]')),
    ).check(maxLength(32)),
  ),
  max_concurrent_sessions: optional(nullable(int().check(minimum(1), maximum(100_000)))),
  status: optional(statusSchema),
  webhook_dispatch: optional(boolean()),
  sip_trunk_ids: optional(
    array(string().check(regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1-128 characters [A-Za-z0-9_-]'))).check(
      maxLength(64),
    ),
  ),
});

/** Body of `PUT /v1/admin/tenants/{tenantId}/users/{userId}` (also the OpenAPI request schema). */
export const userBodySchema = strictObject({
  display_name: optional(nullable(printable(200))),
  phone_numbers: optional(
    array(string().check(regex(/^\+[1-9][0-9]{1,14}$/, 'must be an E.164 number (+ and 2-15 digits)'))).check(
      maxLength(10),
    ),
  ),
  mcp: optional(nullable(userMcpSchema)),
  status: optional(statusSchema),
});

/** Query of the admin list routes (also the OpenAPI parameters). */
export const listQuerySchema = strictObject({
  limit: optional(string().check(regex(/^(100|[1-9][0-9]?)$/, 'must be an integer from 1 to 100'))),
  cursor: optional(bounded(1, 2048)),
});

type McpInput = Infer<typeof userMcpSchema>;

/** Why a precondition failed or is missing. */
type Precondition =
  | { kind: 'none' }
  | { kind: 'create' }
  | { kind: 'match'; any: boolean; versions: number[] };

function notFound(code: 'tenant_not_found' | 'user_not_found'): DomainError {
  return new DomainError(code, code === 'tenant_not_found' ? 'No such tenant.' : 'No such user.');
}

function fieldErrors(message: string, errors: FieldError[]): ValidationError {
  return new ValidationError(message, { details: { errors } });
}

function preconditionOf(c: Context): Precondition {
  const ifMatch = c.req.header('if-match');
  const ifNoneMatch = c.req.header('if-none-match');
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw fieldErrors('Send If-Match or If-None-Match, not both.', [
      { path: 'header.if-none-match', message: 'not allowed together with If-Match' },
    ]);
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      throw fieldErrors('If-None-Match must be *.', [{ path: 'header.if-none-match', message: 'must be *' }]);
    }
    return { kind: 'create' };
  }
  if (ifMatch === undefined) return { kind: 'none' };
  if (ifMatch.trim() === '*') return { kind: 'match', any: true, versions: [] };
  // Strong comparison (RFC 9110 §13.1.1): weak or malformed tags never match.
  const versions = ifMatch
    .split(',')
    .map((t) => /^"([0-9]{1,15})"$/.exec(t.trim())?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  return { kind: 'match', any: false, versions };
}

/**
 * The version an update must hold, or `'create'`. Throws 412 `version_conflict` on a stale or
 * missing record, 412 `already_exists` on create-only over an existing one, and 428
 * `precondition_required` for an update that names no version.
 */
function expectedVersion(pre: Precondition, existing: { version: number } | undefined): number | 'create' {
  if (pre.kind === 'create') {
    if (existing !== undefined)
      throw new ConditionFailedError('The resource exists.', { code: 'already_exists' });
    return 'create';
  }
  if (pre.kind === 'none') {
    if (existing !== undefined) {
      throw new DomainError(
        'precondition_required',
        'Updates need If-Match: "<version>" (from the ETag), or If-None-Match: * to create only.',
      );
    }
    return 'create';
  }
  if (existing === undefined || (!pre.any && !pre.versions.includes(existing.version))) {
    throw new ConditionFailedError('The resource changed or does not exist; read it again.', {
      code: 'version_conflict',
    });
  }
  return existing.version;
}

/** DELETE: If-Match is optional; when given it must match. */
function deleteVersion(pre: Precondition, existing: { version: number }): number | undefined {
  if (pre.kind === 'none') return undefined;
  if (pre.kind === 'create')
    throw new ConditionFailedError('The resource exists.', { code: 'already_exists' });
  return expectedVersion(pre, existing) as number;
}

function etag(version: number): string {
  return `"${version}"`;
}

function mcpView(m: StoredMcp | undefined) {
  if (m === undefined) return null;
  return {
    url: m.url ?? null,
    transport: m.transport ?? null,
    allowed_tools: m.allowed_tools ?? null,
    name: m.name ?? null,
    token_set: m.token_sealed !== undefined,
    token_fingerprint: m.token_fingerprint ?? null,
    header_names: m.header_names ?? [],
  };
}

function tenantView(t: TenantRecord) {
  return {
    tenant_id: t.tenant_id,
    name: t.name,
    mcp: mcpView(t.mcp),
    dispatch_policy: t.dispatch_policy,
    agent_names: t.agent_names,
    max_concurrent_sessions: t.max_concurrent_sessions ?? null,
    status: t.status,
    webhook_dispatch: t.webhook_dispatch,
    sip_trunk_ids: t.sip_trunk_ids,
    version: t.version,
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

function userView(u: UserRecord) {
  return {
    tenant_id: u.tenant_id,
    user_id: u.user_id,
    display_name: u.display_name ?? null,
    phone_numbers: u.phone_numbers,
    mcp: mcpView(u.mcp),
    status: u.status,
    version: u.version,
    created_at: u.created_at,
    updated_at: u.updated_at,
  };
}

function sessionView(s: SessionRecord) {
  return {
    room_name: s.room_name,
    user_id: s.user_id,
    participant_identity: s.participant_identity,
    agent_name: s.agent_name,
    dispatch_id: s.dispatch_id,
    mode: s.mode,
    origin: s.origin,
    status: s.status,
    created_at: s.created_at,
    ended_at: s.ended_at ?? null,
    duration_seconds: s.duration_seconds ?? null,
  };
}

function auditView(a: AuditRecord) {
  return {
    target: a.target.split('#')[0],
    version: a.version,
    action: a.action,
    actor: a.actor,
    changed_fields: a.changed_fields,
    old_token_fingerprint: a.old_token_fingerprint ?? null,
    new_token_fingerprint: a.new_token_fingerprint ?? null,
    at: a.at,
  };
}

function tenantPath(tenantId: string): string {
  return `tenants/${tenantId}`;
}

function userPath(tenantId: string, userId: string): string {
  return `tenants/${tenantId}/users/${encodeURIComponent(userId)}`;
}

/**
 * Audit target of one incarnation of a record: its path plus its creation time, so a record
 * deleted and created again starts a new version series instead of colliding with the old one.
 */
function auditTarget(path: string, createdAt: string): string {
  return `${path}#${createdAt}`;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function changedMcpFields(
  before: StoredMcp | undefined,
  after: StoredMcp | undefined,
  headersGiven: boolean,
) {
  const out: string[] = [];
  for (const f of ['url', 'transport', 'allowed_tools', 'name'] as const) {
    if (!same(before?.[f], after?.[f])) out.push(`mcp.${f}`);
  }
  if (
    before?.token_fingerprint !== after?.token_fingerprint ||
    (before?.token_sealed === undefined) !== (after?.token_sealed === undefined)
  ) {
    out.push('mcp.token');
  }
  if (
    headersGiven ||
    !same(before?.header_names, after?.header_names) ||
    (before?.headers_sealed === undefined) !== (after?.headers_sealed === undefined)
  ) {
    out.push('mcp.headers');
  }
  return out;
}

function changedFields<T extends object>(
  before: T | undefined,
  after: T,
  fields: readonly (keyof T & string)[],
  headersGiven: boolean,
): string[] {
  const out: string[] = [];
  for (const f of fields) if (!same(before?.[f], after[f])) out.push(f);
  const mcpBefore = (before as { mcp?: StoredMcp } | undefined)?.mcp;
  const mcpAfter = (after as { mcp?: StoredMcp }).mcp;
  out.push(...changedMcpFields(mcpBefore, mcpAfter, headersGiven));
  return out;
}

/**
 * Creates the admin API (CONTRACT §6) with absolute paths under `/v1/admin/`.
 *
 * Authorisation: `dispatch:superadmin` reaches every tenant; `dispatch:admin` with the tenant
 * claim reaches that tenant only, and any other tenant's path answers exactly like a missing
 * tenant (404, nothing read or written beyond the check). Only a superadmin creates tenants or
 * lists them. Secrets are write-only: responses carry `token_set`, `token_fingerprint` and
 * `header_names`, never values.
 */
export function createAdminApp(deps: AdminAppDeps): Hono<Env> {
  const { store, secretBox, verifier, livekit, config } = deps;
  const clock = deps.clock ?? (() => new Date());
  const log = deps.log ?? silentLog;
  const cursors = createCursorCodec(config.storageKeys);
  const cascadeBudgetMs = deps.cascadeBudgetMs ?? 20_000;
  const guardOptions = {
    allowedPorts: config.mcpAllowedPorts,
    allowInsecure: config.allowInsecureMcpUrls,
    resolve: deps.resolveHost,
  };

  const app = new Hono<Env>();
  // withProblemHandling only installs onError/notFound, which do not depend on the Env type.
  withProblemHandling(app as unknown as Hono, (message, meta) => log.error(message, meta));

  // Public: the document describes the API, not any tenant. In AWS, GET /openapi.json routes here.
  app.get('/openapi.json', (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json(openApiDocument);
  });

  app.use('/v1/admin/*', requestContext());
  app.use('/v1/admin/*', bodyLimitProblem(DEFAULT_BODY_LIMIT));
  app.use('/v1/admin/*', async (c, next) => {
    const principal = await verifier.verify(c.req.header('authorization'));
    const superadmin = principal.scopes.has(SUPERADMIN_SCOPE);
    if (!superadmin && !(principal.scopes.has(ADMIN_SCOPE) && principal.tenantId !== undefined)) {
      throw new DomainError('forbidden', 'The token lacks the dispatch:admin scope or a tenant.');
    }
    c.set('actor', { sub: principal.sub, superadmin, tenantId: principal.tenantId });
    await next();
    c.header('cache-control', 'no-store');
  });

  /** 404 for a tenant the caller may not see, exactly as for one that does not exist. */
  function tenantAccess(
    c: Context<Env>,
    options: { creating?: boolean } = {},
  ): { actor: Actor; tenantId: string } {
    const actor = c.get('actor');
    const tenantId = c.req.param('tenantId') ?? '';
    if (!actor.superadmin && actor.tenantId !== tenantId) throw notFound('tenant_not_found');
    addLogContext({ tenant_id: tenantId });
    if (!TENANT_ID.test(tenantId)) {
      // Only a superadmin creating a tenant learns why the id is refused.
      if (options.creating && actor.superadmin) {
        throw fieldErrors('The tenant id is invalid.', [
          { path: 'tenantId', message: 'must match [a-z0-9][a-z0-9-]{1,62}' },
        ]);
      }
      throw notFound('tenant_not_found');
    }
    return { actor, tenantId };
  }

  function userIdOf(c: Context<Env>): string {
    const userId = c.req.param('userId') ?? '';
    if ([...userId].length > MAX_USER_ID || !USER_ID.test(userId)) throw notFound('user_not_found');
    return userId;
  }

  async function sameTenantUser(tenantId: string, userId: string): Promise<UserRecord | undefined> {
    const user = await store.getUser(userId);
    return user?.tenant_id === tenantId ? user : undefined;
  }

  function pageOf(c: Context<Env>, scope: string): PageRequest {
    const q = validate(listQuerySchema, c.req.query(), 'query');
    return {
      limit: q.limit === undefined ? 50 : Number(q.limit),
      cursor: q.cursor === undefined ? undefined : cursors.decode(scope, q.cursor),
    };
  }

  function nextCursor(scope: string, position: Record<string, unknown> | undefined): string | null {
    return position === undefined ? null : cursors.encode(scope, position);
  }

  /**
   * Builds the stored MCP settings from a PUT's `mcp`. Omitted `token`/`headers` keep the stored
   * ones, `null` clears them. Secrets are bound to the origin they are set for: kept secrets may
   * not follow this record's URL to another origin (422: send them again, or null).
   */
  async function storedMcp(
    input: McpInput | null | undefined,
    old: StoredMcp | undefined,
    binding: { tenantId: string; userId: string },
    inheritedUrl: string | undefined,
  ): Promise<StoredMcp | undefined> {
    if (input === undefined || input === null) return undefined;
    const errors: FieldError[] = [];
    const url = input.url === undefined ? undefined : await checkMcpUrl(input.url, guardOptions);
    const origin = originOf(url ?? inheritedUrl);
    const out: StoredMcp = {};
    if (url !== undefined) out.url = url;
    if (input.transport !== undefined) out.transport = input.transport;
    if (input.allowed_tools !== undefined) out.allowed_tools = [...new Set(input.allowed_tools)];
    if (input.name !== undefined) out.name = input.name;

    const headers =
      input.headers === null || (input.headers && Object.keys(input.headers).length === 0)
        ? null
        : input.headers;
    if (headers) {
      for (const p of mcpHeadersProblems(headers)) {
        errors.push({ path: p.name === '' ? 'mcp.headers' : `mcp.headers.${p.name}`, message: p.message });
      }
    }
    const newSecret =
      (input.token !== undefined && input.token !== null) || (headers !== undefined && headers !== null);
    const keepToken = input.token === undefined && old?.token_sealed !== undefined;
    const keepHeaders = headers === undefined && old?.headers_sealed !== undefined;
    // A kept secret may stay only where it was set: same origin, or this record names no URL of its own.
    const mustMatch = url !== undefined || newSecret;
    const mismatch = old?.credentials_origin === undefined || old.credentials_origin !== origin;
    if (keepToken && mustMatch && mismatch) {
      errors.push({
        path: 'mcp.token',
        message: 'must be sent again (or null) when the token would go to another origin',
      });
    }
    if (keepHeaders && mustMatch && mismatch) {
      errors.push({
        path: 'mcp.headers',
        message: 'must be sent again (or null) when the headers would go to another origin',
      });
    }
    if (newSecret && origin === undefined) {
      errors.push({
        path: 'mcp.url',
        message: 'is required here or on the tenant to set a token or headers',
      });
    }
    if (errors.length > 0) throw fieldErrors('The MCP settings are invalid.', errors);

    if (input.token !== undefined && input.token !== null) {
      out.token_sealed = await secretBox.seal(input.token, { ...binding, field: 'token' });
      out.token_fingerprint = secretBox.fingerprint(input.token);
    } else if (keepToken) {
      out.token_sealed = old!.token_sealed;
      if (old!.token_fingerprint !== undefined) out.token_fingerprint = old!.token_fingerprint;
    }
    if (headers) {
      out.headers_sealed = await secretBox.seal(JSON.stringify(headers), { ...binding, field: 'headers' });
      out.header_names = Object.keys(headers).sort();
    } else if (keepHeaders) {
      out.headers_sealed = old!.headers_sealed;
      out.header_names = old!.header_names ?? [];
    }
    if (out.token_sealed !== undefined || out.headers_sealed !== undefined) {
      out.credentials_origin = newSecret ? origin : old?.credentials_origin;
    }
    return out;
  }

  /** Writes the audit record of one write; retried, and a lost one is logged (the gap shows). */
  async function audit(entry: AuditRecord): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await store.putAudit(entry);
        return;
      } catch (err) {
        if (attempt === 3) {
          log.error('audit write failed', {
            target: entry.target,
            version: entry.version,
            error: (err as Error).name,
          });
        }
      }
    }
  }

  /**
   * Repairs a gap left by a write whose audit step was lost: the record's current version gets
   * an audit entry saying a write happened, by an unknown actor. A write younger than the grace
   * period may still be writing its own entry (which would then lose to the repair), so it is left.
   */
  async function repairAuditGap(
    tenantId: string,
    target: string,
    current: { version: number; updated_at: string },
  ) {
    if (clock().getTime() - Date.parse(current.updated_at) < AUDIT_REPAIR_GRACE_MS) return;
    if ((await store.getAudit(target, current.version)) !== undefined) return;
    log.warn('audit gap repaired', { target, version: current.version });
    await audit({
      tenant_id: tenantId,
      target,
      version: current.version,
      actor: 'unknown',
      action: current.version === 1 ? 'create' : 'update',
      changed_fields: ['unknown'],
      at: current.updated_at,
    });
  }

  /** Deletes the LiveKit rooms of these sessions, then ends the sessions; returns how many ended. */
  async function endSessions(sessions: SessionRecord[]): Promise<number> {
    const active = sessions.filter((s) => s.status === 'active');
    for (const room of new Set(active.map((s) => s.room_name))) await livekit.deleteRoom(room);
    let ended = 0;
    const at = clock();
    for (const s of active) {
      if ((await store.endSession(s, at)) === undefined) continue;
      ended += 1;
      // Release what room_finished would have: that event now finds the sessions ended and
      // leaves them alone, so without this the tenant's lease stays taken until it expires.
      if (s.lease_slot !== undefined) {
        await store.releaseLease(
          s.tenant_id,
          s.lease_slot,
          holderOf(s.room_name, s.agent_name, s.participant_identity),
        );
      }
      const claimRoom = s.room_sid ?? s.room_name;
      for (const key of [
        keys.dispatchClaim(claimRoom, s.agent_name),
        keys.dispatchClaim(claimRoom, s.agent_name, s.participant_identity),
      ]) {
        const claim = await store.getClaim(key);
        if (claim !== undefined) await store.releaseClaim(key, claim.owner);
      }
    }
    return ended;
  }

  async function endTenantSessions(tenantId: string): Promise<number> {
    return endSessions(await store.activeSessionsOfTenant(tenantId));
  }

  // Tenants

  app.get('/v1/admin/tenants', async (c) => {
    if (!c.get('actor').superadmin) throw new DomainError('forbidden', 'Only a superadmin lists tenants.');
    const scope = 'tenants';
    const page = await store.listTenants(pageOf(c, scope));
    return c.json({ items: page.items.map(tenantView), next_cursor: nextCursor(scope, page.cursor) });
  });

  app.get('/v1/admin/tenants/:tenantId', async (c) => {
    const { tenantId } = tenantAccess(c);
    const tenant = await store.getTenant(tenantId);
    if (tenant === undefined) throw notFound('tenant_not_found');
    c.header('etag', etag(tenant.version));
    return c.json(tenantView(tenant));
  });

  app.put('/v1/admin/tenants/:tenantId', async (c) => {
    const { actor, tenantId } = tenantAccess(c, { creating: true });
    const pre = preconditionOf(c);
    const raw = (await readJson(c)) as Record<string, unknown>;
    const restricted = SUPERADMIN_FIELDS.filter((f) => Object.hasOwn(raw, f));
    if (!actor.superadmin && restricted.length > 0) {
      throw new DomainError(
        'field_requires_superadmin',
        `Only a superadmin may set ${restricted.join(', ')}.`,
        {
          details: { fields: restricted },
        },
      );
    }
    const body = validate(tenantBodySchema, raw);
    const existing = await store.getTenant(tenantId);
    // Tenants are provisioned by a superadmin; a tenant admin cannot (re)create its tenant.
    if (existing === undefined && !actor.superadmin) throw notFound('tenant_not_found');
    const expected = expectedVersion(pre, existing);
    const now = clock().toISOString();
    const target = auditTarget(tenantPath(tenantId), existing?.created_at ?? now);
    if (existing !== undefined) await repairAuditGap(tenantId, target, existing);

    const mcp = await storedMcp(body.mcp, existing?.mcp, { tenantId, userId: '' }, undefined);
    const keep = <K extends (typeof SUPERADMIN_FIELDS)[number]>(field: K, fallback: TenantRecord[K]) =>
      actor.superadmin ? fallback : (existing as TenantRecord)[field];
    const record: TenantRecord = {
      tenant_id: tenantId,
      name: body.name,
      dispatch_policy: body.dispatch_policy ?? 'per_room',
      agent_names: keep('agent_names', [...new Set(body.agent_names ?? [])]),
      // An omitted status keeps the current one: lifting a suspension is always explicit.
      status: keep('status', body.status ?? existing?.status ?? 'active'),
      webhook_dispatch: keep('webhook_dispatch', body.webhook_dispatch ?? false),
      sip_trunk_ids: keep('sip_trunk_ids', [...new Set(body.sip_trunk_ids ?? [])]),
      version: existing?.version ?? 0,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    const max = keep('max_concurrent_sessions', body.max_concurrent_sessions ?? undefined);
    if (max !== undefined) record.max_concurrent_sessions = max;
    if (mcp !== undefined) record.mcp = mcp;

    const stored =
      expected === 'create'
        ? await createOrRequirePrecondition(() => store.createTenant(record), pre)
        : await store.updateTenant(record, expected);
    await audit({
      tenant_id: tenantId,
      target,
      version: stored.version,
      actor: actor.sub,
      action: existing === undefined ? 'create' : 'update',
      changed_fields: changedFields(
        existing,
        stored,
        ['name', 'dispatch_policy', ...SUPERADMIN_FIELDS],
        body.mcp?.headers !== undefined,
      ),
      ...tokenFingerprints(existing?.mcp, stored.mcp),
      at: now,
    });
    log.info('tenant written', { tenant_id: tenantId, version: stored.version });
    // Every write that leaves the tenant suspended ends what is still live, so repeating a
    // write whose LiveKit step failed finishes the job.
    const endedSessions = stored.status === 'suspended' ? await endTenantSessions(tenantId) : 0;
    c.header('etag', etag(stored.version));
    if (existing === undefined) c.header('location', `/v1/admin/${tenantPath(tenantId)}`);
    return c.json(
      { ...tenantView(stored), ...(endedSessions > 0 ? { ended_sessions: endedSessions } : {}) },
      existing === undefined ? 201 : 200,
    );
  });

  app.delete('/v1/admin/tenants/:tenantId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const pre = preconditionOf(c);
    const cascade = c.req.query('cascade') === 'true';
    const existing = await store.getTenant(tenantId);
    if (existing === undefined) throw notFound('tenant_not_found');
    const version = deleteVersion(pre, existing);
    const started = Date.now();

    const hasUsers = await store.hasUsers(tenantId);
    if (hasUsers && !cascade) {
      throw new DomainError('tenant_has_users', 'The tenant has users; delete them or use ?cascade=true.');
    }
    await endTenantSessions(tenantId);
    if (hasUsers) {
      // In pages, each user deleted and audited on its own: an interrupted cascade resumes
      // where it stopped when the request is repeated.
      let deleted = 0;
      let pages = 0;
      while (await store.hasUsers(tenantId)) {
        // Every request makes progress (one page at least) before the budget may stop it.
        if (pages > 0 && Date.now() - started > cascadeBudgetMs) {
          return c.json(
            { status: 'in_progress', deleted_users: deleted, detail: 'Repeat the request to continue.' },
            202,
          );
        }
        // Always the first page: the users of the previous page are gone.
        const page = await store.listUsers(tenantId, { limit: CASCADE_PAGE });
        pages += 1;
        for (const user of page.items) {
          if (await deleteUserAndAudit(actor, tenantId, user)) deleted += 1;
        }
      }
    }
    const old = await store.deleteTenant(tenantId, version);
    if (old !== undefined) {
      await audit({
        tenant_id: tenantId,
        target: auditTarget(tenantPath(tenantId), old.created_at),
        version: old.version + 1,
        actor: actor.sub,
        action: 'delete',
        changed_fields: [],
        ...tokenFingerprints(old.mcp, undefined),
        at: clock().toISOString(),
      });
      log.info('tenant deleted', { tenant_id: tenantId });
    }
    return c.body(null, 204);
  });

  async function deleteUserAndAudit(actor: Actor, tenantId: string, user: UserRecord, version?: number) {
    await endSessions(await store.activeSessionsOfUser(tenantId, user.user_id));
    const old = await store.deleteUser(tenantId, user.user_id, version);
    if (old === undefined) return false;
    await audit({
      tenant_id: tenantId,
      target: auditTarget(userPath(tenantId, old.user_id), old.created_at),
      version: old.version + 1,
      actor: actor.sub,
      action: 'delete',
      changed_fields: [],
      ...tokenFingerprints(old.mcp, undefined),
      at: clock().toISOString(),
    });
    return true;
  }

  /** Create when the caller named no version; if another writer created it first, the caller needs a precondition. */
  async function createOrRequirePrecondition<T>(create: () => Promise<T>, pre: Precondition): Promise<T> {
    try {
      return await create();
    } catch (err) {
      if (pre.kind === 'none' && err instanceof ConditionFailedError && err.code === 'already_exists') {
        expectedVersion(pre, { version: 0 });
      }
      throw err;
    }
  }

  function tokenFingerprints(before: StoredMcp | undefined, after: StoredMcp | undefined) {
    const out: { old_token_fingerprint?: string; new_token_fingerprint?: string } = {};
    if (before?.token_fingerprint !== undefined) out.old_token_fingerprint = before.token_fingerprint;
    if (after?.token_fingerprint !== undefined) out.new_token_fingerprint = after.token_fingerprint;
    return out;
  }

  // Users

  app.get('/v1/admin/tenants/:tenantId/users', async (c) => {
    const { tenantId } = tenantAccess(c);
    const scope = `users:${tenantId}`;
    const page = await store.listUsers(tenantId, pageOf(c, scope));
    return c.json({ items: page.items.map(userView), next_cursor: nextCursor(scope, page.cursor) });
  });

  app.get('/v1/admin/tenants/:tenantId/users/:userId', async (c) => {
    const { tenantId } = tenantAccess(c);
    const user = await sameTenantUser(tenantId, userIdOf(c));
    if (user === undefined) throw notFound('user_not_found');
    c.header('etag', etag(user.version));
    return c.json(userView(user));
  });

  app.put('/v1/admin/tenants/:tenantId/users/:userId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const userId = c.req.param('userId');
    if ([...userId].length > MAX_USER_ID || !USER_ID.test(userId)) {
      throw fieldErrors('The user id is invalid.', [
        { path: 'userId', message: `must be 1-${MAX_USER_ID} printable characters` },
      ]);
    }
    const pre = preconditionOf(c);
    const body = validate(userBodySchema, await readJson(c));
    const tenant = await store.getTenant(tenantId);
    if (tenant === undefined) throw notFound('tenant_not_found');
    // A user of another tenant is treated as absent here: nothing of it is read or revealed.
    const existing = await sameTenantUser(tenantId, userId);
    const expected = expectedVersion(pre, existing);
    const now = clock().toISOString();
    const target = auditTarget(userPath(tenantId, userId), existing?.created_at ?? now);
    if (existing !== undefined) await repairAuditGap(tenantId, target, existing);

    const mcp = await storedMcp(body.mcp, existing?.mcp, { tenantId, userId }, tenant.mcp?.url);
    const record: UserRecord = {
      tenant_id: tenantId,
      user_id: userId,
      phone_numbers: [...new Set(body.phone_numbers ?? [])],
      // An omitted status keeps the current one: lifting a suspension (revoke) is always explicit.
      status: body.status ?? existing?.status ?? 'active',
      version: existing?.version ?? 0,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    if (body.display_name !== undefined && body.display_name !== null)
      record.display_name = body.display_name;
    if (mcp !== undefined) record.mcp = mcp;

    const stored =
      expected === 'create'
        ? await createOrRequirePrecondition(() => store.createUser(record), pre)
        : await store.updateUser(record, expected);
    await audit({
      tenant_id: tenantId,
      target,
      version: stored.version,
      actor: actor.sub,
      action: existing === undefined ? 'create' : 'update',
      changed_fields: changedFields(
        existing,
        stored,
        ['display_name', 'phone_numbers', 'status'],
        body.mcp?.headers !== undefined,
      ),
      ...tokenFingerprints(existing?.mcp, stored.mcp),
      at: now,
    });
    log.info('user written', { tenant_id: tenantId, version: stored.version });
    const endedSessions =
      stored.status === 'suspended'
        ? await endSessions(await store.activeSessionsOfUser(tenantId, userId))
        : 0;
    c.header('etag', etag(stored.version));
    if (existing === undefined) c.header('location', `/v1/admin/${userPath(tenantId, userId)}`);
    return c.json(
      { ...userView(stored), ...(endedSessions > 0 ? { ended_sessions: endedSessions } : {}) },
      existing === undefined ? 201 : 200,
    );
  });

  app.delete('/v1/admin/tenants/:tenantId/users/:userId', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const pre = preconditionOf(c);
    const user = await sameTenantUser(tenantId, userIdOf(c));
    if (user === undefined) throw notFound('user_not_found');
    const version = deleteVersion(pre, user);
    if (!(await deleteUserAndAudit(actor, tenantId, user, version))) throw notFound('user_not_found');
    return c.body(null, 204);
  });

  app.post('/v1/admin/tenants/:tenantId/users/:userId/revoke', async (c) => {
    const { actor, tenantId } = tenantAccess(c);
    const userId = userIdOf(c);
    // Suspend first, so no new session starts while the live ones are being ended.
    let stored: UserRecord | undefined;
    let before: UserRecord | undefined;
    for (let attempt = 0; stored === undefined; attempt++) {
      before = await sameTenantUser(tenantId, userId);
      if (before === undefined) throw notFound('user_not_found');
      const status: Status = 'suspended';
      try {
        stored = await store.updateUser(
          { ...before, status, updated_at: clock().toISOString() },
          before.version,
        );
      } catch (err) {
        if (!(err instanceof ConditionFailedError && err.code === 'version_conflict') || attempt >= 4)
          throw err;
      }
    }
    await audit({
      tenant_id: tenantId,
      target: auditTarget(userPath(tenantId, userId), stored.created_at),
      version: stored.version,
      actor: actor.sub,
      action: 'revoke',
      changed_fields: before?.status === 'suspended' ? [] : ['status'],
      at: stored.updated_at,
    });
    const ended = await endSessions(await store.activeSessionsOfUser(tenantId, userId));
    log.info('user revoked', { tenant_id: tenantId, ended_sessions: ended });
    c.header('etag', etag(stored.version));
    return c.json({ ...userView(stored), ended_sessions: ended });
  });

  // Audit and sessions

  app.get('/v1/admin/tenants/:tenantId/audit', async (c) => {
    const { tenantId } = tenantAccess(c);
    const scope = `audit:${tenantId}`;
    const page = await store.listAudit(tenantId, pageOf(c, scope));
    return c.json({ items: page.items.map(auditView), next_cursor: nextCursor(scope, page.cursor) });
  });

  app.get('/v1/admin/tenants/:tenantId/sessions', async (c) => {
    const { tenantId } = tenantAccess(c);
    const scope = `sessions:${tenantId}`;
    const page = await store.listSessions(tenantId, pageOf(c, scope));
    return c.json({ items: page.items.map(sessionView), next_cursor: nextCursor(scope, page.cursor) });
  });

  return app;
}
