/**
 * Worker side of livekit-mcp-dispatch for `@livekit/agents` (Node): open a job's sealed dispatch
 * metadata and give the job its own user's MCP tools. The wire format (headers, claims, codes,
 * the address classifier) comes from `@livekit-mcp-dispatch/contract` and is re-exported here.
 */
export {
  type AddressClass,
  CLIENT_METADATA_MAX_BYTES,
  canonicalIPv4,
  classifyAddress,
  classifyAnySpelling,
  DISPATCH_ALG,
  DISPATCH_ENC,
  DISPATCH_ERROR_CODES,
  DISPATCH_HEADER_KEYS,
  DISPATCH_ISSUER,
  DISPATCH_TYP,
  type DispatchClaims,
  type DispatchErrorCode,
  type DispatchProtectedHeader,
  EXP_LEEWAY_SECONDS,
  isPublicAddress,
  type LookupFn,
  MCP_TRANSPORTS,
  type McpServerGrant,
  type McpTransport,
  type ResolvedAddress,
} from '@livekit-mcp-dispatch/contract';
export {
  type AddressGuardOptions,
  assertPublicHost,
  assertPublicUrl,
  UnsafeWorkerUrlError,
} from './address-guard.js';
export {
  type CredentialsLogger,
  JobCredentials,
  type JobCredentialsOptions,
  type StartTimings,
} from './live.js';
export {
  createMcpToolset,
  McpConnectionError,
  McpToolset,
  type McpToolsetOptions,
  resultText,
  type TokenRejection,
} from './mcp-toolset.js';
export * from './open.js';
export * from './renewal.js';
