"""A message's bytes as a person reads them (`inv bus.tail`, `inv mqtt.watch`)."""

from __future__ import annotations

import json


def describe(payload: bytes | None) -> str:
    """Compact JSON when it is JSON, else the text quoted, else its bytes in hex."""
    if payload is None:
        return "<no value>"
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False)
    except ValueError:  # not JSON, or not UTF-8
        pass
    try:
        return repr(payload.decode())
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes> {payload.hex()}"
