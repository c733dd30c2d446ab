"""The renewal client and JobCredentials against a real HTTP stand-in of POST /v1/worker/credentials
(tests/standin.py) and the real MCP test server (docs/api.md §3, §9)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standin import StandIn

import livekit_mcp_dispatch as lkmd
from livekit_mcp_dispatch.live import JobCredentials
from livekit_mcp_dispatch.renewal import (
    RenewalClient,
    RenewalPolicy,
    RenewalRefusedError,
    RenewalUnavailableError,
    SessionEndedError,
    retry_after_seconds,
)

AGENT, ROOM = "mcp-agent", "lk-mcp-acme-renewal"


def _keyring() -> dict[str, Any]:
    import secrets

    return {"current": "k1", "keys": {"k1": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()}}


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn(_keyring(), AGENT, ROOM)
    try:
        yield server
    finally:
        server.close()


class Sleeps:
    """Records the backoff instead of waiting it."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def _client(stand_in: StandIn, sleeps: Sleeps | None = None, **policy: Any) -> RenewalClient:
    return RenewalClient(
        stand_in.keyring,
        AGENT,
        policy=RenewalPolicy(**policy),
        allow_insecure_for_tests=True,
        sleep=sleeps or Sleeps(),
    )


async def _renew(client: RenewalClient, stand_in: StandIn, metadata: str | None = None, **kw: Any) -> Any:
    try:
        return await client.renew(metadata or stand_in.metadata(), stand_in.url, stand_in.sid, **kw)
    finally:
        await client.aclose()


def _server(name: str, url: str, token: str | None, **extra: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"name": name, "url": url, "transport": "streamable_http", "headers": headers, "auth": "oauth", **extra}


