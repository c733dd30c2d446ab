/**
 * Keeps one job's MCP toolsets live across credential renewals (docs/api.md §3, §9), the
 * TypeScript twin of the Python `livekit_mcp_dispatch.live`.
 *
 * {@link JobCredentials} renews the job's sealed metadata once at the start, while the servers that
 * came with headers connect, and hands out no toolset before that renewal answered 200; after a
 * 5xx/429/network failure and its retries it uses the sealed credentials until their
 * `expires_at`. It renews again at `refresh_at` and when an MCP server refuses the token (401, or
 * 403 `insufficient_scope`: sent as `rejected`; the failed tool call is retried once). Each renewal
 * swaps the toolsets' headers in place, closes the servers the new metadata no longer has (or has
 * at another URL), and on `session_ended` closes every toolset and ends the job
 * (`onSessionEnded`, the example passes `ctx.shutdown`). Renewals are single-flight.
 */
import type { McpServerGrant } from '@livekit-mcp-dispatch/contract';
import { UnsafeWorkerUrlError } from './address-guard.js';
import {
  createMcpToolset,
  McpConnectionError,
  type McpToolset,
  type McpToolsetOptions,
} from './mcp-toolset.js';
import {
  type DispatchGrant,
  DispatchMetadataError,
  type OpenDispatchOptions,
  openDispatchMetadata,
} from './open.js';
import {
  type RejectedCredential,
  type RenewalClient,
  RenewalError,
  RenewalRefusedError,
  SessionEndedError,
} from './renewal.js';

/** Where JobCredentials writes its lines (pino's `(object, message)` shape); never a token. */
export interface CredentialsLogger {
  error(fields: Record<string, unknown>, message: string): void;
  warn?(fields: Record<string, unknown>, message: string): void;
  info?(fields: Record<string, unknown>, message: string): void;
}

/** Options of {@link JobCredentials}. */
export interface JobCredentialsOptions {
  keyring: OpenDispatchOptions['keyring'];
  client: RenewalClient;
  /** Ends the job (`ctx.shutdown(reason)`). */
  onSessionEnded: (reason: string) => void;
  logger: CredentialsLogger;
  /** Options of every toolset (`toolNamePrefix` is set per server when there are several). */
  toolsetOptions?: McpToolsetOptions;
  /** After a failed renewal, retry this much later (ms). Default 30000. */
  retryLaterMs?: number;
  /** Two renewals at `refresh_at` are at least this far apart (ms). Default 5000. */
  minRenewalIntervalMs?: number;
}

type Outcome = 'ok' | 'ended' | 'refused' | 'unavailable';

/**
 * How {@link JobCredentials.start} spent its time, ms since it began: `renewal` (the start
 * renewal answered), `sealedConnected` (the servers sealed with headers connected, in parallel
 * with it), `ready` (the toolsets to offer) and `renewalAdded`, what the renewal added to
 * `ready` over connecting with the sealed credentials alone.
 */
export interface StartTimings {
  renewal?: number;
  sealedConnected: number;
  ready: number;
  renewalAdded: number;
}

/** One job's grant and MCP toolsets, kept current by renewals. Call {@link start} once. */
export class JobCredentials {
  metadata: string;
  grant: DispatchGrant;
  /** Toolsets by server name, connected and offered. */
  readonly toolsets = new Map<string, McpToolset>();
  ended = false;
  renewals = 0;
  /** Set once {@link start} offers its toolsets after a start renewal (logged as `job start`). */
  startTimings: StartTimings | undefined;
  readonly #options: JobCredentialsOptions;
  #inflight: Promise<boolean> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastAttempt = Date.now();
  #failed = false;
  #prefix: boolean;

  constructor(metadata: string, grant: DispatchGrant, options: JobCredentialsOptions) {
    this.metadata = metadata;
    this.grant = grant;
    this.#options = options;
    this.#prefix = grant.mcpServers.length > 1;
  }

