"""What a job may do, opened from its dispatch metadata: the grant and its MCP servers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Literal


@dataclasses.dataclass(frozen=True)
class McpServerGrant:
    """One MCP server of the grant. ``headers`` are secret and hidden from ``repr``."""

    name: str
    url: str
    transport: Literal["streamable_http", "sse"]
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    allowed_tools: tuple[str, ...] | None = None
    #: How the credential in ``headers`` was obtained: ``static``, ``oauth``, ``user_token``, ``none``.
    auth: str | None = None
    #: Epoch seconds when this server's credential stops working (docs/api.md §3).
    expires_at: float | None = None


@dataclasses.dataclass(frozen=True)
class DispatchGrant:
    """What a job may do, opened from its dispatch metadata."""

    user_id: str
    tenant_id: str
    #: The only participant this job serves.
    participant_identity: str
    room_name: str
    agent_name: str
    mcp_servers: tuple[McpServerGrant, ...] = dataclasses.field(repr=False)
    #: The app's own agent metadata string, if it sent one (not secret).
    client: str | None
    expires_at: datetime
    jti: str
    #: The session id the renewal endpoint knows the job by (docs/api.md §9); None from an older server.
    sid: str | None = None
    #: Epoch seconds after which the worker should renew.
    refresh_at: float | None = None
    #: The absolute URL of ``POST /v1/worker/credentials``.
    refresh_url: str | None = None
