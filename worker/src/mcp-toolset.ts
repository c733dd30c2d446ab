import { llm } from '@livekit/agents';
import type { LookupFn, McpServerGrant } from '@livekit-mcp-dispatch/contract';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  type CallToolResult,
  McpError,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  type AddressGuardOptions,
  assertPublicHost,
  assertPublicUrl,
  UnsafeWorkerUrlError,
} from './address-guard.js';

/** A server refused the token: 401, or 403 with `WWW-Authenticate: Bearer error="insufficient_scope"`. */
export interface TokenRejection {
  status: 401 | 403;
  /** The scope the 403's challenge names (RFC 6750 §3). */
  scope?: string;
}

function tokenRejection(response: Response): TokenRejection | undefined {
  if (response.status === 401) return { status: 401 };
  const challenge = response.headers.get('www-authenticate') ?? '';
  if (response.status !== 403 || !challenge.includes('insufficient_scope')) return undefined;
  const scope = /scope="([^"]*)"/.exec(challenge)?.[1];
  return scope === undefined ? { status: 403 } : { status: 403, scope };
}

/** Options of {@link createMcpToolset}. */
export interface McpToolsetOptions {
  /**
   * Test-only: allow `http:` and loopback MCP URLs. Never set in production; the default refuses
   * every URL whose host is or resolves to a non-public address (docs/api.md §3).
   */
  allowLoopbackForTests?: boolean;
  /** Resolver for the address check; defaults to the system resolver. */
  lookup?: LookupFn;
  /** Timeout of each MCP request (connect, list, call), in milliseconds. Default 15000. */
  timeoutMs?: number;
  /**
   * Put before every tool name the LLM sees (e.g. `notes_`), so two servers' tools with one name
   * do not collide in the agent's tool context. The MCP server is still called with its own name.
   */
  toolNamePrefix?: string;
  /** Client name and version announced to the MCP server. */
  clientInfo?: { name: string; version: string };
}

/**
 * The MCP server could not be used: unreachable, refused the credentials, or broke the protocol.
 * The message names the server and the HTTP status, never a header value, token or the URL's path.
 */
export class McpConnectionError extends Error {
  readonly code = 'mcp_unavailable';
  /** HTTP status the server answered with, when it answered with one. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'McpConnectionError';
    this.status = status;
  }
}

type AnyFunctionTool = llm.FunctionTool;
type JsonObject = Parameters<AnyFunctionTool['execute']>[0];

const DEFAULT_TIMEOUT_MS = 15_000;
const MAX_RESULT_CHARS = 64 * 1024;

/** A toolset id LiveKit accepts and a person can read: `mcp_<server name>`. */
/** The name the LLM sees: `[A-Za-z0-9_-]{1,64}`, as function-calling APIs require. */
export function llmToolName(prefix: string, name: string): string {
  return `${prefix}${name}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'tool';
}

function toolsetId(name: string): string {
  return `mcp_${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48) || 'server'}`;
}

function describeFailure(serverName: string, error: unknown): McpConnectionError | UnsafeWorkerUrlError {
  if (error instanceof McpConnectionError || error instanceof UnsafeWorkerUrlError) return error;
  const status = (error as { code?: unknown })?.code;
  if (typeof status === 'number' && status >= 400 && status < 600) {
    const hint =
      status === 401 || status === 403
        ? ': it refused the credentials (check the user\u2019s MCP token)'
        : '';
    return new McpConnectionError(`MCP server "${serverName}" answered HTTP ${status}${hint}`, status);
  }
  if ((error as { name?: string })?.name === 'UnauthorizedError') {
    return new McpConnectionError(
      `MCP server "${serverName}" answered HTTP 401: it refused the credentials (check the user\u2019s MCP token)`,
      401,
    );
  }
  if (error instanceof McpError) {
    return new McpConnectionError(`MCP server "${serverName}" failed: MCP error ${error.code}`);
  }
  // Other messages can quote response bodies or URLs; only the kind of failure is kept.
  const kind = error instanceof Error && error.name !== 'Error' ? error.name : 'connection failed';
  return new McpConnectionError(`MCP server "${serverName}" is unreachable (${kind})`);
}

/** Joins an MCP tool result into the text the LLM reads. */
export function resultText(result: CallToolResult): string {
  const parts: string[] = [];
  for (const item of result.content ?? []) {
    if (item.type === 'text') parts.push(item.text);
    else if (item.type === 'resource' && 'text' in item.resource) parts.push(String(item.resource.text));
    else if (item.type === 'resource_link') parts.push(`[resource ${item.uri}]`);
    else parts.push(`[${item.type} content omitted]`);
  }
  if (parts.length === 0 && result.structuredContent !== undefined) {
    parts.push(JSON.stringify(result.structuredContent));
  }
  const text = parts.join('\n');
  return text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}\n[truncated]` : text;
}

