"""A stand-in of ``POST /v1/worker/credentials`` (docs/api.md §9) on 127.0.0.1, for the tests.

A real HTTP server in a thread. It checks what the real endpoint checks first, its own way (not
with the library under test's code): the assertion's exact header, its HMAC under the HKDF key
(computed here with ``cryptography``'s HKDF), ``aud`` = its own URL, a lifetime of at most 60 s,
an unused ``jti``, then opens the metadata and checks ``sub`` = its ``sid``; a failure is 401
``invalid_worker_assertion`` / ``invalid_metadata``. Then it answers with the next scripted answer:
``"renew"`` (200 with new metadata sealed from ``servers``) or ``(status, code, headers)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import livekit_mcp_dispatch as lkmd


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hkdf_key(key: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"livekit-mcp-dispatch worker assertion v1"
    ).derive(key)


def seal(keyring: dict[str, Any], claims: dict[str, Any]) -> str:
    """Seals claims as the server does (dir + A256GCM, the contract's exact header), with jwcrypto."""
    from jwcrypto import jwe, jwk

    kid = keyring["current"]
    header = json.dumps(
        {"alg": "dir", "enc": "A256GCM", "kid": kid, "typ": "lk-mcp-dispatch+jwt"}, separators=(",", ":")
    )
    token = jwe.JWE(json.dumps(claims).encode(), protected=header)
    token.add_recipient(jwk.JWK(kty="oct", k=keyring["keys"][kid]))
    return token.serialize(compact=True)


def claims_for(
    *, agent: str, room: str, sid: str, refresh_url: str, servers: list[dict[str, Any]], refresh_in: float = 300, ttl: float = 600
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "livekit-mcp-dispatch",
        "aud": agent,
        "sub": "alice",
        "tid": "acme",
        "room": room,
        "pid": "alice",
        "sid": sid,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "refresh_at": now + refresh_in,
        "refresh_url": refresh_url,
        "mcp_servers": servers,
    }


class StandIn:
    """The endpoint. ``script``: answers in order (then ``"renew"``); ``servers``: what a 200 seals."""

    def __init__(self, keyring: dict[str, Any], agent: str, room: str) -> None:
        self.keyring, self.agent, self.room = keyring, agent, room
        self.script: list[Any] = []
        self.servers: list[dict[str, Any]] = []
        self.refresh_in: float = 300
        self.requests: list[dict[str, Any]] = []
        self.seen_jti: set[str] = set()
        self.unavailable: list[dict[str, Any]] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, payload, headers = stand_in.answer(self.headers.get("authorization", ""), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                ctype = "application/json" if status == 200 else "application/problem+json"
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/worker/credentials"
        self.sid = "sid-" + secrets.token_urlsafe(16)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def metadata(self, servers: list[dict[str, Any]] | None = None, **kw: Any) -> str:
        return seal(
            self.keyring,
            claims_for(
                agent=self.agent,
                room=self.room,
                sid=self.sid,
                refresh_url=self.url,
                servers=self.servers if servers is None else servers,
                **{"refresh_in": self.refresh_in, **kw},
            ),
        )

    def _verify(self, authorization: str) -> dict[str, Any] | None:
        if not authorization.startswith("Bearer "):
            return None
        parts = authorization[7:].split(".")
        if len(parts) != 3:
            return None
        try:
            header_text = unb64(parts[0]).decode()
            header = json.loads(header_text)
            claims = json.loads(unb64(parts[1]))
        except ValueError:
            return None
        if header_text != json.dumps({"alg": "HS256", "kid": header.get("kid"), "typ": "lk-mcp-worker+jwt"}, separators=(",", ":")):
            return None
        key = self.keyring["keys"].get(header["kid"])
        if key is None:
            return None
        mac = hmac.new(hkdf_key(unb64(key)), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(b64(mac), parts[2]):
            return None
        now = time.time()
        if claims.get("aud") != self.url or claims.get("iss") != self.agent:
            return None
        if not (claims["exp"] - claims["iat"] <= 60 and claims["exp"] > now and claims["iat"] <= now + 30):
            return None
        with self._lock:
            if claims["jti"] in self.seen_jti:
                return None
            self.seen_jti.add(claims["jti"])
        return claims

    def answer(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.delay:
            time.sleep(self.delay)
        claims = self._verify(authorization)
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        record = {"claims": claims, "body": request}
        with self._lock:
            self.requests.append(record)
            step = self.script.pop(0) if self.script else "renew"
        if claims is None:
            return 401, {"code": "invalid_worker_assertion"}, {}
        try:
            grant = lkmd.open_dispatch_metadata(
                request.get("metadata", ""), self.keyring, self.agent, self.room, now=claims["iat"]
            )
        except lkmd.DispatchMetadataError as error:
            return 401, {"code": "invalid_metadata", "reason": error.code}, {}
        if grant.sid != claims["sub"]:
            return 401, {"code": "invalid_metadata"}, {}
        if step == "renew":
            answer: dict[str, Any] = {"metadata": self.metadata()}
            if self.unavailable:
                answer["unavailable"] = self.unavailable
            return 200, answer, {}
        status, code, headers = step
        return status, {"type": "about:blank", "status": status, "code": code}, headers
