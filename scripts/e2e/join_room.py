"""Joins a LiveKit room as an app user would (Python `livekit` rtc client) and reports on stdout.

The participant token comes from the environment (LK_TOKEN), never from argv, so it does not
show in `ps`. Prints one JSON object per line:
  {"event":"connected","identity":..,"room":..,"room_sid":..,"remote":[identities]}
  {"event":"participant_joined","identity":..,"kind":..}
  {"event":"left"}
Stays in the room until stdin closes or SIGTERM/SIGINT arrives, then disconnects cleanly (so the
server sees participant_left and, once the room is empty, room_finished).

    LK_URL=ws://127.0.0.1:PORT LK_TOKEN=... python scripts/e2e/join_room.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading

from livekit import rtc


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main() -> int:
    url = os.environ["LK_URL"]
    token = os.environ["LK_TOKEN"]
    room = rtc.Room()

    @room.on("participant_connected")
    def _joined(p: rtc.RemoteParticipant) -> None:
        emit(event="participant_joined", identity=p.identity, kind=int(p.kind))

    @room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        emit(event="participant_left", identity=p.identity)

    try:
        await room.connect(url, token, options=rtc.RoomOptions(auto_subscribe=False))
    except Exception as error:  # the message carries no token
        emit(event="error", message=str(error))
        return 1
    sid = await room.sid
    emit(
        event="connected",
        identity=room.local_participant.identity,
        room=room.name,
        room_sid=sid,
        remote=[p.identity for p in room.remote_participants.values()],
    )

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # stdin closing (the driver ends the pipe) is the other way to say "leave". A daemon
    # thread, not the loop's executor: asyncio.run would wait for it at exit.
    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    await stop.wait()
    await room.disconnect()
    emit(event="left")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