class TestRenewalClient:
    def test_a_200_gives_new_metadata_for_a_verified_assertion(self, stand_in: StandIn) -> None:
        # Prepare
        stand_in.servers = [_server("notes", "https://mcp.example.com/mcp", "tok-new")]
        stand_in.unavailable = [{"name": "crm", "status": 409, "code": "mcp_reauth_required"}]

        # Act
        answer = asyncio.run(_renew(_client(stand_in), stand_in, rejected=[{"name": "notes", "status": 401}]))

        # Assess
        grant = lkmd.open_dispatch_metadata(answer.metadata, stand_in.keyring, AGENT, ROOM)
        assert grant.sid == stand_in.sid
        assert grant.mcp_servers[0].headers == {"Authorization": "Bearer tok-new"}
        assert answer.unavailable == ({"name": "crm", "status": 409, "code": "mcp_reauth_required"},)
        [request] = stand_in.requests
        claims = request["claims"]
        assert (claims["iss"], claims["aud"], claims["sub"]) == (AGENT, stand_in.url, stand_in.sid)
        assert claims["exp"] - claims["iat"] == 60
        assert request["body"]["rejected"] == [{"name": "notes", "status": 401}]
        assert "tok-new" not in repr(answer)

    @pytest.mark.parametrize(
        "failure", [(503, "store_unavailable", {"Retry-After": "2"}), (429, "rate_limited", {"Retry-After": "3"})]
    )
    def test_429_and_5xx_are_retried_honouring_retry_after_with_a_fresh_jti(
        self, stand_in: StandIn, failure: tuple[int, str, dict[str, str]]
    ) -> None:
        # Prepare
        stand_in.script = [failure, failure]
        sleeps = Sleeps()

        # Act
        answer = asyncio.run(_renew(_client(stand_in, sleeps), stand_in))

        # Assess
        assert answer.metadata
        assert len(stand_in.requests) == 3
        assert len({r["claims"]["jti"] for r in stand_in.requests}) == 3
        assert sleeps.waited == [float(failure[2]["Retry-After"])] * 2

    def test_5xx_without_retry_after_backs_off_with_jitter_and_gives_up(self, stand_in: StandIn) -> None:
        # Prepare
        stand_in.script = [(502, "bad_gateway", {})] * 3
        sleeps = Sleeps()

        # Act
        with pytest.raises(RenewalUnavailableError) as caught:
            asyncio.run(_renew(_client(stand_in, sleeps, attempts=3, base_delay_seconds=1, max_delay_seconds=1.5), stand_in))

        # Assess
        assert (caught.value.status, caught.value.code) == (502, "bad_gateway")
        assert len(stand_in.requests) == 3
        assert len(sleeps.waited) == 2
        assert 0 <= sleeps.waited[0] <= 1 and 0 <= sleeps.waited[1] <= 1.5

    def test_a_retry_after_longer_than_the_cap_is_capped(self, stand_in: StandIn) -> None:
        stand_in.script = [(503, "store_unavailable", {"Retry-After": "3600"})]
        sleeps = Sleeps()
        asyncio.run(_renew(_client(stand_in, sleeps, max_retry_after_seconds=7), stand_in))
        assert sleeps.waited == [7]

    def test_session_ended_is_not_retried(self, stand_in: StandIn) -> None:
        stand_in.script = [(403, "session_ended", {})]
        with pytest.raises(SessionEndedError):
            asyncio.run(_renew(_client(stand_in), stand_in))
        assert len(stand_in.requests) == 1

    @pytest.mark.parametrize(
        ("status", "code"),
        [(401, "invalid_metadata"), (401, "invalid_worker_assertion"), (400, "validation_failed"), (403, "forbidden"), (404, "not_found")],
    )
    def test_other_4xx_are_refusals_never_retried(self, stand_in: StandIn, status: int, code: str) -> None:
        stand_in.script = [(status, code, {"Retry-After": "1"})]
        with pytest.raises(RenewalRefusedError) as caught:
            asyncio.run(_renew(_client(stand_in), stand_in))
        assert (caught.value.status, caught.value.code) == (status, code)
        assert len(stand_in.requests) == 1

    def test_the_stand_in_refuses_an_assertion_made_with_another_keyring(self, stand_in: StandIn) -> None:
        client = RenewalClient(_keyring(), AGENT, allow_insecure_for_tests=True, sleep=Sleeps())
        with pytest.raises(RenewalRefusedError) as caught:
            asyncio.run(_renew(client, stand_in))
        assert (caught.value.status, caught.value.code) == (401, "invalid_worker_assertion")

    def test_metadata_of_another_session_is_refused_by_the_stand_in(self, stand_in: StandIn) -> None:
        client = _client(stand_in)
        with pytest.raises(RenewalRefusedError) as caught:
            asyncio.run(client.renew(stand_in.metadata(), stand_in.url, "sid-other"))
        assert caught.value.code == "invalid_metadata"

    def test_an_unreachable_endpoint_and_a_slow_one_are_retried_then_unavailable(self, stand_in: StandIn) -> None:
        # Prepare: a port nobody listens on, then an endpoint slower than the timeout.
        client = _client(stand_in, attempts=2, timeout_seconds=0.3)
        with pytest.raises(RenewalUnavailableError):
            asyncio.run(client.renew(stand_in.metadata(), "http://127.0.0.1:9/v1/worker/credentials", stand_in.sid))
        stand_in.delay = 1.0
        started = time.monotonic()
        with pytest.raises(RenewalUnavailableError) as caught:
            asyncio.run(_renew(_client(stand_in, attempts=2, timeout_seconds=0.3), stand_in))
        assert caught.value.code == "unavailable"
        assert time.monotonic() - started < 1.9

    def test_only_https_refresh_urls_outside_tests(self, stand_in: StandIn) -> None:
        client = RenewalClient(stand_in.keyring, AGENT)
        with pytest.raises(RenewalRefusedError) as caught:
            asyncio.run(client.renew(stand_in.metadata(), stand_in.url, stand_in.sid))
        assert caught.value.code == "unsafe_refresh_url"
        assert stand_in.requests == []

    def test_errors_quote_no_token_or_metadata(self, stand_in: StandIn) -> None:
        metadata = stand_in.metadata(servers=[_server("notes", "https://mcp.example.com/mcp", "tok-secret")])
        stand_in.script = [(401, "invalid_metadata", {})]
        with pytest.raises(RenewalRefusedError) as caught:
            asyncio.run(_renew(_client(stand_in), stand_in, metadata))
        text = str(caught.value) + repr(caught.value)
        assert metadata not in text and "tok-secret" not in text and "Bearer" not in text
        assert caught.value.__cause__ is None and caught.value.__context__ is None

    def test_retry_after_as_an_http_date(self) -> None:
        assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
        assert retry_after_seconds("soon") is None
        assert retry_after_seconds("5") == 5


