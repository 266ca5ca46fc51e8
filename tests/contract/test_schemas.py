"""The contracts in schemas/: valid JSON Schemas, examples that mean what their names say,
and OpenAPI documents whose bodies are those very files. The Go side reads the same files
(services/platform/internal/contracts), so the two languages cannot drift apart unnoticed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from devenv.settings import REPO_ROOT

SCHEMAS = REPO_ROOT / "schemas"
SCHEMA_FILES = sorted(SCHEMAS.glob("*.schema.json"))
EXAMPLES = sorted(SCHEMAS.glob("examples/*/*.json"))
OPENAPI = sorted((SCHEMAS / "openapi").glob("*.yaml"))


def load(path: Path) -> Any:
    return json.loads(path.read_text())


REGISTRY: Registry[Any] = Registry().with_resources(
    (path.name, Resource.from_contents(load(path))) for path in SCHEMA_FILES
)


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        load(SCHEMAS / schema_name),
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_there_are_contracts_and_examples() -> None:
    assert len(SCHEMA_FILES) >= 15
    assert len(EXAMPLES) >= 2 * len(SCHEMA_FILES) - 10


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12_with_its_file_name_as_id(path: Path) -> None:
    schema = load(path)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == path.name


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_schema_has_a_valid_and_an_invalid_example(path: Path) -> None:
    folder = SCHEMAS / "examples" / path.name.removesuffix(".schema.json")
    names = [p.name for p in folder.glob("*.json")]
    assert any(n.startswith("valid-") for n in names), f"{folder} has no valid-*.json"
    assert any(n.startswith("invalid-") for n in names), f"{folder} has no invalid-*.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_validates_exactly_when_its_name_says_so(path: Path) -> None:
    errors = list(validator(f"{path.parent.name}.schema.json").iter_errors(load(path)))
    if path.name.startswith("valid-"):
        assert errors == [], [e.message for e in errors]
    else:
        assert path.name.startswith("invalid-"), f"{path.name}: name it valid-* or invalid-*"
        assert errors, f"{path} is accepted by its schema"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


@pytest.mark.parametrize("path", OPENAPI, ids=lambda p: p.name)
def test_openapi_bodies_are_the_schema_files(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert document["openapi"].startswith("3.1")
    file_refs = [r for r in refs(document["paths"]) if not r.startswith("#")]
    assert file_refs, f"{path.name} references no schema file"
    for ref in file_refs:
        target = (path.parent / ref.split("#")[0]).resolve()
        assert target.parent == SCHEMAS.resolve() and target.exists(), f"{path.name}: {ref}"


def test_every_http_schema_is_used_by_an_openapi_document() -> None:
    used = {
        Path(r.split("#")[0]).name for p in OPENAPI for r in refs(yaml.safe_load(p.read_text()))
    }
    messages = {  # carried by Kafka or MQTT, described in the documents' prose instead
        "telemetry-event.schema.json", "mqtt-telemetry.schema.json", "dlq-message.schema.json",
        "command-message.schema.json", "command-ack.schema.json", "telemetry-reading.schema.json",
    }  # fmt: skip
    messages.add("settings.schema.json")  # the environment's settings, not a message
    unused = {p.name for p in SCHEMA_FILES} - used - messages
    assert not unused, f"schemas no OpenAPI document references: {sorted(unused)}"
