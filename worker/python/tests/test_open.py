"""open_dispatch_metadata against vectors sealed by the TypeScript sealer (docs/api.md §3)."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest

import livekit_mcp_dispatch as lkmd

CODES = {
    "unknown_kid": lkmd.UnknownKidError,
    "bad_header": lkmd.BadHeaderError,
    "decrypt_failed": lkmd.DecryptFailedError,
    "wrong_audience": lkmd.WrongAudienceError,
    "wrong_room": lkmd.WrongRoomError,
    "expired": lkmd.ExpiredError,
    "malformed": lkmd.MalformedError,
}
SECRETS = ("tok-alice-secret", "tok-alice-legacy", "acme")


def _open(vectors: dict[str, Any], vector: dict[str, Any]) -> lkmd.DispatchGrant:
    return lkmd.open_dispatch_metadata(
        vector["metadata"],
        json.dumps(vectors["keyring"]),
        vector.get("agent_name", vectors["agent_name"]),
        vector.get("room_name", vectors["room_name"]),
        now=vectors["now"],
    )


class TestVectors:
    def test_every_vector_gives_the_code_the_typescript_opener_gives(self, vectors: dict[str, Any]) -> None:
        # Prepare
        outcomes: dict[str, str] = {}
        expected: dict[str, str] = {}

        # Act
        for vector in vectors["vectors"]:
            expected[vector["name"]] = "ok" if vector["expect"].get("ok") else vector["expect"]["code"]
            try:
                _open(vectors, vector)
                outcomes[vector["name"]] = "ok"
            except lkmd.DispatchMetadataError as error:
                outcomes[vector["name"]] = error.code
                assert isinstance(error, CODES[error.code])

        # Assess
        assert outcomes == expected
        assert len(outcomes) >= 30
        assert {code for code in expected.values()} == {"ok", *CODES}

    def test_fuzz_vectors_are_present_and_varied(self, vectors: dict[str, Any]) -> None:
        # The fuzz vectors expect the TypeScript opener's verdict; the test above compares them.
        fuzz = [v for v in vectors["vectors"] if v["name"].startswith("fuzz_")]
        verdicts = {"ok" if v["expect"].get("ok") else v["expect"]["code"] for v in fuzz}
        assert len(fuzz) >= 200
        assert {"ok", "malformed", "bad_header", "decrypt_failed"} <= verdicts
        assert isinstance(vectors["fuzz_seed"], int)

    def test_valid_vector_opens_to_the_sealed_grant(self, vectors: dict[str, Any]) -> None:
        # Prepare
        vector = next(v for v in vectors["vectors"] if v["name"] == "valid")
        want = vectors["expected_grant"]

        # Act
        grant = _open(vectors, vector)

        # Assess
        assert grant.user_id == want["user_id"]
        assert grant.tenant_id == want["tenant_id"]
        assert grant.participant_identity == want["participant_identity"]
        assert grant.room_name == want["room_name"]
        assert grant.agent_name == want["agent_name"]
        assert grant.client == want["client"]
        assert grant.expires_at.timestamp() == vectors["now"] + 600
        servers = [
            {
                "name": s.name,
                "url": s.url,
                "transport": s.transport,
                "headers": dict(s.headers),
                **({"allowed_tools": list(s.allowed_tools)} if s.allowed_tools is not None else {}),
                **({"auth": s.auth} if s.auth is not None else {}),
                **({"expires_at": s.expires_at} if s.expires_at is not None else {}),
            }
            for s in grant.mcp_servers
        ]
        assert servers == want["mcp_servers"]
        assert grant.mcp_servers[0].auth == "oauth"
        assert (grant.sid, grant.refresh_at, grant.refresh_url) == (
            want["sid"],
            want["refresh_at"],
            want["refresh_url"],
        )

    def test_metadata_without_the_renewal_claims_opens_without_them(self, vectors: dict[str, Any]) -> None:
        grant = _open(vectors, next(v for v in vectors["vectors"] if v["name"] == "valid_without_renewal_claims"))
        assert (grant.sid, grant.refresh_at, grant.refresh_url) == (None, None, None)

    def test_bad_renewal_claims_are_malformed_in_both_openers(self, vectors: dict[str, Any]) -> None:
        # The same vectors the TypeScript suite checks (worker/test/vectors.test.ts).
        names = [
            v["name"]
            for v in vectors["vectors"]
            if v["name"].startswith(("sid_", "refresh_url_", "refresh_at_", "server_auth_", "server_expires_at_"))
        ]
        assert len(names) >= 15
        for name in names:
            vector = next(v for v in vectors["vectors"] if v["name"] == name)
            assert vector["expect"] == {"code": "malformed"}, name
            with pytest.raises(lkmd.MalformedError):
                _open(vectors, vector)

    def test_grant_repr_never_shows_headers(self, vectors: dict[str, Any]) -> None:
        grant = _open(vectors, next(v for v in vectors["vectors"] if v["name"] == "valid"))
        text = repr(grant) + repr(grant.mcp_servers) + str(grant)
        assert "tok-alice-secret" not in text
        assert "Bearer" not in text

    def test_errors_carry_no_claims_and_chain_nothing(self, vectors: dict[str, Any]) -> None:
        # Prepare
        failing = [v for v in vectors["vectors"] if not v["expect"].get("ok")]

        for vector in failing:
            # Act
            with pytest.raises(lkmd.DispatchMetadataError) as caught:
                _open(vectors, vector)

            # Assess
            error = caught.value
            rendered = "".join(traceback.format_exception(error))
            for secret in SECRETS:
                assert secret not in rendered, vector["name"]
            assert vector["metadata"] == "" or vector["metadata"] not in rendered
            assert error.__cause__ is None
            assert error.__context__ is None, vector["name"]

    def test_expiry_leeway_is_thirty_seconds(self, vectors: dict[str, Any]) -> None:
        vector = next(v for v in vectors["vectors"] if v["name"] == "valid")
        exp = vectors["now"] + 600
        _open({**vectors, "now": exp + 30}, vector)
        for late in (exp + 30.001, exp + 31, exp + 32):
            with pytest.raises(lkmd.ExpiredError):
                _open({**vectors, "now": late}, vector)


class TestKeyring:
    def test_invalid_keyring_lists_every_problem_without_key_material(self) -> None:
        # Prepare
        secret = "A" * 40

        # Act
        with pytest.raises(lkmd.KeyringError) as caught:
            lkmd.parse_dispatch_keyring({"current": "missing", "keys": {"bad kid": secret, "k1": "short"}})

        # Assess
        assert len(caught.value.problems) == 3
        assert secret not in str(caught.value)

    def test_keyring_not_json(self) -> None:
        with pytest.raises(lkmd.KeyringError):
            lkmd.open_dispatch_metadata("a.b.c.d.e", "{not json", "agent", "room")


class TestWithoutLivekit:
    def test_the_opener_works_without_livekit_agents_installed(self, vectors: dict[str, Any]) -> None:
        # Prepare: a fresh interpreter in which importing livekit fails.
        import subprocess
        import sys
        from pathlib import Path

        vector = next(v for v in vectors["vectors"] if v["name"] == "valid")
        code = (
            "import json, sys\n"
            "sys.modules['livekit'] = None\n"
            "import livekit_mcp_dispatch as m\n"
            "d = json.loads(sys.stdin.read())\n"
            "g = m.open_dispatch_metadata(d['metadata'], d['keyring'], d['agent'], d['room'], now=d['now'])\n"
            "print(g.user_id)\n"
        )
        payload = json.dumps(
            {
                "metadata": vector["metadata"],
                "keyring": vectors["keyring"],
                "agent": vectors["agent_name"],
                "room": vectors["room_name"],
                "now": vectors["now"],
            }
        )

        # Act
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=payload,
            capture_output=True,
            text=True,
            cwd=Path(lkmd.__file__).parent.parent,
            timeout=60,
            check=False,
        )

        # Assess
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "alice"
