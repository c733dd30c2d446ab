"""The dispatch keyring (``DISPATCH_KEYS``), parsed with every problem listed (docs/api.md §3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import KeyringError
from .wire import _KEY_BYTES, _KID, _b64decode_canonical


def parse_dispatch_keyring(keyring: str | Mapping[str, Any]) -> dict[str, bytes]:
    """Parses keyring JSON (``{"current","keys":{kid: base64url 32 bytes}}``) to ``{kid: key}``.

    Raises :class:`KeyringError` listing every problem.
    """
    return parse_dispatch_keyring_with_current(keyring)[1]


def parse_dispatch_keyring_with_current(keyring: str | Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """Like :func:`parse_dispatch_keyring`, also returning the ``current`` key id (the one a
    worker assertion is made with, docs/api.md §9)."""
    value: Any = keyring
    if isinstance(keyring, (str, bytes)):
        try:
            value = json.loads(keyring)
        except ValueError:
            raise KeyringError(["not valid JSON"]) from None
    if not isinstance(value, Mapping):
        raise KeyringError(['must be an object {"current","keys"}'])
    problems: list[str] = []
    current, keys = value.get("current"), value.get("keys")
    if not isinstance(current, str) or not _KID.match(current):
        problems.append('"current" must be a key id of 1-64 characters [A-Za-z0-9._-]')
    if not isinstance(keys, Mapping) or not keys:
        problems.append('"keys" must be a non-empty object of key id to base64url key')
        raise KeyringError(problems)
    parsed: dict[str, bytes] = {}
    for kid, encoded in keys.items():
        if not isinstance(kid, str) or not _KID.match(kid):
            problems.append(f'key id "{str(kid)[:64]}" is not 1-64 characters [A-Za-z0-9._-]')
            continue
        data = _b64decode_canonical(encoded) if isinstance(encoded, str) and encoded else None
        if data is None:
            problems.append(f'key "{kid}" is not base64url')
            continue
        if len(data) != _KEY_BYTES:
            problems.append(f'key "{kid}" must be {_KEY_BYTES} bytes, got {len(data)}')
            continue
        parsed[kid] = data
    if isinstance(current, str) and _KID.match(current) and current not in keys:
        problems.append(f'"current" key "{current}" is not in "keys"')
    if problems:
        raise KeyringError(problems)
    return current, parsed
