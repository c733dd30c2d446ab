"""Minimal livekit-agents worker for the e2e groundwork probe.

Registers under an agent name (explicit dispatch), and for each job writes one JSON line to
$PROBE_OUT with the job id, room, agent name and the length and sha256 of ctx.job.metadata (the
metadata itself may be a sealed token: never printed), joins the room over loopback WebRTC,
then ends the job.

    LIVEKIT_URL=ws://127.0.0.1:PORT LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \
    PROBE_AGENT_NAME=probe-agent PROBE_OUT=/tmp/probe.jsonl \
    python scripts/e2e/probe_worker.py start
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from livekit.agents import AgentServer, JobContext, cli

AGENT_NAME = os.environ.get("PROBE_AGENT_NAME", "probe-agent")
OUT = os.environ["PROBE_OUT"]

# load_fnc: the default load is the machine's CPU use; on a busy CI box (or during the e2e's
# own start-up) it reaches the threshold and the worker marks itself full, so LiveKit answers
# "no worker available" and the job is lost. The probe always takes the job.
# host/port: the worker's health HTTP server otherwise binds every interface, on 8081 in
# `start` mode (a fixed port that parallel runs would fight over).
server = AgentServer(
    num_idle_processes=1,
    load_fnc=lambda: 0.0,
    host="127.0.0.1",
    port=0,
)


@server.rtc_session(agent_name=AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    metadata = ctx.job.metadata or ""
    await ctx.connect()
    record = {
        "job_id": ctx.job.id,
        "room": ctx.job.room.name,
        "agent_name": ctx.job.agent_name,
        "metadata_len": len(metadata),
        "metadata_sha256": hashlib.sha256(metadata.encode()).hexdigest(),
        "agent_identity": ctx.room.local_participant.identity,
        "connected_at": time.time(),
    }
    with open(OUT, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    ctx.shutdown("probe done")


if __name__ == "__main__":
    cli.run_app(server)