  /** Start renewal + connect: the toolsets to offer, or undefined when the job must end. */
  async start(): Promise<McpToolset[] | undefined> {
    const { logger } = this.#options;
    if (!this.grant.refreshUrl || !this.grant.sid) {
      logger.warn?.({}, 'metadata has no refresh_url/sid; using the sealed credentials without renewal');
      await this.#connect(this.grant.mcpServers);
      this.#schedule();
      return [...this.toolsets.values()];
    }
    // A handler attached at once: an unexpected failure must not be an unhandled rejection
    // while the connections run; it counts as a refusal (no tools).
    const began = performance.now();
    const since = () => Math.round(performance.now() - began);
    let renewed: number | undefined;
    const renewal = this.#renewOnce([], false)
      .catch((): Outcome => {
        logger.error({}, 'credentials renewal failed unexpectedly');
        return 'refused';
      })
      .finally(() => {
        renewed = since();
      });
    // Connected meanwhile: only servers that came with headers (token mode seals none).
    await this.#connect(this.grant.mcpServers.filter((s) => hasHeaders(s) && !this.#expired(s)));
    const sealedConnected = since();
    const outcome = await renewal;
    if (outcome === 'ended') {
      await this.#closeAll();
      return undefined;
    }
    if (outcome === 'refused') {
      await this.#closeAll();
      this.#end('credentials renewal refused');
      return undefined;
    }
    if (outcome === 'ok') await this.#apply(this.grant);
    if (outcome === 'unavailable') await this.#close((t) => this.#expired(t.server));
    await this.#connect(
      this.grant.mcpServers.filter((s) => !this.toolsets.has(s.name) && hasHeaders(s) && !this.#expired(s)),
    );
    this.#schedule();
    const ready = since();
    this.startTimings = {
      ...(renewed === undefined ? {} : { renewal: renewed }),
      sealedConnected,
      ready,
      renewalAdded: Math.max(0, ready - sealedConnected),
    };
    logger.info?.(
      { start_timings: this.startTimings },
      `job start: renewal ${renewed ?? -1} ms, sealed servers connected ${sealedConnected} ms, ready ${ready} ms`,
    );
    return [...this.toolsets.values()];
  }