# -- JobCredentials: real toolsets against the real MCP server ------------------------------------


class Job:
    def __init__(self) -> None:
        self.ended: list[str] = []

    def shutdown(self, reason: str) -> None:
        self.ended.append(reason)


def _credentials(stand_in: StandIn, metadata: str, job: Job, **kw: Any) -> JobCredentials:
    grant = lkmd.open_dispatch_metadata(metadata, stand_in.keyring, AGENT, ROOM)
    return JobCredentials(
        metadata,
        grant,
        keyring_json=stand_in.keyring,
        client=_client(stand_in, kw.pop("sleeps", None), **kw.pop("policy", {})),
        on_session_ended=job.shutdown,
        allow_loopback_for_tests=True,
        min_renewal_interval_seconds=kw.pop("min_interval", 0.5),
        **kw,
    )


async def _call(toolset: Any, name: str, args: dict[str, Any] | None = None) -> Any:
    tool = next(t for t in toolset.tools if t.info.name == name)
    return await tool(raw_arguments=args or {})


class TestJobCredentials:
    def test_start_renews_first_and_offers_the_renewed_tokens_only(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        # Prepare: the sealed token is revoked; token mode's second server comes without headers.
        control = mcp_server["control"]
        old = control({"op": "issue", "user": "alice"})["token"]
        control({"op": "revoke", "token": old})
        new = control({"op": "issue", "user": "alice"})["token"]
        sealed = stand_in.metadata(
            servers=[_server("notes", mcp_server["url"], old), _server("more", mcp_server["url"], None)]
        )
        stand_in.servers = [_server("notes", mcp_server["url"], new), _server("more", mcp_server["url"], new)]
        job = Job()

        async def go() -> tuple[list[str], list[Any]]:
            credentials = _credentials(stand_in, sealed, job)
            toolsets = await credentials.start()
            assert toolsets is not None
            try:
                return [t.id for t in toolsets], [await _call(t, "whoami") for t in toolsets]
            finally:
                await credentials.aclose()

        # Act
        ids, answers = asyncio.run(go())

        # Assess
        assert sorted(ids) == ["mcp_more", "mcp_notes"]
        assert all("user:alice" in str(a) for a in answers)
        assert len(stand_in.requests) == 1 and job.ended == []

    def test_start_reports_how_long_the_renewal_and_the_connect_took(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        # Prepare: a slow renewal endpoint; the sealed server connects meanwhile.
        token = mcp_server["control"]({"op": "issue", "user": "alice"})["token"]
        sealed = stand_in.metadata(servers=[_server("notes", mcp_server["url"], token)])
        stand_in.servers = [_server("notes", mcp_server["url"], token)]
        stand_in.delay = 0.4
        job = Job()

        async def go() -> dict[str, int]:
            credentials = _credentials(stand_in, sealed, job)
            assert await credentials.start()
            await credentials.aclose()
            return credentials.start_timings

        # Act
        t = asyncio.run(go())

        # Assess: offered only after the renewal; what it added is ready minus the sealed connect.
        assert t["renewal"] >= 400 and t["ready"] >= t["renewal"]
        assert t["renewal_added"] == t["ready"] - t["sealed_connected"] >= 0

    def test_session_ended_at_start_offers_nothing_and_ends_the_job(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        stand_in.script = [(403, "session_ended", {})]
        sealed = stand_in.metadata(servers=[_server("notes", mcp_server["url"], mcp_server["tokens"]["alice"])])
        job = Job()

        async def go() -> Any:
            credentials = _credentials(stand_in, sealed, job)
            return await credentials.start(), credentials.toolsets

        toolsets, kept = asyncio.run(go())
        assert toolsets is None and kept == {}
        assert job.ended == ["session ended"]

    def test_a_refused_start_renewal_offers_nothing(self, stand_in: StandIn, mcp_server: dict[str, Any]) -> None:
        stand_in.script = [(401, "invalid_metadata", {})]
        sealed = stand_in.metadata(servers=[_server("notes", mcp_server["url"], mcp_server["tokens"]["alice"])])
        job = Job()
        assert asyncio.run(_credentials(stand_in, sealed, job).start()) is None
        assert job.ended == ["credentials renewal refused"]

    def test_5xx_at_start_uses_the_sealed_credentials_until_their_expires_at(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        # Prepare: every attempt fails; one server's sealed token has expired already.
        stand_in.script = [(503, "store_unavailable", {})] * 3
        token = mcp_server["tokens"]["alice"]
        sealed = stand_in.metadata(
            servers=[
                _server("notes", mcp_server["url"], token, expires_at=time.time() + 600),
                _server("stale", mcp_server["url"], token, expires_at=time.time() - 1),
            ]
        )
        job = Job()

        async def go() -> list[str]:
            credentials = _credentials(stand_in, sealed, job, policy={"attempts": 3})
            toolsets = await credentials.start()
            assert toolsets is not None
            try:
                assert "user:alice" in str(await _call(toolsets[0], "whoami"))
                return [t.id for t in toolsets]
            finally:
                await credentials.aclose()

        assert asyncio.run(go()) == ["mcp_notes"]
        assert len(stand_in.requests) == 3 and job.ended == []

    @pytest.mark.parametrize(("refusal", "transport"), [("revoke", "streamable_http"), ("scope", "streamable_http"), ("revoke", "sse")])
    def test_a_refused_token_renews_swaps_headers_in_place_and_retries_the_call_once(
        self, stand_in: StandIn, mcp_server: dict[str, Any], refusal: str, transport: str
    ) -> None:
        # Prepare
        control = mcp_server["control"]
        first = control({"op": "issue", "user": "alice"})["token"]
        second = control({"op": "issue", "user": "alice"})["token"]
        url = mcp_server["sseUrl"] if transport == "sse" else mcp_server["url"]

        def grant(token: str) -> dict[str, Any]:
            return {**_server("notes", url, token), "transport": transport}

        stand_in.servers = [grant(first)]
        job = Job()

        async def go() -> tuple[Any, bool, dict[str, Any]]:
            credentials = _credentials(stand_in, stand_in.metadata(), job, client_session_timeout_seconds=5)
            [toolset] = await credentials.start() or []
            server = toolset._mcp_server
            try:
                # The MCP server stops taking the first token; the endpoint now seals the second.
                if refusal == "revoke":
                    control({"op": "revoke", "token": first})
                else:
                    control({"op": "scope", "token": first, "scope": "notes:read notes:write"})
                stand_in.servers = [grant(second)]
                result = await _call(toolset, "notes_search", {"query": "milk"})
                same = toolset is credentials.toolsets["notes"] and server is toolset._mcp_server
                return result, same, dict(server.headers)
            finally:
                await credentials.aclose()

        # Act
        result, same_objects, headers = asyncio.run(go())

        # Assess
        assert "alice: buy milk" in str(result)
        assert same_objects
        assert headers == {"Authorization": f"Bearer {second}"}
        assert len(stand_in.requests) == 2
        rejected = stand_in.requests[1]["body"]["rejected"]
        if refusal == "revoke":
            assert rejected == [{"name": "notes", "status": 401}]
        else:
            assert rejected == [{"name": "notes", "status": 403, "scope": "notes:read notes:write"}]

    def test_calls_refused_at_the_same_time_share_one_renewal_and_each_is_retried(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        control = mcp_server["control"]
        first = control({"op": "issue", "user": "alice"})["token"]
        second = control({"op": "issue", "user": "alice"})["token"]
        stand_in.servers = [_server("notes", mcp_server["url"], first)]

        async def go() -> list[Any]:
            credentials = _credentials(stand_in, stand_in.metadata(), Job())
            [toolset] = await credentials.start() or []
            control({"op": "revoke", "token": first})
            stand_in.servers = [_server("notes", mcp_server["url"], second)]
            stand_in.delay = 0.2
            try:
                return list(await asyncio.gather(*(_call(toolset, "whoami") for _ in range(4))))
            finally:
                await credentials.aclose()

        answers = asyncio.run(go())
        assert all("user:alice" in str(a) for a in answers) and len(answers) == 4
        assert len(stand_in.requests) == 2

    def test_a_call_still_refused_after_the_renewal_fails_without_a_second_retry(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        control = mcp_server["control"]
        token = control({"op": "issue", "user": "alice"})["token"]
        stand_in.servers = [_server("notes", mcp_server["url"], token)]

        async def go() -> None:
            credentials = _credentials(stand_in, stand_in.metadata(), Job())
            [toolset] = await credentials.start() or []
            control({"op": "revoke", "token": token})
            try:
                await _call(toolset, "whoami")
            finally:
                await credentials.aclose()

        with pytest.raises(Exception) as caught:
            asyncio.run(go())
        assert token not in str(caught.value)
        assert len(stand_in.requests) == 2  # the start renewal and one for the rejection

    def test_servers_gone_from_the_renewal_are_closed_and_refresh_at_renews(
        self, stand_in: StandIn, mcp_server: dict[str, Any]
    ) -> None:
        # Prepare: refresh_at one second ahead.
        token = mcp_server["tokens"]["alice"]
        stand_in.servers = [_server("notes", mcp_server["url"], token), _server("legacy", mcp_server["url"], token)]
        stand_in.refresh_in = 1
        job = Job()

        async def go() -> tuple[list[str], list[str], int, Any]:
            credentials = _credentials(stand_in, stand_in.metadata(), job)
            toolsets = await credentials.start() or []
            legacy = credentials.toolsets["legacy"]
            before = sorted(credentials.toolsets)
            stand_in.servers = [_server("notes", mcp_server["url"], token)]
            stand_in.refresh_in = 300
            for _ in range(80):
                await asyncio.sleep(0.1)
                if credentials.renewals >= 2:
                    break
            after = sorted(credentials.toolsets)
            try:
                return before, after, credentials.renewals, (legacy.tools, len(toolsets))
            finally:
                await credentials.aclose()

        before, after, renewals, (legacy_tools, offered) = asyncio.run(go())
        assert before == ["legacy", "notes"] and offered == 2
        assert renewals == 2
        assert after == ["notes"]
        assert legacy_tools == []

    def test_session_ended_at_refresh_closes_the_toolsets_and_ends_the_job(
        self, stand_in: StandIn, mcp_server: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        token = mcp_server["tokens"]["alice"]
        stand_in.servers = [_server("notes", mcp_server["url"], token)]
        stand_in.refresh_in = 1
        job = Job()

        async def go() -> tuple[dict[str, Any], list[Any]]:
            credentials = _credentials(stand_in, stand_in.metadata(), job)
            [toolset] = await credentials.start() or []
            stand_in.script = [(403, "session_ended", {})]
            for _ in range(80):
                await asyncio.sleep(0.1)
                if job.ended:
                    break
            return credentials.toolsets, toolset.tools

        with caplog.at_level(logging.INFO):
            kept, tools = asyncio.run(go())
        assert job.ended == ["session ended"]
        assert kept == {} and tools == []
        assert token not in caplog.text

    def test_renewals_are_single_flight(self, stand_in: StandIn) -> None:
        stand_in.delay = 0.3
        stand_in.servers = []
        job = Job()

        async def go() -> list[bool]:
            credentials = _credentials(stand_in, stand_in.metadata(), job)
            await credentials.start()
            try:
                return list(await asyncio.gather(*(credentials.renew() for _ in range(5))))
            finally:
                await credentials.aclose()

        assert asyncio.run(go()) == [True] * 5
        assert len(stand_in.requests) == 2  # the start renewal, then one for all five callers

    def test_metadata_without_renewal_claims_uses_the_sealed_credentials(
        self, stand_in: StandIn, mcp_server: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        from standin import claims_for, seal

        claims = claims_for(agent=AGENT, room=ROOM, sid="x", refresh_url="x", servers=[_server("notes", mcp_server["url"], mcp_server["tokens"]["alice"])])
        for name in ("sid", "refresh_url", "refresh_at"):
            del claims[name]

        async def go() -> list[str]:
            credentials = _credentials(stand_in, seal(stand_in.keyring, claims), Job())
            try:
                return [t.id for t in await credentials.start() or []]
            finally:
                await credentials.aclose()

        with caplog.at_level(logging.WARNING):
            assert asyncio.run(go()) == ["mcp_notes"]
        assert stand_in.requests == []
        assert "without renewal" in caplog.text


def test_problem_json_of_the_stand_in_is_what_the_client_reads(stand_in: StandIn) -> None:
    # Guards the stand-in itself: the code it answers is the one the client reports.
    stand_in.script = [(403, "session_ended", {})]
    with pytest.raises(SessionEndedError) as caught:
        asyncio.run(_renew(_client(stand_in), stand_in))
    assert caught.value.code == "session_ended" and json.dumps(stand_in.requests[0]["body"])
