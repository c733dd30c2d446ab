"""make_worker_assertion makes the TypeScript makeWorkerAssertion's bytes (docs/api.md §9)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

import livekit_mcp_dispatch as lkmd
from livekit_mcp_dispatch.assertion import worker_assertion_key

# A known answer, also asserted by worker/test/renewal.test.ts: the HKDF key and the token
# for fixed inputs, computed once with the contract package (jose + node:crypto).
KAT_KEYRING = {"current": "k-kat", "keys": {"k-kat": base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()}}
KAT_KEY_HEX = "4ea893b24c89733cbc786bf5e2bfefce6ee1c4fb8c924ab333ef2d66dc76ae27"
KAT_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6Imsta2F0IiwidHlwIjoibGstbWNwLXdvcmtlcitqd3QifQ"
    ".eyJpc3MiOiJtY3AtYWdlbnQiLCJhdWQiOiJodHRwczovL2Rpc3BhdGNoLmV4YW1wbGUuY29tL3YxL3dvcmtlci9jcmVkZW50aWFscyIsInN1YiI6InNpZC1rYXQiLCJpYXQiOjE4MDAwMDAwMDAsImV4cCI6MTgwMDAwMDA2MCwianRpIjoianRpLWthdCJ9"
    ".-c5Y3S85mzBCurctKebSXaobyvZb8D_6kxXEDH2CL8I"
)


def _decode(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class TestSharedVectors:
    def test_every_assertion_vector_is_made_byte_for_byte(self, vectors: dict[str, Any]) -> None:
        made = {}
        for vector in vectors["assertions"]:
            # Act
            made[vector["name"]] = lkmd.make_worker_assertion(
                vector["keyring"],
                vector["agent_name"],
                vector["refresh_url"],
                vector["sid"],
                now=vector["now"],
                lifetime=vector.get("lifetime", 60),
                jti=vector["jti"],
            )

        # Assess
        assert made == {v["name"]: v["token"] for v in vectors["assertions"]}
        assert {"json_escapes", "non_ascii", "lone_surrogates", "fractional_now"} <= set(made)

    def test_the_known_answer_of_both_suites(self) -> None:
        key = lkmd.parse_dispatch_keyring(KAT_KEYRING)["k-kat"]
        assert worker_assertion_key(key).hex() == KAT_KEY_HEX
        token = lkmd.make_worker_assertion(
            KAT_KEYRING, "mcp-agent", "https://dispatch.example.com/v1/worker/credentials", "sid-kat", now=1_800_000_000, jti="jti-kat"
        )
        assert token == KAT_TOKEN


class TestShape:
    def test_header_and_claims_in_the_contracts_order_signed_with_the_hkdf_key(self) -> None:
        # Act
        token = lkmd.make_worker_assertion(KAT_KEYRING, "mcp-agent", "https://d.example/v1/worker/credentials", "sid-1", now=1000.7)

        # Assess
        header, claims, signature = token.split(".")
        assert list(_decode(header).items()) == [("alg", "HS256"), ("kid", "k-kat"), ("typ", "lk-mcp-worker+jwt")]
        decoded = _decode(claims)
        assert list(decoded) == ["iss", "aud", "sub", "iat", "exp", "jti"]
        assert (decoded["iat"], decoded["exp"]) == (1000, 1060)
        assert len(base64.urlsafe_b64decode(decoded["jti"] + "==")) == 16
        key = worker_assertion_key(lkmd.parse_dispatch_keyring(KAT_KEYRING)["k-kat"])
        expected = hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature

    def test_each_assertion_has_a_fresh_jti(self) -> None:
        made = {
            _decode(lkmd.make_worker_assertion(KAT_KEYRING, "a", "https://d.example/x", "s").split(".")[1])["jti"]
            for _ in range(20)
        }
        assert len(made) == 20

    @pytest.mark.parametrize(
        "kwargs",
        [{"lifetime": 61}, {"lifetime": 0}, {"agent_name": ""}, {"refresh_url": ""}, {"sid": ""}],
    )
    def test_refuses_inputs_no_caller_should_pass(self, kwargs: dict[str, Any]) -> None:
        args = {"agent_name": "a", "refresh_url": "https://d.example/x", "sid": "s", **kwargs}
        with pytest.raises(ValueError):
            lkmd.make_worker_assertion(KAT_KEYRING, **args)

    def test_an_invalid_keyring_is_a_keyring_error_without_key_material(self) -> None:
        with pytest.raises(lkmd.KeyringError) as caught:
            lkmd.make_worker_assertion({"current": "nope", "keys": {"k": "c2VjcmV0"}}, "a", "https://d/x", "s")
        assert "c2VjcmV0" not in str(caught.value)
