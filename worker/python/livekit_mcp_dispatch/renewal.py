"""The renewal client: ``POST /v1/worker/credentials`` (docs/api.md §9).

One call renews one job's sealed metadata: a fresh worker assertion per attempt (a ``jti`` is
single use), a timeout per attempt, redirects never followed, retries with full jitter on 429,
5xx and network failures (at least ``Retry-After`` when the answer names one), never on another
4xx. Errors carry the answer's status and problem ``code`` only, never a token or the metadata.

Needs ``httpx2`` (the MCP SDK's HTTP client, already in the worker's requirements), imported when
the first client is made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .assertion import make_worker_assertion


class RenewalError(Exception):
    """A renewal did not give new metadata. ``code`` is the answer's problem code (or ours:
    ``unavailable``, ``bad_answer``, ``unsafe_refresh_url``), ``status`` its HTTP status."""

    def __init__(self, code: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.code}]"


class SessionEndedError(RenewalError):
    """403 ``session_ended``: the session is over; the worker ends the job."""


class RenewalRefusedError(RenewalError):
    """401 (``invalid_worker_assertion`` / ``invalid_metadata``) or another 4xx: not retried."""


class RenewalUnavailableError(RenewalError):
    """429 / 5xx / network failures, still so after the last retry."""


@dataclasses.dataclass(frozen=True)
class RenewalPolicy:
    """The renewal knobs (worker/README.md)."""

    #: Timeout of one attempt (connect, send, read), seconds.
    timeout_seconds: float = 10.0
    #: Attempts per renewal, the first included.
    attempts: int = 4
    #: Full-jitter backoff: attempt n waits random() * min(max_delay, base_delay * 2**n).
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    #: A longer ``Retry-After`` is waited only this long (the job cannot wait forever).
    max_retry_after_seconds: float = 30.0


@dataclasses.dataclass(frozen=True)
class RenewalAnswer:
    """A 200: the new sealed metadata (secret; open it like the first) and the servers left out."""

    metadata: str = dataclasses.field(repr=False)
    unavailable: tuple[Mapping[str, Any], ...] = ()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _problem_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


class RenewalClient:
    """Renews sealed metadata for the jobs of one worker (one keyring, one agent name)."""

    def __init__(
        self,
        keyring_json: str | Mapping[str, Any],
        agent_name: str,
        *,
        policy: RenewalPolicy | None = None,
        allow_insecure_for_tests: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        transport: Any = None,
    ) -> None:
        self._keyring = keyring_json
        self._agent_name = agent_name
        self.policy = policy or RenewalPolicy()
        self._insecure = allow_insecure_for_tests
        self._sleep = sleep
        self._rng = rng
        self._transport = transport
        self._http: Any = None

    def _client(self) -> Any:
        if self._http is None:
            import httpx2

            self._http = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.policy.timeout_seconds),
                follow_redirects=False,
                **({"transport": self._transport} if self._transport is not None else {}),
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _check_url(self, refresh_url: str) -> None:
        parts = urlsplit(refresh_url)
        allowed = ("https", "http") if self._insecure else ("https",)
        if parts.scheme not in allowed or not parts.hostname or parts.username is not None:
            raise RenewalRefusedError("unsafe_refresh_url", None, "The metadata's refresh_url is not an https URL.")

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before attempt ``attempt + 1`` (full jitter, at least ``Retry-After``)."""
        jitter = self._rng() * min(self.policy.max_delay_seconds, self.policy.base_delay_seconds * 2**attempt)
        if retry_after is None:
            return jitter
        return max(min(retry_after, self.policy.max_retry_after_seconds), jitter)

    async def renew(
        self,
        metadata: str,
        refresh_url: str,
        sid: str,
        rejected: Sequence[Mapping[str, Any]] = (),
    ) -> RenewalAnswer:
        """One renewal: raises :class:`SessionEndedError`, :class:`RenewalRefusedError` or
        :class:`RenewalUnavailableError`, else returns the 200's metadata."""
        self._check_url(refresh_url)
        body: dict[str, Any] = {"metadata": metadata}
        if rejected:
            body["rejected"] = [dict(r) for r in rejected]
        last: RenewalError | None = None
        last_retry_after: float | None = None
        for attempt in range(self.policy.attempts):
            if attempt > 0:
                await self._sleep(self.backoff(attempt - 1, last_retry_after))
            last_retry_after: float | None = None
            assertion = make_worker_assertion(self._keyring, self._agent_name, refresh_url, sid)
            failed = False
            try:
                response = await self._client().post(
                    refresh_url,
                    json=body,
                    headers={"authorization": f"Bearer {assertion}", "accept": "application/json"},
                )
            except Exception:  # noqa: BLE001 - any transport failure (timeout, refused, reset) is retried
                failed = True
            if failed:
                # Raised (or kept) outside the except block: nothing is chained onto it.
                last = RenewalUnavailableError("unavailable", None, "The credentials endpoint could not be reached.")
                continue
            status = response.status_code
            code = _problem_code(response)
            if status == 200:
                answer = self._answer(response)
                if answer is not None:
                    return answer
                last = RenewalUnavailableError("bad_answer", status, "The credentials endpoint answered 200 without metadata.")
                continue
            if status == 403 and code == "session_ended":
                raise SessionEndedError("session_ended", status, "The session has ended.")
            if status == 429 or status >= 500:
                last_retry_after = retry_after_seconds(response.headers.get("retry-after"))
                last = RenewalUnavailableError(code or "unavailable", status, f"The credentials endpoint answered HTTP {status}.")
                continue
            raise RenewalRefusedError(code or "refused", status, f"The credentials endpoint refused the renewal (HTTP {status}).")
        assert last is not None
        raise last

    @staticmethod
    def _answer(response: Any) -> RenewalAnswer | None:
        try:
            body = json.loads(response.content)
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), str) or not body["metadata"]:
            return None
        unavailable = body.get("unavailable")
        items = tuple(u for u in unavailable if isinstance(u, dict)) if isinstance(unavailable, list) else ()
        return RenewalAnswer(metadata=body["metadata"], unavailable=items)
