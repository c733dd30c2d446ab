"""Shared fixtures: vectors sealed by the TypeScript sealer, and a real MCP server on loopback.

Both are produced by the repository's TypeScript (run with the root's tsx), so these tests
need `npm ci` at the root (it installs worker/ too) first; without them they fail, they are not skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
WORKER_DIR = PYTHON_DIR.parent
ROOT = WORKER_DIR.parent
sys.path.insert(0, str(PYTHON_DIR))


def _tsx() -> list[str]:
    local = ROOT / "node_modules" / ".bin" / "tsx"
    if local.exists():
        return [str(local)]
    npx = shutil.which("npx")
    if npx is None:
        raise RuntimeError("neither node_modules/.bin/tsx nor npx found: run `npm ci` at the repository root")
    return [npx, "--no-install", "tsx"]


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


@pytest.fixture(scope="session")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Writes the vectors with worker/scripts/make-vectors.ts (the contract's sealer + hand-built bad ones)."""
    outdir = tmp_path_factory.mktemp("vectors")
    subprocess.run(
        [*_tsx(), str(WORKER_DIR / "scripts" / "make-vectors.ts"), str(outdir)],
        cwd=ROOT,
        env=_node_env(),
        check=True,
        timeout=120,
        capture_output=True,
    )
    return json.loads((outdir / "dispatch-vectors.json").read_text())


@pytest.fixture(scope="session")
def mcp_server() -> Iterator[dict[str, Any]]:
    """The worker tests' MCP server (official TypeScript SDK), bearer tokens for alice and bob."""
    proc = subprocess.Popen(
        [*_tsx(), str(WORKER_DIR / "scripts" / "serve-test-mcp.ts")],
        cwd=ROOT,
        env=_node_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"test MCP server did not start: {err[-2000:]}")
        info = json.loads(line)

        def control(command: dict[str, Any]) -> dict[str, Any]:
            """One command to the server (serve-test-mcp.ts: issue / revoke / scope a token)."""
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        info["control"] = control
        yield info
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
