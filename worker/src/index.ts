/**
 * Worker side of livekit-mcp-dispatch for `@livekit/agents` (Node): open a job's sealed dispatch
 * metadata and give the job its own user's MCP tools.
 */
export {
  type AddressClass,
  type AddressGuardOptions,
  assertPublicHost,
  assertPublicUrl,
  canonicalIPv4,
  classifyAddress,
  classifyAnySpelling,
  isPublicAddress,
  type LookupFn,
  type ResolvedAddress,
  UnsafeMcpUrlError,
} from './address-guard.js';
export * from './format.js';
export {
  createMcpToolset,
  McpConnectionError,
  McpToolset,
  type McpToolsetOptions,
  resultText,
} from './mcp-toolset.js';
export * from './open.js';
