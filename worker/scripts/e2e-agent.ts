/**
 * LLM-free e2e worker on `@livekit/agents` (Node): worker/src/agent.ts's `prepareJob` (what its
 * entry runs before the AgentSession starts: `openJob`, `connectToolsets`), then, instead of an LLM, the
 * `whoami` and `echo` tools are called through the MCP toolset's own function tools with the
 * arguments shape the runtime's tool executor passes. Reports each job as one JSON line to
 * $LKMCP_E2E_REPORT, in the same shape as scripts/e2e/e2e_agent.py (never a token, header or metadata).
 *
 *   npx tsx worker/scripts/e2e-agent.ts start      (scripts/e2e/run.ts starts it)
 *
 * Environment: src/agent.ts's (LIVEKIT_*, DISPATCH_KEYS, LKMCP_AGENT_NAME, ALLOW_INSECURE_MCP_URLS,
 * LKMCP_WORKER_LOAD, LKMCP_HEALTH_HOST/PORT, LKMCP_IDLE_PROCESSES), plus LKMCP_E2E_REPORT and
 * LKMCP_E2E_LINGER (seconds, default 3) and LKMCP_E2E_TICK (seconds between `whoami` calls reported as
 * `{"event":"tick",…}`, default 0: none). Every job also reports `{"event":"ended","reason"}` at shutdown.
 */
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cli, defineAgent, type JobContext, type llm, ServerOptions } from '@livekit/agents';
import { agentName, type JobLogger, listeningServerOptions, prepareJob } from '../src/agent.js';

const REPORT = process.env.LKMCP_E2E_REPORT ?? '';
const LINGER_MS = Number(process.env.LKMCP_E2E_LINGER ?? '3') * 1000;
/** Milliseconds between the `whoami` calls a job makes while it lasts (0: none), as e2e_agent.py. */
const TICK_MS = Number(process.env.LKMCP_E2E_TICK ?? '0') * 1000;

function report(fields: Record<string, unknown>): void {
  appendFileSync(REPORT, `${JSON.stringify({ ...fields, at: Date.now() / 1000 })}\n`);
}

/**
 * The job's logger for prepareJob: prints every line, and keeps the refusal code (openJob logs
 * it as a field) and the error messages, which the e2e report needs.
 */
function codeCatcher() {
  let code = 'unknown';
  const errors: string[] = [];
  const logger: JobLogger = {
    error(fields, message) {
      if (typeof fields.code === 'string') code = fields.code;
      errors.push(message);
      console.error(message);
    },
    warn(message) {
      console.error(message);
    },
  };
  return { logger, errors, code: () => code };
}

async function callTool(toolset: llm.Toolset, name: string, args: Record<string, unknown>): Promise<unknown> {
  const tool = toolset.tools.find((t) => (t as { name?: string }).name === name) as
    | llm.FunctionTool
    | undefined;
  if (!tool) return undefined;
  const execute = tool.execute as (a: unknown, o: unknown) => Promise<unknown>;
  const text = String(
    await execute(args, { toolCallId: `e2e-${name}`, abortSignal: new AbortController().signal }),
  );
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function waitForParticipantToLeave(ctx: JobContext, identity: string): Promise<void> {
  const present = () => [...ctx.room.remoteParticipants.values()].some((p) => p.identity === identity);
  const deadline = Date.now() + LINGER_MS;
  while (!present() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // The room deleted (a revoke) ends the wait too: the job's tool calls stop with the room.
  while (present() && ctx.room.isConnected) await new Promise((r) => setTimeout(r, 200));
}

export default defineAgent({
  entry: async (ctx: JobContext) => {
    const name = agentName();
    const job = { job_id: ctx.job.id, room: ctx.job.room?.name ?? '', agent_name: name };
    const catcher = codeCatcher();
    let endReason = '';
    const shutdown = ctx.shutdown.bind(ctx);
    // The reason the job ends (e.g. "session ended" from a renewal), for the "ended" report.
    ctx.shutdown = (reason?: string) => {
      endReason ||= reason ?? '';
      shutdown(reason);
    };
    ctx.addShutdownCallback(async () => report({ event: 'ended', reason: endReason, ...job }));
    const started = performance.now();
    const assignedAt = Date.now();
    // src/agent.ts's own preparation: the same openJob and connectToolsets calls as its entry.
    const prepared = await prepareJob(ctx, catcher.logger);
    if (!prepared) {
      report({ event: 'refused', code: catcher.code(), ...job });
      return;
    }
    const readyMs = Math.round(performance.now() - started);
    const { grant, toolsets, credentials } = prepared;
    // The library's own split of the start (JobCredentials.startTimings), as e2e_agent.py reports it.
    const t = credentials.startTimings;
    const startTimings =
      t === undefined
        ? undefined
        : {
            ...(t.renewal === undefined ? {} : { renewal: t.renewal }),
            sealed_connected: t.sealedConnected,
            ready: t.ready,
            renewal_added: t.renewalAdded,
          };
    const tools: string[] = [];
    const whoami: unknown[] = [];
    for (const toolset of toolsets) {
      tools.push(...toolset.tools.map((t) => String((t as { name?: string }).name)));
      const answer = await callTool(toolset, 'whoami', {});
      if (answer !== undefined) whoami.push(answer);
      // Ties this job's token to this job's room on the MCP server's call record.
      await callTool(toolset, 'echo', { text: job.room });
    }
    report({
      event: 'served',
      user_id: grant.userId,
      tenant_id: grant.tenantId,
      participant_identity: grant.participantIdentity,
      tools: tools.sort(),
      whoami,
      errors: catcher.errors,
      ready_ms: readyMs,
      assigned_at: assignedAt,
      ...(startTimings === undefined ? {} : { start_timings: startTimings }),
      ...job,
    });
    let n = 0;
    const ticker =
      TICK_MS > 0 && toolsets.length > 0
        ? setInterval(() => {
            n += 1;
            const tick = n;
            for (const toolset of toolsets) {
              callTool(toolset, 'whoami', {}).then(
                (answer) => {
                  const userId = (answer as { user_id?: unknown } | undefined)?.user_id;
                  const ok = typeof userId === 'string';
                  report({ event: 'tick', n: tick, ok, user_id: ok ? userId : null, ...job });
                },
                (error: unknown) =>
                  report({ event: 'tick', n: tick, ok: false, error: (error as Error).name, ...job }),
              );
            }
          }, TICK_MS)
        : undefined;
    try {
      await ctx.connect();
      await waitForParticipantToLeave(ctx, grant.participantIdentity);
    } finally {
      clearInterval(ticker);
    }
    ctx.shutdown('participant left');
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  cli.runApp(
    // src/agent.ts's own options: run.ts sets LKMCP_WORKER_LOAD=ignore and a loopback health server.
    new ServerOptions({
      agent: fileURLToPath(import.meta.url),
      agentName: agentName(),
      ...(await listeningServerOptions()),
    }),
  );
}