/**
 * One user's MCP server as a LiveKit {@link llm.Toolset}. `setup` checks the URL's addresses,
 * connects with the user's headers and lists the tools (only `allowed_tools`, when given);
 * each MCP tool becomes a LiveKit function tool with the server's JSON schema. `aclose`
 * closes the MCP session. Build one per job with {@link createMcpToolset}.
 */
export class McpToolset extends llm.Toolset {
  #server: McpServerGrant;
  readonly #options: McpToolsetOptions;
  #client: Client | undefined;
  #closed = false;
  /** Every header name ever sent, so a header a renewal drops is not sent any more. */
  readonly #headerNames = new Set<string>();
  /** The last refusal of the token (401, or 403 `insufficient_scope`), recorded per request. */
  #rejected: TokenRejection | undefined;
  #onRejected: ((rejection: TokenRejection) => Promise<boolean>) | undefined;

  constructor(server: McpServerGrant, options: McpToolsetOptions = {}) {
    super({ id: toolsetId(server.name), tools: [] });
    this.#server = server;
    this.#options = options;
  }

  /** The server's name from the grant. */
  get serverName(): string {
    return this.#server.name;
  }

  /** The server as last granted (its headers are secret). */
  get server(): McpServerGrant {
    return this.#server;
  }

  /** Whether `setup` connected it and `aclose` has not run. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /**
   * Swaps the headers in place (a renewal, docs/api.md §9): every later request, on the open MCP
   * session, sends these; a header the new set lacks is not sent any more.
   */
  setHeaders(headers: Record<string, string>): void {
    this.#server = { ...this.#server, headers: { ...headers } };
  }

  /**
   * Called when a tool call failed because the server refused the token; resolving `true` (the
   * headers were renewed) retries that call once.
   */
  onTokenRejected(handler: ((rejection: TokenRejection) => Promise<boolean>) | undefined): void {
    this.#onRejected = handler;
  }

