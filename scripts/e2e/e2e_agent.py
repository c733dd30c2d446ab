"""LLM-free e2e worker: worker/python/agent.py itself, with its session replaced by tool calls.

The worker is agent.py's: the same ``AgentServer`` options (``server_options()``, from the
environment: LKMCP_WORKER_LOAD, LKMCP_HEALTH_HOST/PORT, LKMCP_IDLE_PROCESSES) and, per job, the
same ``prepare_job`` (``open_dispatch_metadata``, ``build_mcp_toolsets`` through
``setup_toolsets``, ALLOW_INSECURE_MCP_URLS for the loopback MCP server). Only the part after it
differs: instead of ``AgentSession`` and an LLM (there is no network), the ``whoami`` and ``echo``
tools are called through the MCPToolset's own function tools (``prepare_function_arguments`` +
the tool callable: the path an LLM tool call takes).

Each job appends one JSON line to $LKMCP_E2E_REPORT (never a token, header or the metadata):
  {"event":"served","job_id","room","agent_name","user_id","tenant_id","participant_identity",
   "tools":[...],"whoami":{...},"errors":[...],"ready_ms","assigned_at","start_timings"}
  {"event":"refused","job_id","room","agent_name","code"}
``code`` and ``errors`` come from agent.py's own log records (logger ``lkmcp.agent``).

The job joins the room, stays while its participant (``pid``) is there, and leaves when that
participant leaves (or after LKMCP_E2E_LINGER seconds if it never shows up), so the room can
finish.

  {"event":"tick","job_id","room","n","ok","user_id"?,"error"?}   (every LKMCP_E2E_TICK seconds)
  {"event":"ended","job_id","room","reason"}   (the job's shutdown, e.g. session_ended)

Environment: agent.py's, plus LKMCP_E2E_REPORT, LKMCP_E2E_LINGER (default 3) and
LKMCP_E2E_TICK (default 0: no periodic calls).

    python scripts/e2e/e2e_agent.py start
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker" / "python"))

import agent  # noqa: E402  (worker/python/agent.py)
from livekit import rtc  # noqa: E402
from livekit.agents import AutoSubscribe, JobContext, cli  # noqa: E402
from livekit.agents.llm.utils import prepare_function_arguments  # noqa: E402

REPORT = os.environ["LKMCP_E2E_REPORT"]
LINGER = float(os.environ.get("LKMCP_E2E_LINGER", "3"))
#: Seconds between the ``whoami`` calls a job makes while it lasts (0: none). The renewal
#: scenarios' worker sets it, so every call across the job's renewals is on the record.
TICK = float(os.environ.get("LKMCP_E2E_TICK", "0"))

# agent.py's module-level server already holds agent.py's entrypoint (one per server), so this
# one is built the same way and gets the LLM-free entrypoint below.
server = agent.CheckedAgentServer(**agent.server_options())


def report(**fields: Any) -> None:
    with open(REPORT, "a", encoding="utf-8") as out:
        out.write(json.dumps({**fields, "at": time.time()}) + "\n")


class JobLog(logging.Handler):
    """Collects agent.py's error records of one job: the refusal code and the messages."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.code: str | None = None
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.code = getattr(record, "code", None) or self.code
        self.errors.append(record.getMessage())


class StartTimings(logging.Handler):
    """Keeps the library's ``job start`` record's timings (JobCredentials.start_timings)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.timings: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.timings = getattr(record, "start_timings", None) or self.timings


async def call_tool(toolset: Any, name: str, arguments: str) -> Any:
    """Calls one of the toolset's function tools the way the agent's LLM tool-call path does."""
    tool = next((t for t in toolset.tools if t.info.name == name), None)
    if tool is None:
        return None
    args, kwargs = prepare_function_arguments(fnc=tool, json_arguments=arguments)
    result = await tool(*args, **kwargs)
    text = json.loads(result)["text"] if isinstance(result, str) and result.startswith("{") else str(result)
    try:
        return json.loads(text)
    except ValueError:
        return text


async def wait_for_participant_to_leave(ctx: JobContext, identity: str) -> None:
    gone = asyncio.Event()

    @ctx.room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        if p.identity == identity:
            gone.set()

    # The room deleted (a revoke) or left: the job is over, so its tool calls stop with it.
    @ctx.room.on("disconnected")
    def _disconnected(*_args: Any) -> None:
        gone.set()

    if identity not in {p.identity for p in ctx.room.remote_participants.values()}:
        try:
            await asyncio.wait_for(ctx.wait_for_participant(identity=identity), LINGER)
        except asyncio.TimeoutError:
            return
    await gone.wait()


@server.rtc_session(agent_name=agent.AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    job = {"job_id": ctx.job.id, "room": ctx.job.room.name, "agent_name": agent.AGENT_NAME}

    async def ended(reason: str = "") -> None:
        report(event="ended", reason=reason, **job)

    # Every job reports its end and why ("session ended" when a renewal said so).
    ctx.add_shutdown_callback(ended)
    log = JobLog()
    timings = StartTimings()
    renewal_log = logging.getLogger("lkmcp.renewal")
    renewal_log.setLevel(min(renewal_log.getEffectiveLevel(), logging.INFO))
    logging.getLogger("lkmcp.agent").addHandler(log)
    renewal_log.addHandler(timings)
    started = time.monotonic()
    assigned_at = round(time.time() * 1000)
    try:
        prepared = await agent.prepare_job(ctx)
    finally:
        logging.getLogger("lkmcp.agent").removeHandler(log)
        renewal_log.removeHandler(timings)
    # Job assigned -> toolsets ready, the start renewal included.
    ready_ms = round((time.monotonic() - started) * 1000)
    if prepared is None:
        report(event="refused", code=log.code or "unknown", **job)
        return
    grant, toolsets = prepared

    tools: list[str] = []
    whoami: list[Any] = []
    for toolset in toolsets:
        tools.extend(t.info.name for t in toolset.tools)
        answer = await call_tool(toolset, "whoami", "{}")
        if answer is not None:
            whoami.append(answer)
        # Ties this job's token to this job's room on the MCP server's call record.
        await call_tool(toolset, "echo", json.dumps({"text": ctx.job.room.name}))

    report(
        event="served",
        user_id=grant.user_id,
        tenant_id=grant.tenant_id,
        participant_identity=grant.participant_identity,
        tools=sorted(tools),
        whoami=whoami,
        errors=log.errors,
        ready_ms=ready_ms,
        assigned_at=assigned_at,
        start_timings=timings.timings,
        **job,
    )
    ticker = asyncio.create_task(tick(toolsets, job)) if TICK > 0 and toolsets else None
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        await wait_for_participant_to_leave(ctx, grant.participant_identity)
    finally:
        if ticker is not None:
            ticker.cancel()
    ctx.shutdown(reason="participant left")


async def tick(toolsets: list[Any], job: dict[str, Any]) -> None:
    """Calls ``whoami`` every TICK seconds and reports each outcome (never the answer's token)."""
    n = 0
    while True:
        await asyncio.sleep(TICK)
        n += 1
        for toolset in toolsets:
            try:
                answer = await call_tool(toolset, "whoami", "{}")
                ok = isinstance(answer, dict) and "user_id" in answer
                report(event="tick", n=n, ok=ok, user_id=answer.get("user_id") if ok else None, **job)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 (the e2e records the failure)
                report(event="tick", n=n, ok=False, error=type(error).__name__, **job)


if __name__ == "__main__":
    cli.run_app(server)
