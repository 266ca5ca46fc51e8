"""The repository's schemas/ folder, read once: the one source of the settings' defaults and
bounds (settings.schema.json) and of the patterns and limits of the request bodies. The Go
side embeds the same files (schemas/embed.go).

The service reads schemas/ two folders above this package, as the checkout lays it out
(services/ai-inference/ai_inference/ -> schemas/); the image keeps that layout
(deploy/images/ai-inference.Dockerfile). A missing file is `SchemasMissing`, one line naming
the path and the fix.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
SETTINGS = "settings.schema.json"
# sysexits' EX_CONFIG: the supervisor of `inv run` stops at once instead of restarting.
EXIT_CONFIG = 78


class SchemasMissing(Exception):
    """A schema file the service reads is not where the layout puts it."""


@cache
def document(name: str) -> dict[str, Any]:
    """One file of schemas/, parsed."""
    path = SCHEMAS_DIR / name
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SchemasMissing(
            f"{path} not found: the service reads the repository's schemas/ two folders above "
            "its package; run it from the checkout, or copy schemas/ there in the image "
            "(deploy/images/ai-inference.Dockerfile)"
        ) from None
    return loaded


def resolve(ref: str) -> dict[str, Any]:
    """The schema `ref` names (`file.json#/json/pointer`), following `$ref`s to where the
    constraints are written."""
    name, _, pointer = ref.partition("#")
    node: dict[str, Any] = document(name)
    for part in filter(None, pointer.split("/")):
        node = node[part]
    if "$ref" in node:
        target: str = node["$ref"]
        return resolve(target if not target.startswith("#") else name + target)
    return node


def setting(key: str) -> dict[str, Any]:
    """A setting's declaration: type, default, bounds, pattern."""
    return resolve(f"{SETTINGS}#/properties/{key}")
