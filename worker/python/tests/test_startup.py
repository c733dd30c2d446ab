"""The example worker refuses to start without what it needs: one message, a non-zero exit.

Runs the worker as a user does (both entries), in a subprocess with a scrubbed environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agent

PYTHON_DIR = Path(__file__).resolve().parents[1]
GOOD_KEYS = '{"current":"k1","keys":{"k1":"' + "A" * 43 + '"}}'


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_") and k != "DISPATCH_KEYS"}
    env.update(values)
    # Never reach anything: a refused start must not try to connect at all.
    env["NO_PROXY"] = "*"
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=PYTHON_DIR, env=env, capture_output=True, text=True, timeout=120
    )


class TestStartupProblems:
    def test_names_every_missing_variable_and_never_a_value(self) -> None:
        problems = agent.startup_problems({"LIVEKIT_API_SECRET": "s3cret-value"})
        text = "\n".join(problems)
        assert "LIVEKIT_URL is not set" in text
        assert "LIVEKIT_API_KEY is not set" in text
        assert "DISPATCH_KEYS is not set" in text
        assert "LIVEKIT_API_SECRET" not in text
        assert "s3cret-value" not in text

    def test_refuses_a_keyring_that_does_not_parse_and_a_url_that_is_no_url(self) -> None:
        problems = agent.startup_problems(
            {"LIVEKIT_URL": "localhost:7880", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "DISPATCH_KEYS": "{"}
        )
        assert problems == [
            "LIVEKIT_URL must be a ws(s):// or http(s):// URL",
            "DISPATCH_KEYS is not a valid keyring: not valid JSON",
        ]

    def test_accepts_a_complete_configuration(self) -> None:
        env = {"LIVEKIT_URL": "ws://localhost:7880", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "DISPATCH_KEYS": GOOD_KEYS}
        assert agent.startup_problems(env) == []

    def test_flags_count_as_set(self) -> None:
        assert agent.startup_problems({"DISPATCH_KEYS": GOOD_KEYS}, url="ws://x", api_key="k", api_secret="s") == []


class TestWorkerProcess:
    @pytest.mark.parametrize(
        "args", [["-m", "livekit.agents", "start", "agent.py"], ["agent.py", "start"]], ids=["module-entry", "legacy-cli"]
    )
    def test_exits_2_with_one_message_when_livekit_url_and_keys_are_missing(self, args: list[str]) -> None:
        result = _run(args, _env(LIVEKIT_API_KEY="devkey", LIVEKIT_API_SECRET="secret"))

        assert result.returncode == 2
        assert "livekit-mcp-dispatch worker not started:" in result.stderr
        assert "LIVEKIT_URL is not set" in result.stderr
        assert "DISPATCH_KEYS is not set" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout

    def test_exits_2_for_a_bad_keyring_even_with_livekit_configured(self) -> None:
        result = _run(
            ["-m", "livekit.agents", "start", "agent.py"],
            _env(
                LIVEKIT_URL="ws://127.0.0.1:9",
                LIVEKIT_API_KEY="devkey",
                LIVEKIT_API_SECRET="secret",
                DISPATCH_KEYS='{"current":"k1","keys":{"k1":"tooshort"}}',
            ),
        )

        assert result.returncode == 2
        assert "DISPATCH_KEYS is not a valid keyring" in result.stderr
        assert "tooshort" not in result.stderr