  /** Renews now (joining one in flight); true when the job has fresh credentials. */
  async renew(rejected: readonly RejectedCredential[] = []): Promise<boolean> {
    if (this.ended) return false;
    // Single-flight: the running renewal's answer serves this caller too; one with a rejection
    // to report runs its own after it (never two at once: nothing awaits between the loop's end
    // and the new renewal taking #inflight).
    let joined: boolean | undefined;
    while (this.#inflight) joined = await this.#inflight;
    if (joined !== undefined && (rejected.length === 0 || this.ended)) return joined;
    if (this.ended) return false;
    const run = (async () => {
      const outcome = await this.#renewOnce(rejected, true);
      if (outcome === 'refused') {
        await this.#closeAll();
        this.#end('credentials renewal refused');
      }
      this.#schedule();
      return outcome === 'ok';
    })();
    this.#inflight = run;
    try {
      return await run;
    } finally {
      if (this.#inflight === run) this.#inflight = undefined;
    }
  }

  /** Stops the timer and closes every toolset (the job's shutdown callback). */
  async aclose(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#closeAll();
  }

  async #renewOnce(rejected: readonly RejectedCredential[], apply: boolean): Promise<Outcome> {
    const { client, logger, keyring } = this.#options;
    const { refreshUrl, sid } = this.grant;
    if (!refreshUrl || !sid) return 'unavailable';
    this.#lastAttempt = Date.now();
    this.#failed = false;
    let metadata: string;
    try {
      ({ metadata } = await client.renew(this.metadata, refreshUrl, sid, rejected).then((answer) => {
        for (const item of answer.unavailable)
          logger.warn?.(
            { server: item.name, code: item.code },
            `MCP server ${item.name} unavailable: ${item.code}`,
          );
        return answer;
      }));
    } catch (error) {
      if (error instanceof SessionEndedError) {
        logger.info?.({}, 'session ended: closing the MCP toolsets and ending the job');
        await this.#closeAll();
        this.#end('session ended');
        return 'ended';
      }
      if (error instanceof RenewalRefusedError) {
        logger.error(
          { code: error.code, status: error.status },
          `credentials renewal refused: ${error.code}`,
        );
        return 'refused';
      }
      if (error instanceof RenewalError) {
        logger.warn?.(
          { code: error.code, status: error.status },
          `credentials renewal unavailable: ${error.code}`,
        );
        this.#failed = true;
        return 'unavailable';
      }
      throw error;
    }
    let grant: DispatchGrant;
    try {
      grant = await openDispatchMetadata(metadata, {
        keyring,
        agentName: this.grant.agentName,
        roomName: this.grant.roomName,
      });
    } catch (error) {
      const code = error instanceof DispatchMetadataError ? error.code : 'unknown';
      logger.error({ code }, `renewed metadata refused: ${code}`);
      return 'refused';
    }
    if (grant.sid !== this.grant.sid || grant.participantIdentity !== this.grant.participantIdentity) {
      logger.error({}, 'renewed metadata is for another session or participant');
      return 'refused';
    }
    this.metadata = metadata;
    this.grant = grant;
    if (apply) await this.#apply(grant);
    // Counted once applied: whoever sees the count sees the gone servers closed.
    this.renewals++;
    return 'ok';
  }

  /** Swaps headers in place; closes the servers that are gone, moved, or left without headers. */
  async #apply(grant: DispatchGrant): Promise<void> {
    const servers = new Map(grant.mcpServers.map((s) => [s.name, s]));
    await this.#close((toolset) => {
      const next = servers.get(toolset.serverName);
      return (
        !next ||
        next.url !== toolset.server.url ||
        next.transport !== toolset.server.transport ||
        !hasHeaders(next)
      );
    });
    for (const [name, toolset] of this.toolsets) {
      const next = servers.get(name);
      if (next) toolset.setHeaders(next.headers);
    }
  }

  #expired(server: McpServerGrant): boolean {
    return server.expires_at !== undefined && server.expires_at * 1000 <= Date.now();
  }

  async #connect(servers: readonly McpServerGrant[]): Promise<void> {
    const { logger, toolsetOptions } = this.#options;
    await Promise.all(
      servers
        .filter((server) => !this.toolsets.has(server.name))
        .map(async (server) => {
          if (server.allowed_tools !== undefined && server.allowed_tools.length === 0) return;
          const toolset = createMcpToolset(server, {
            ...toolsetOptions,
            ...(this.#prefix ? { toolNamePrefix: `${server.name}_` } : {}),
          });
          try {
            await toolset.setup();
          } catch (error) {
            const message =
              error instanceof McpConnectionError || error instanceof UnsafeWorkerUrlError
                ? error.message
                : 'setup failed';
            logger.error({ toolset: toolset.id }, `MCP toolset ${toolset.id} unavailable: ${message}`);
            await toolset.aclose();
            return;
          }
          toolset.onTokenRejected((rejection) => this.#rejected(toolset, rejection));
          this.toolsets.set(server.name, toolset);
        }),
    );
  }

  /** A tool call failed on a refused token: renew; true to retry the call once. */
  async #rejected(toolset: McpToolset, rejection: { status: 401 | 403; scope?: string }): Promise<boolean> {
    const name = toolset.serverName;
    this.#options.logger.info?.(
      { server: name, status: rejection.status },
      `MCP server ${name} refused the token`,
    );
    const refused = JSON.stringify(toolset.server.headers);
    if (this.#inflight) {
      // A renewal already runs: if it brings this server new headers, that is enough.
      await this.#inflight;
      if (this.toolsets.get(name) !== toolset) return false;
      if (JSON.stringify(toolset.server.headers) !== refused) return true;
    }
    const ok = await this.renew([{ name, ...rejection }]);
    return ok && this.toolsets.get(name) === toolset;
  }

  async #close(which: (toolset: McpToolset) => boolean): Promise<void> {
    const doomed = [...this.toolsets.values()].filter(which);
    for (const toolset of doomed) {
      this.toolsets.delete(toolset.serverName);
      this.#options.logger.info?.({ server: toolset.serverName }, `MCP server ${toolset.serverName} closed`);
    }
    await Promise.allSettled(doomed.map((t) => t.aclose()));
  }

  async #closeAll(): Promise<void> {
    await this.#close(() => true);
  }

  #end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#options.onSessionEnded(reason);
  }

  /** Next wake-up: `refresh_at` (or a retry after a failed renewal) and each `expires_at`. */
  #schedule(): void {
    if (this.ended) return;
    const now = Date.now();
    const times: number[] = [];
    for (const toolset of this.toolsets.values())
      if (toolset.server.expires_at !== undefined) times.push(toolset.server.expires_at * 1000);
    const refresh = this.grant.refreshAt?.getTime();
    if (this.grant.refreshUrl && this.grant.sid && refresh !== undefined) {
      const due = this.#failed ? Math.max(refresh, now + (this.#options.retryLaterMs ?? 30_000)) : refresh;
      times.push(Math.max(due, this.#lastAttempt + (this.#options.minRenewalIntervalMs ?? 5_000)));
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (times.length === 0) return;
    const delay = Math.max(0, Math.min(...times) - now);
    this.#timer = setTimeout(() => {
      this.#wake().catch(() => {
        this.#options.logger.error({}, 'credentials renewal failed unexpectedly');
      });
    }, delay);
    this.#timer.unref?.();
  }

  async #wake(): Promise<void> {
    this.#timer = undefined;
    await this.#close((t) => this.#expired(t.server));
    const refresh = this.grant.refreshAt?.getTime();
    if (this.grant.refreshUrl && this.grant.sid && refresh !== undefined && refresh <= Date.now() + 500)
      await this.renew();
    else this.#schedule();
  }
}

function hasHeaders(server: McpServerGrant): boolean {
  return Object.keys(server.headers).length > 0;
}
