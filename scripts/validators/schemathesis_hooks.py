"""Schemathesis hooks for scripts/schemathesis.sh.

A valid Idempotency-Key that a fuzzer draws twice for two bodies is refused by design (422
idempotency_key_reused, CONTRACT section 4), which no schema can state: each valid key is made
unique per request. Invalid keys are left as drawn, so their rejection is still checked.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every phase sends through here (the coverage phase builds cases without strategies).
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            headers[name] = f"fuzz-{uuid.uuid4().hex}"
