"""Example livekit-agents (1.8) worker for livekit-mcp-dispatch.

Each job opens its sealed dispatch metadata *before* the session starts, gets one MCP toolset per
MCP server of its user (that user's URL and token, checked to resolve to public addresses), and
serves only the participant the metadata names. A job whose metadata does not open is ended with
one log line naming the reason code and nothing else.

Environment:
    LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET   as for any LiveKit agent worker
    DISPATCH_KEYS      the dispatch keyring JSON (the same as the dispatch service's; docs/api.md §2)
    LKMCP_AGENT_NAME   agent name to register (explicit dispatch), default "mcp-agent"
    LKMCP_LLM          LLM, as a LiveKit Inference model string, default "openai/gpt-4.1-mini"
    LKMCP_STT          STT model string, default "deepgram/nova-3"
    LKMCP_TTS          TTS model string, default "cartesia/sonic-2"
    LKMCP_INSTRUCTIONS system instructions for the agent (optional)
    ALLOW_INSECURE_MCP_URLS  dev only, as on the server: "true" also allows http and loopback MCP
                       URLs (a local MCP server); never set it in production
    LKMCP_WORKER_LOAD  "cpu" (default: livekit-agents' own CPU-based load) or "ignore" (always
                       report 0.0; for a busy CI box or a dev machine, see worker/README.md)
    LKMCP_HEALTH_HOST  address of the worker's health/status HTTP server (default: livekit-agents'
                       default, all interfaces); "127.0.0.1" keeps it on loopback
    LKMCP_HEALTH_PORT  its port (default: livekit-agents' default, 8081 in `start` mode); 0 = a
                       free port, so several workers can run on one machine
    LKMCP_IDLE_PROCESSES  job processes kept warm (default: livekit-agents' default, one per CPU
                       in `start` mode)

The model strings go to ``AgentSession`` as they are, so any model LiveKit Inference serves can be
chosen without code changes; to use a provider plugin instead (e.g. ``livekit-plugins-openai``),
install it and replace the three strings in ``_session_models``.

Run (from the repository root, with the worker venv's Python, see worker/README.md):
    python -m livekit.agents start worker/python/agent.py --dev   (development: colored logs)
    python -m livekit.agents start worker/python/agent.py         (production: JSON logs)
or `lk agent dev` with the LiveKit CLI. (`python agent.py dev|start` still works, but
livekit-agents 1.8 deprecates its built-in CLI in favour of these two.)

Before it registers, the worker checks LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET (or the
--url/--api-key/--api-secret flags) and DISPATCH_KEYS, and exits with status 2 and one message
naming every problem: a worker without its keyring would register and then refuse every job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli, room_io

from livekit_mcp_dispatch import (
    DispatchGrant,
    DispatchMetadataError,
    JobCredentials,
    KeyringError,
    McpConnectionError,
    UnsafeMcpUrlError,
    RenewalClient,
    build_mcp_toolsets,
    open_dispatch_metadata,
    parse_dispatch_keyring,
)

logger = logging.getLogger("lkmcp.agent")

AGENT_NAME = os.environ.get("LKMCP_AGENT_NAME", "mcp-agent")
INSTRUCTIONS = os.environ.get(
    "LKMCP_INSTRUCTIONS",
    "You are a helpful voice assistant. Use the tools you have to answer the user's questions.",
)



def server_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``AgentServer`` keyword arguments from the environment; livekit-agents' defaults when unset.

    Raises ``ValueError`` naming every variable that is set to something unusable.
    """
    env = os.environ if env is None else env
    options: dict[str, Any] = {}
    problems: list[str] = []
    load = env.get("LKMCP_WORKER_LOAD", "").strip().lower()
    if load == "ignore":
        # The default load is this machine's CPU use; on a busy 2-core box it crosses the 0.7
        # threshold of `start` mode, the worker reports itself full and LiveKit drops the job.
        options["load_fnc"] = _no_load
    elif load not in ("", "cpu"):
        problems.append('LKMCP_WORKER_LOAD must be "cpu" or "ignore"')
    host = env.get("LKMCP_HEALTH_HOST", "").strip()
    if host:
        options["host"] = host
    for name, key, most in (("LKMCP_HEALTH_PORT", "port", 65535), ("LKMCP_IDLE_PROCESSES", "num_idle_processes", 64)):
        text = env.get(name, "").strip()
        if not text:
            continue
        if not text.isdigit() or int(text) > most:
            problems.append(f"{name} must be a whole number from 0 to {most}")
            continue
        options[key] = int(text)
    if problems:
        raise ValueError("; ".join(problems))
    return options


