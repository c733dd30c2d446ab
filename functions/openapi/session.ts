import { serverStateSchema, sessionResponseSchema } from '../http/responses.js';
import {
  MAX_ATTRIBUTES,
  MAX_METADATA_BYTES,
  RESERVED_ATTRIBUTE_PREFIXES,
  sessionRequest as sessionRequestSchema,
} from '../session/app.js';
import { type JsonSchema, jsonSchema, ok, problems, ref, unexpected } from './helpers.js';

/**
 * The session start of the OpenAPI document (docs/api.md §4): its request as the API enforces it,
 * its responses and its path, whose 409 carries every server's status. Assembled by document.ts.
 */

/**
 * The session request as the API enforces it: `room_name` only absent, null or empty (anything
 * else is 400 `field_not_allowed`), at most 32 attributes with no reserved key prefix, and the
 * 4 KiB limits (in UTF-8 bytes, so at most 4096 characters).
 */
function sessionRequestJsonSchema(): JsonSchema {
  const out = jsonSchema(sessionRequestSchema, 'input') as JsonSchema & {
    properties: Record<string, JsonSchema & { anyOf?: JsonSchema[] }>;
  };
  const props = out.properties;
  props.room_name = {
    enum: ['', null],
    description:
      'Not the client’s to choose: the server names rooms. Any other value is refused with 400 `field_not_allowed`.',
  };
  const reserved = RESERVED_ATTRIBUTE_PREFIXES.map((p) => p.replace('.', '\\.')).join('|');
  const stringOf = (schema: JsonSchema | undefined): JsonSchema | undefined =>
    (schema?.anyOf as JsonSchema[] | undefined)?.find((s) => s.type === 'string' || s.type === 'object');
  Object.assign(stringOf(props.participant_metadata) ?? {}, {
    description: `At most ${MAX_METADATA_BYTES} bytes in UTF-8.`,
  });
  Object.assign(stringOf(props.participant_attributes) ?? {}, {
    maxProperties: MAX_ATTRIBUTES,
    propertyNames: { type: 'string', not: { pattern: `^(${reserved})` } },
    description: `At most ${MAX_ATTRIBUTES} attributes; keys starting ${RESERVED_ATTRIBUTE_PREFIXES.map((p) => `\`${p}\``).join(' or ')} are refused with 400 \`field_not_allowed\`.`,
  });
  return out;
}

/** The `components.schemas` entries of the session start. */
export function sessionSchemas(): Record<string, JsonSchema> {
  return {
    SessionRequest: {
      ...sessionRequestJsonSchema(),
      description:
        "What LiveKit client SDKs' `TokenSource.endpoint` sends; every field optional, unknown fields ignored.",
    },
    SessionResponse: jsonSchema(sessionResponseSchema, 'output'),
    ServerState: {
      ...jsonSchema(serverStateSchema, 'output'),
      description:
        'One MCP server of the user (`mcp` and the tenant’s catalog) and its status; `reason` with `needs_reauth`.',
    },
  };
}

/** The `paths` entry of the session start. */
export function sessionPaths() {
  const paths = {
    '/v1/sessions': {
      post: {
        operationId: 'startSession',
        summary: 'Start a session: a participant token for a new room, and the user’s agent dispatched.',
        description:
          'A LiveKit token endpoint (`TokenSource.endpoint`): the server names the room and dispatches the agent ' +
          'with the user’s sealed MCP configuration. A repeat with the same `Idempotency-Key` within 10 minutes ' +
          'returns the same room and dispatch with a fresh token.',
        tags: ['session'],
        security: [{ bearerAuth: [] }],
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            description: '1-255 visible ASCII characters.',
            schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
          },
        ],
        requestBody: {
          required: false,
          content: { 'application/json': { schema: ref('SessionRequest') } },
        },
        responses: {
          201: ok(
            'The session: where to connect, the participant token and the dispatch.',
            'SessionResponse',
          ),
          ...problems({
            field_not_allowed: '`room_name` given, or an `lk.`/`sip.` attribute key.',
            unauthenticated: 'No, bad, expired or foreign JWT.',
            identity_mismatch: '`participant_identity` is not the JWT `sub`.',
            tenant_mismatch: 'The JWT’s tenant claim is missing or not a tenant id.',
            agent_not_allowed: 'The agent is not one the tenant allows.',
            user_suspended: 'The user is suspended.',
            tenant_suspended: 'The tenant is suspended.',
            user_not_found:
              'No user record for the JWT `sub` in the tenant its tenant claim names (or no such tenant).',
            mcp_not_configured: 'No MCP server at all for this user (no `mcp` URL, no catalog).',
            mcp_reauth_required:
              'Servers exist but none is `ready`; `mcp_servers` lists each with its status, so the app can connect one.',
            idempotency_key_in_flight: 'The same `Idempotency-Key` is still being processed (retry).',
            payload_too_large: 'The body is over 64 KiB.',
            invalid_request: 'Schema violation.',
            idempotency_key_reused: 'The same `Idempotency-Key` with another body.',
            quota_exceeded: 'The tenant’s concurrent sessions are all taken.',
            rate_limited: 'The user’s per-minute rate.',
            livekit_unavailable: 'LiveKit failed or timed out; nothing was left behind.',
            store_unavailable: 'DynamoDB failed after retries; retry.',
            dispatch_in_progress: 'The dispatch is still being made; retry.',
          }),
          default: unexpected,
        },
      },
    },
  };

  // The 409 of a session start may carry every server's status (`mcp_reauth_required`).
  const conflict = (
    paths['/v1/sessions'].post.responses as Record<
      number,
      { content: Record<string, { schema: JsonSchema }> }
    >
  )[409];
  const conflictSchema = conflict?.content['application/problem+json']?.schema;
  if (conflictSchema !== undefined) {
    conflictSchema.properties = {
      ...(conflictSchema.properties as JsonSchema),
      mcp_servers: {
        type: 'array',
        items: ref('ServerState'),
        description: 'With `mcp_reauth_required`: every server of the user and its status.',
      },
    };
  }
  return paths;
}