  /** Connects and lists the tools; the LiveKit runtime calls it once when the agent activates. */
  override async setup(ctx?: llm.ToolsetContext): Promise<void> {
    if (this.#closed) throw new McpConnectionError(`MCP server "${this.#server.name}" toolset is closed`);
    if (this.#client) {
      // Already connected (e.g. by the entrypoint, to drop a failing server): hand the runtime the list.
      ctx?.updateTools(this.tools);
      return;
    }
    const guard: AddressGuardOptions = {
      allowLoopbackForTests: this.#options.allowLoopbackForTests === true,
      ...(this.#options.lookup ? { lookup: this.#options.lookup } : {}),
    };
    const url = await assertPublicUrl(this.#server.url, guard);
    const client = new Client(
      this.#options.clientInfo ?? { name: 'livekit-mcp-dispatch-worker', version: '0.1.0' },
    );
    const transport = this.#transport(url, guard);
    try {
      await client.connect(transport, { timeout: this.#timeout() });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw describeFailure(this.#server.name, error);
    }
    this.#client = client;
    const publish = (tools: AnyFunctionTool[]) => {
      this._setTools(tools);
      ctx?.updateTools(tools);
    };
    try {
      publish(await this.#listTools(client));
    } catch (error) {
      await this.aclose();
      throw describeFailure(this.#server.name, error);
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      if (this.#closed) return;
      try {
        publish(await this.#listTools(client));
      } catch {
        // Keep the last good list; the next call will surface the server's state.
      }
    });
  }

  /** Closes the MCP session; the LiveKit runtime calls it when the agent is torn down. */
  override async aclose(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    this._setTools([]);
    await client?.close().catch(() => undefined);
  }

  #timeout(): number {
    return this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  #transport(url: URL, guard: AddressGuardOptions): Transport {
    const origin = url.origin;
    const serverName = this.#server.name;
    // Every request (the SDK's own same-origin redirect hops included) is checked again: same
    // origin only, public addresses only, and the fetch itself never follows a redirect.
    const guardedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const target = new URL(input instanceof Request ? input.url : input);
      if (target.origin !== origin) {
        throw new McpConnectionError(`MCP server "${serverName}" tried to send the client to another origin`);
      }
      await assertPublicHost(target.hostname, guard);
      // The current headers on every request: a renewal's swap takes effect on the open session.
      const headers = new Headers(init?.headers);
      for (const name of this.#headerNames) headers.delete(name);
      for (const [name, value] of Object.entries(this.#server.headers)) {
        this.#headerNames.add(name);
        headers.set(name, value);
      }
      const response = await fetch(input, { ...init, headers, redirect: 'manual' });
      const rejection = tokenRejection(response);
      if (rejection) this.#rejected = rejection;
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location');
        const next = location ? new URL(location, target) : undefined;
        if (!next || next.origin !== origin) {
          await response.body?.cancel().catch(() => undefined);
          throw new McpConnectionError(
            `MCP server "${serverName}" redirected to another origin; redirects are not followed`,
            response.status,
          );
        }
      }
      return response;
    };
    // No headers in requestInit: guardedFetch adds the current ones to every request.
    if (this.#server.transport === 'sse') {
      return new SSEClientTransport(url, { fetch: guardedFetch, redirectPolicy: 'same-origin' });
    }
    return new StreamableHTTPClientTransport(url, { fetch: guardedFetch, redirectPolicy: 'same-origin' });
  }

  async #listTools(client: Client): Promise<AnyFunctionTool[]> {
    const allowed = this.#server.allowed_tools ? new Set(this.#server.allowed_tools) : undefined;
    const tools: AnyFunctionTool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const listed = await client.listTools(cursor ? { cursor } : {}, { timeout: this.#timeout() });
      for (const mcpTool of listed.tools) {
        if (allowed && !allowed.has(mcpTool.name)) continue;
        tools.push(this.#bridge(client, mcpTool));
      }
      cursor = listed.nextCursor;
      if (!cursor) break;
    }
    return tools;
  }

  #bridge(
    client: Client,
    mcpTool: { name: string; description?: string; title?: string; inputSchema: Record<string, unknown> },
  ): AnyFunctionTool {
    const serverName = this.#server.name;
    const parameters = { type: 'object', properties: {}, ...mcpTool.inputSchema } as JsonObject;
    const timeout = this.#timeout();
    return llm.tool({
      name: llmToolName(this.#options.toolNamePrefix ?? '', mcpTool.name),
      description: mcpTool.description ?? mcpTool.title ?? `${mcpTool.name} (MCP server ${serverName})`,
      parameters,
      execute: async (args: JsonObject, opts?: { abortSignal?: AbortSignal }): Promise<string> => {
        if (this.#client !== client) throw new llm.ToolError(`MCP server "${serverName}" is not connected`);
        const call = () =>
          client.callTool({ name: mcpTool.name, arguments: args ?? {} }, undefined, {
            timeout,
            ...(opts?.abortSignal ? { signal: opts.abortSignal } : {}),
          }) as Promise<CallToolResult>;
        let result: CallToolResult;
        try {
          this.#rejected = undefined;
          try {
            result = await call();
          } catch (error) {
            // The token was refused: renew (single-flight per job), then call once more.
            const rejection = this.#rejected;
            const handler = this.#onRejected;
            if (!rejection || !handler || !(await handler(rejection)) || this.#client !== client) throw error;
            this.#rejected = undefined;
            result = await call();
          }
        } catch (error) {
          if (error instanceof McpError) {
            throw new llm.ToolError(`MCP tool ${mcpTool.name} failed: ${error.message}`);
          }
          throw new llm.ToolError(describeFailure(serverName, error).message);
        }
        const text = resultText(result);
        if (result.isError) throw new llm.ToolError(text || `MCP tool ${mcpTool.name} reported an error`);
        return text;
      },
    }) as unknown as AnyFunctionTool;
  }
}

/**
 * Builds the LiveKit toolset for one MCP server of a job's grant. Pass the result (one per
 * server) in `tools` of `AgentSession`/`Agent`; the runtime calls `setup` and `aclose`.
 *
 * @example
 * const toolsets = grant.mcpServers.map((server) => createMcpToolset(server));
 * const agent = new voice.Agent({ instructions, tools: toolsets });
 */
export function createMcpToolset(server: McpServerGrant, options: McpToolsetOptions = {}): McpToolset {
  return new McpToolset(server, options);
}