def _no_load() -> float:
    return 0.0


def startup_problems(
    env: Mapping[str, str] | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> list[str]:
    """Everything that would make this worker useless, checked before it registers.

    ``url``/``api_key``/``api_secret`` are what the worker will use (flags or environment);
    ``None`` means the environment. The messages name variables, never their values.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    url = env.get("LIVEKIT_URL", "") if url is None else url
    parsed = urlparse(url)
    if not url:
        problems.append("LIVEKIT_URL is not set (the LiveKit server; npm start's is ws://localhost:7880)")
    elif parsed.scheme not in ("ws", "wss", "http", "https") or not parsed.hostname:
        problems.append("LIVEKIT_URL must be a ws(s):// or http(s):// URL")
    if not (env.get("LIVEKIT_API_KEY", "") if api_key is None else api_key):
        problems.append("LIVEKIT_API_KEY is not set (npm start's LiveKit: devkey)")
    if not (env.get("LIVEKIT_API_SECRET", "") if api_secret is None else api_secret):
        problems.append("LIVEKIT_API_SECRET is not set")
    keys = env.get("DISPATCH_KEYS", "")
    if not keys.strip():
        problems.append(
            "DISPATCH_KEYS is not set (the dispatch keyring JSON the server seals with; locally the"
            " `dispatch` entry of DATA_DIR/keys.json, see worker/README.md)"
        )
    else:
        try:
            parse_dispatch_keyring(keys)
        except KeyringError as error:
            problems.append("DISPATCH_KEYS is not a valid keyring: " + "; ".join(error.problems))
    return problems


class CheckedAgentServer(AgentServer):
    """An ``AgentServer`` that refuses to start with a configuration that cannot serve a job.

    Both entries (``python -m livekit.agents start``, ``lk agent``, and the deprecated
    ``python agent.py start|dev``) end in ``run()``; livekit-agents would otherwise log the
    missing URL as "worker failed" and exit 0, or register without a keyring.
    """

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        # _ws_url/_api_key/_api_secret: what the CLI flags or the environment set (livekit-agents 1.8).
        problems = startup_problems(
            url=getattr(self, "_ws_url", None),
            api_key=getattr(self, "_api_key", None),
            api_secret=getattr(self, "_api_secret", None),
        )
        if problems and not unregistered:
            print("livekit-mcp-dispatch worker not started:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
            sys.stderr.flush()
            # Nothing has started yet; a SystemExit raised in the CLI's task would be reported
            # as an unretrieved task exception (a traceback) before the process exits.
            os._exit(2)
        await super().run(devmode=devmode, unregistered=unregistered)


server = CheckedAgentServer(**server_options())


def open_job(ctx: JobContext, keyring_json: str, agent_name: str | None = None) -> DispatchGrant | None:
    """Opens the job's metadata, or logs why not (code only, never claims) and returns None."""
    try:
        return open_dispatch_metadata(
            ctx.job.metadata or "", keyring_json, agent_name or AGENT_NAME, ctx.job.room.name
        )
    except DispatchMetadataError as error:
        logger.error(
            "dispatch metadata refused: %s; ending job %s without serving anyone",
            error.code,
            ctx.job.id,
            extra={"code": error.code},
        )
        return None
    except KeyringError as error:
        # A configuration error of this worker, not the job's: the problems name no key material.
        logger.error(
            "DISPATCH_KEYS is not a valid keyring (%s); ending job %s",
            "; ".join(error.problems),
            ctx.job.id,
            extra={"code": "bad_keyring"},
        )
        return None


def insecure_mcp_urls_allowed() -> bool:
    """Dev only (``ALLOW_INSECURE_MCP_URLS=true``, the server's variable): allow loopback MCP URLs."""
    return os.environ.get("ALLOW_INSECURE_MCP_URLS", "").lower() == "true"


async def setup_toolsets(grant: DispatchGrant) -> list[Any]:
    """Builds and connects the grant's toolsets; a server that fails is left out, with a log line."""
    insecure = insecure_mcp_urls_allowed()
    if insecure:
        logger.warning("ALLOW_INSECURE_MCP_URLS=true: loopback MCP URLs allowed (dev only)")
    try:
        toolsets = await asyncio.to_thread(build_mcp_toolsets, grant, allow_loopback_for_tests=insecure)
    except UnsafeMcpUrlError as error:
        logger.error("MCP URL refused: %s", error)
        return []
    ready = []
    for toolset in toolsets:
        try:
            # MCPToolset.setup is idempotent: the session's own call later is a no-op.
            await toolset.setup()
            ready.append(toolset)
            # Tool names only: never the URL's query, a header or a token.
            names = ", ".join(sorted(t.info.name for t in toolset.tools)) or "none"
            logger.info("MCP toolset %s ready, tools: %s", toolset.id, names)
        except (McpConnectionError, UnsafeMcpUrlError) as error:
            logger.error("MCP toolset %s unavailable: %s", toolset.id, error)
            await toolset.aclose()
    return ready


def _session_models() -> dict[str, str]:
    return {
        "llm": os.environ.get("LKMCP_LLM", "openai/gpt-4.1-mini"),
        "stt": os.environ.get("LKMCP_STT", "deepgram/nova-3"),
        "tts": os.environ.get("LKMCP_TTS", "cartesia/sonic-2"),
    }


async def prepare_job(ctx: JobContext) -> tuple[DispatchGrant, list[Any]] | None:
    """Everything a job does before its session: open the metadata (or end the job and return
    None), renew the credentials while the user's MCP toolsets connect (docs/api.md §9: no tool
    before that renewal answered 200), keep them renewed for the job's life, and close them when
    the job shuts down. ``session_ended`` (now or later) ends the job through ``ctx.shutdown``."""
    keys = os.environ.get("DISPATCH_KEYS", "")
    grant = open_job(ctx, keys)
    if grant is None:
        ctx.shutdown(reason="dispatch metadata refused")
        return None

    insecure = insecure_mcp_urls_allowed()
    if insecure:
        logger.warning("ALLOW_INSECURE_MCP_URLS=true: loopback MCP URLs allowed (dev only)")
    client = RenewalClient(keys, grant.agent_name, allow_insecure_for_tests=insecure)

    def end_job(reason: str) -> None:
        logger.info("ending job %s: %s", ctx.job.id, reason)
        ctx.shutdown(reason=reason)

    credentials = JobCredentials(
        ctx.job.metadata or "",
        grant,
        keyring_json=keys,
        client=client,
        on_session_ended=end_job,
        allow_loopback_for_tests=insecure,
    )

    async def close() -> None:
        await credentials.aclose()
        await client.aclose()

    ctx.add_shutdown_callback(close)
    toolsets = await credentials.start()
    if toolsets is None:
        return None
    return credentials.grant, toolsets


@server.rtc_session(agent_name=AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    """One job: open the metadata, connect the user's MCP servers, serve participant ``pid``."""
    prepared = await prepare_job(ctx)
    if prepared is None:
        return
    grant, toolsets = prepared
    session = AgentSession(**_session_models(), tools=toolsets)
    # Connected first: with a participant_identity, livekit-agents 1.8's RoomIO reads the local
    # participant while it starts, which fails on a room that is not connected yet.
    await ctx.connect()
    await session.start(
        agent=Agent(instructions=INSTRUCTIONS),
        room=ctx.room,
        # Linked to this one participant: nobody else in the room is heard or answered.
        room_options=room_io.RoomOptions(participant_identity=grant.participant_identity),
    )


if __name__ == "__main__":
    cli.run_app(server)
