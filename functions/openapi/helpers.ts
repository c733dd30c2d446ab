import { USER_ID_PATTERN } from '@livekit-mcp-dispatch/contract';
import { toJSONSchema, type ZodMiniType } from 'zod/mini';
import { listQuerySchema } from '../admin/app.js';
import { retryAfterFor, statusFor } from '../http/problem.js';

/**
 * The building blocks of the OpenAPI document (document.ts and its parts): JSON Schema from the
 * apps' zod/mini schemas, responses whose problem statuses come from the one code→status map,
 * and the admin API's shared parameters and problem sets.
 */

export type JsonSchema = Record<string, unknown>;

export function jsonSchema(schema: ZodMiniType, io: 'input' | 'output'): JsonSchema {
  // Refinements (byte limits, attribute counts) have no JSON Schema form: where the API enforces
  // one, session.ts's sessionRequestJsonSchema() states it in JSON Schema terms.
  const out = toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'string' } },
};
export const ETAG = {
  ETag: {
    description: 'The record version, `"<n>"`: send it back as `If-Match`.',
    schema: { type: 'string' },
  },
};

export function ok(description: string, schema: string, headers?: Record<string, unknown>) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema: ref(schema) } },
  };
}

/** The problem+json response of one status, whose `code` is one of `codes`. */
export function problemResponse(description: string, codes: string[], headers?: Record<string, unknown>) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: {
      'application/problem+json': {
        schema: { $ref: '#/components/schemas/Problem', properties: { code: { enum: codes } } },
      },
    },
  };
}

/** Problem codes an operation answers, each with when. */
export type Problems = Record<string, string>;

/**
 * The problem responses of an operation, keyed by the status each code has in the one
 * code→status map (`statusFor`, with the app's `overrides`); `Retry-After` where the code carries it.
 */
export function problems(codes: Problems, overrides: Readonly<Record<string, number>> = {}) {
  const byStatus = new Map<number, [string, string][]>();
  for (const [code, when] of Object.entries(codes)) {
    const status = statusFor(code, overrides);
    byStatus.set(status, [...(byStatus.get(status) ?? []), [code, when]]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, entries]) => [
      status,
      problemResponse(
        entries.map(([code, when]) => `\`${code}\`: ${when}`).join(' '),
        entries.map(([code]) => code),
        entries.some(([code]) => retryAfterFor(code, status) !== undefined) ? RETRY_AFTER : undefined,
      ),
    ]),
  );
}

export const unexpected = {
  description:
    'Unexpected failure: 500 `internal_error`, 503 `store_unavailable` (DynamoDB failed after retries; retry), ' +
    '502 `livekit_unavailable` where LiveKit is called.',
  content: { 'application/problem+json': { schema: ref('Problem') } },
};

export const adminAuth: Problems = {
  unauthenticated: 'No, bad or expired bearer token.',
  forbidden: 'The token has neither `dispatch:admin` (with a tenant) nor `dispatch:superadmin`.',
};
export const tenantNotFound: Problems = {
  tenant_not_found: "No such tenant, or another tenant's (same answer).",
};
export const userNotFound: Problems = {
  user_not_found: 'No such user in this tenant.',
  tenant_not_found: 'No such tenant (or another tenant’s).',
};

export const tenantId = {
  name: 'tenantId',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{1,62}$' },
};
export const userId = {
  name: 'userId',
  in: 'path',
  required: true,
  description:
    "The issuer's `sub` of the user (1-255 printable characters: no spaces or controls), URL-encoded. " +
    'The same id in another tenant is another user.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: USER_ID_PATTERN },
};
export const ifMatch = {
  name: 'If-Match',
  in: 'header',
  description:
    'The version to replace, `"<n>"` from the `ETag` (or `*`). A write to an existing record needs it; not together with `If-None-Match`.',
  schema: { type: 'string' },
};
export const ifNoneMatch = {
  name: 'If-None-Match',
  in: 'header',
  description: '`*`: create only, never replace.',
  schema: { type: 'string', enum: ['*'] },
};

export function queryParameter(schema: ZodMiniType, name: string, description: string) {
  const query = jsonSchema(schema, 'input') as { properties: Record<string, JsonSchema> };
  return { name, in: 'query', description, schema: query.properties[name] };
}

export function listParameters() {
  return [
    queryParameter(listQuerySchema, 'limit', 'Page size, 1-100 (default 50).'),
    queryParameter(
      listQuerySchema,
      'cursor',
      '`next_cursor` of the previous page (opaque, bound to this list and tenant).',
    ),
  ];
}

export function listOperation(summary: string, operationId: string, schema: string, withTenant: boolean) {
  return {
    get: {
      operationId,
      summary,
      tags: ['admin'],
      security: [{ bearerAuth: [] }],
      parameters: listParameters(),
      responses: {
        200: ok('One page; `next_cursor` is null on the last.', schema),
        ...problems({
          ...adminAuth,
          ...(withTenant ? tenantNotFound : {}),
          invalid_request: 'Invalid `limit` or `cursor`, or an unknown query parameter.',
        }),
        default: unexpected,
      },
    },
  };
}

export const writeProblems = (resource: 'tenant' | 'user') => ({
  ...problems({
    unsafe_mcp_url:
      'An MCP URL (`mcp.url` or a catalog `url`) is not allowed (scheme, port, userinfo or a non-public address).',
    ...(resource === 'tenant'
      ? {
          unsafe_oauth_url:
            'A catalog entry’s OAuth `issuer` is not allowed (the same URL rule; no query or fragment).',
        }
      : {}),
    ...adminAuth,
    ...(resource === 'tenant'
      ? { field_requires_superadmin: 'A tenant admin set a superadmin-only field.' }
      : {}),
    ...tenantNotFound,
    ...(resource === 'tenant'
      ? { sip_trunk_taken: 'A SIP trunk id is already claimed by another tenant.' }
      : { phone_number_taken: 'A phone number belongs to another user of the tenant.' }),
    version_conflict: '`If-Match` names a stale version (or the record is gone).',
    already_exists: '`If-None-Match: *` and the record exists.',
    payload_too_large: 'The body is over 64 KiB.',
    invalid_request:
      'The body (or an id, or a precondition header) is invalid; `errors` lists each failing field.',
    precondition_required: 'An update without `If-Match` (or `If-None-Match: *`).',
  }),
  default: unexpected,
});
