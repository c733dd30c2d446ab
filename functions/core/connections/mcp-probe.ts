import type { OAuthFetch } from '../oauth/ports.js';

/** What `POST /v1/connections/{server}/test` answers (docs/api.md §8). */
export type ProbeResult = { ok: true; tools: number } | { ok: false; code: string };

const PROTOCOL = '2025-06-18';

async function rpcBody(response: Response): Promise<Record<string, unknown> | undefined> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let json = text;
  if (type.includes('text/event-stream')) {
    // The first `data:` event that carries a JSON-RPC response.
    const data = text
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim());
    json = data.find((d) => d.includes('"id"')) ?? '';
  }
  try {
    const parsed = JSON.parse(json) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An MCP `initialize`, `notifications/initialized` and `tools/list` over streamable HTTP with the
 * user's credential, through the safe fetch. Codes: `mcp_auth_rejected` (401/403),
 * `mcp_unreachable` (network, timeout, refused URL), `mcp_protocol_error` (anything else).
 */
export async function probeMcp(
  fetch: OAuthFetch,
  url: string,
  headers: Record<string, string>,
): Promise<ProbeResult> {
  const base = {
    ...headers,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  const post = (body: unknown, session?: string) =>
    fetch(url, {
      method: 'POST',
      headers: {
        ...base,
        ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': PROTOCOL } : {}),
      },
      body: JSON.stringify(body),
    });
  try {
    const init = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: PROTOCOL,
        capabilities: {},
        clientInfo: { name: 'livekit-mcp-dispatch', version: '1' },
      },
    });
    if (init.status === 401 || init.status === 403) {
      await init.body?.cancel();
      return { ok: false, code: 'mcp_auth_rejected' };
    }
    const initBody = init.ok ? await rpcBody(init) : undefined;
    if (initBody?.result === undefined) return { ok: false, code: 'mcp_protocol_error' };
    const session = init.headers.get('mcp-session-id') ?? undefined;
    const note = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session);
    await note.body?.cancel();
    const list = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, session);
    if (list.status === 401 || list.status === 403) {
      await list.body?.cancel();
      return { ok: false, code: 'mcp_auth_rejected' };
    }
    const listBody = list.ok ? await rpcBody(list) : undefined;
    const tools = (listBody?.result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return { ok: false, code: 'mcp_protocol_error' };
    return { ok: true, tools: tools.length };
  } catch {
    return { ok: false, code: 'mcp_unreachable' };
  }
}
