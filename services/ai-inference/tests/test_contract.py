"""Contract: the app's generated OpenAPI, `schemas/*.schema.json`, the hand-written
`schemas/openapi/ai-inference.yaml` and the examples all agree.

Schemas are compared semantically: `$ref`s resolved (also across files), titles and
descriptions ignored; types, formats, patterns, bounds, required fields and
additionalProperties must match. Changing a model or a schema file alone fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ai_inference.api import get_model_params
from ai_inference.app import create_app
from ai_inference.scoring import ModelParams
from conftest import SCHEMAS, load_json
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OWN_SCHEMAS = ("score-request", "score-response", "model-info")
OPENAPI_YAML = SCHEMAS / "openapi" / "ai-inference.yaml"

# Keywords that carry meaning for a validator; everything else (title, description,
# examples, default) is documentation.
KEPT = {
    "type",
    "format",
    "pattern",
    "const",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
}
HANDLED = KEPT | {"properties", "required", "additionalProperties", "items", "$ref"}
IGNORED = {"title", "description", "examples", "default", "$schema", "$id", "$defs"}


class Resolver:
    """Resolves `#/…` inside the current document and `file.json#/…` against `schemas/`."""

    def __init__(self, root: dict[str, Any], base: Path) -> None:
        self.root = root
        self.base = base

    def resolve(self, ref: str) -> tuple[dict[str, Any], Resolver]:
        target, _, pointer = ref.partition("#")
        resolver = self
        if target:
            path = (self.base / target).resolve()
            resolver = Resolver(load_json(path), path.parent)
        node: Any = resolver.root
        for part in filter(None, pointer.split("/")):
            node = node[part]
        return node, resolver


def normalize(schema: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    unknown = set(schema) - HANDLED - IGNORED
    assert not unknown, f"keywords the contract test does not compare: {unknown}"
    out: dict[str, Any] = {}
    if "$ref" in schema:
        target, inner = resolver.resolve(schema["$ref"])
        out.update(normalize(target, inner))
    for key in KEPT & schema.keys():
        value = schema[key]
        out[key] = float(value) if isinstance(value, int | float) and key != "type" else value
    if "properties" in schema or schema.get("type") == "object":
        out["properties"] = {
            name: normalize(sub, resolver) for name, sub in schema.get("properties", {}).items()
        }
        out["required"] = sorted(schema.get("required", []))
        out["additionalProperties"] = schema.get("additionalProperties", True)
    if "items" in schema:
        out["items"] = normalize(schema["items"], resolver)
    return out


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def app_schema(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return normalize(schema, Resolver(openapi, SCHEMAS))


def file_schema(name: str) -> dict[str, Any]:
    path = SCHEMAS / f"{name}.schema.json"
    return normalize(load_json(path), Resolver(load_json(path), SCHEMAS))


def body_schema(operation: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    part = operation["responses"][status] if status else operation["requestBody"]
    schema: dict[str, Any] = part["content"]["application/json"]["schema"]
    return schema


# (path, method, request or response status, schema file)
BODIES = [
    ("/v1/score", "post", None, "score-request"),
    ("/v1/score", "post", "200", "score-response"),
    ("/v1/model", "get", "200", "model-info"),
]


@pytest.mark.parametrize(("path", "method", "status", "name"), BODIES)
def test_app_bodies_match_the_schema_files(
    openapi: dict[str, Any], path: str, method: str, status: str | None, name: str
) -> None:
    generated = app_schema(openapi, body_schema(openapi["paths"][path][method], status))
    assert generated == file_schema(name)


def test_request_bounds_are_1_to_4096_points(openapi: dict[str, Any]) -> None:
    for schema in (
        app_schema(openapi, body_schema(openapi["paths"]["/v1/score"]["post"])),
        file_schema("score-request"),
    ):
        points = schema["properties"]["points"]
        assert (points["minItems"], points["maxItems"]) == (1, 4096)
        assert schema["required"] == ["device_id", "metric", "points"]
        assert points["items"]["required"] == ["ts", "value"]


def test_the_checker_notices_drift(openapi: dict[str, Any]) -> None:
    """The comparison is not vacuous: a changed bound or required field is a difference."""
    changed = json.loads(json.dumps(openapi))
    request = body_schema(changed["paths"]["/v1/score"]["post"])
    name = request["$ref"].rsplit("/", 1)[1]
    changed["components"]["schemas"][name]["properties"]["points"]["maxItems"] = 4095
    assert app_schema(changed, request) != file_schema("score-request")
    changed["components"]["schemas"][name]["properties"]["points"]["maxItems"] = 4096
    changed["components"]["schemas"][name]["required"].remove("metric")
    assert app_schema(changed, request) != file_schema("score-request")


def test_openapi_yaml_has_the_apps_operations_and_statuses(openapi: dict[str, Any]) -> None:
    document = yaml.safe_load(OPENAPI_YAML.read_text())
    assert document["openapi"].startswith("3.1")

    def operations(doc: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
        return {
            (path, method): set(op["responses"])
            for path, item in doc["paths"].items()
            for method, op in item.items()
        }

    assert operations(document) == operations(openapi)


@pytest.mark.parametrize(("path", "method", "status", "name"), BODIES)
def test_openapi_yaml_bodies_ref_the_schema_files(
    openapi: dict[str, Any], path: str, method: str, status: str | None, name: str
) -> None:
    document = yaml.safe_load(OPENAPI_YAML.read_text())
    schema = body_schema(document["paths"][path][method], status)
    assert schema == {"$ref": f"../{name}.schema.json"}
    resolved = normalize(schema, Resolver(document, OPENAPI_YAML.parent))
    assert resolved == app_schema(openapi, body_schema(openapi["paths"][path][method], status))


def test_openapi_yaml_documents_the_health_and_422_bodies(client: TestClient) -> None:
    document = yaml.safe_load(OPENAPI_YAML.read_text())
    registry = schema_registry()
    health = body_schema(document["paths"]["/healthz"]["get"], "200")
    Draft202012Validator(health, registry=registry).validate(client.get("/healthz").json())
    errors = {"$ref": "#/components/schemas/ValidationErrors", **document}
    answer = client.post("/v1/score", json={"device_id": "d", "metric": "m", "points": []})
    Draft202012Validator(errors).validate(answer.json())


def schema_registry() -> Registry[Any]:
    resources = [
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        for schema in (load_json(path) for path in sorted(SCHEMAS.glob("*.schema.json")))
    ]
    return Registry().with_resources(resources)


def validator(name: str) -> Draft202012Validator:
    schema = load_json(SCHEMAS / f"{name}.schema.json")
    return Draft202012Validator(
        schema,
        registry=schema_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


@pytest.mark.parametrize("name", OWN_SCHEMAS)
def test_schema_file_is_valid_2020_12_with_id_its_file_name(name: str) -> None:
    schema = load_json(SCHEMAS / f"{name}.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{name}.schema.json"


EXAMPLES = sorted(
    (name, path) for name in OWN_SCHEMAS for path in (SCHEMAS / "examples" / name).glob("*.json")
)


def test_every_schema_has_valid_and_invalid_examples() -> None:
    for name in OWN_SCHEMAS:
        kinds = {path.name.split("-", 1)[0] for n, path in EXAMPLES if n == name}
        assert kinds == {"valid", "invalid"}, name


@pytest.mark.parametrize(("name", "path"), EXAMPLES, ids=[f"{n}/{p.name}" for n, p in EXAMPLES])
def test_example_validates_as_its_name_says(name: str, path: Path) -> None:
    errors = list(validator(name).iter_errors(load_json(path)))
    if path.name.startswith("valid-"):
        assert errors == []
    else:
        assert path.name.startswith("invalid-")
        assert errors, f"{path.name} should fail {name}.schema.json"


@pytest.mark.parametrize(
    "path",
    sorted((SCHEMAS / "examples" / "score-request").glob("*.json")),
    ids=lambda p: p.name,
)
def test_service_agrees_with_the_request_examples(client: TestClient, path: Path) -> None:
    response = client.post("/v1/score", json=load_json(path))
    if path.name.startswith("valid-"):
        assert response.status_code == 200, response.text
        assert list(validator("score-response").iter_errors(response.json())) == []
    else:
        assert response.status_code == 422


def test_response_examples_are_what_the_service_answers() -> None:
    """valid-spike / valid-no-anomalies are the real answers with the default parameters."""
    examples = SCHEMAS / "examples"
    app = create_app()
    app.dependency_overrides[get_model_params] = ModelParams
    with TestClient(app) as client:
        for request, response in [
            ("valid-spike", "valid-spike"),
            ("valid-flat", "valid-no-anomalies"),
        ]:
            answer = client.post(
                "/v1/score", json=load_json(examples / "score-request" / f"{request}.json")
            )
            assert answer.json() == load_json(examples / "score-response" / f"{response}.json")
        info = client.get("/v1/model").json()
        assert info == load_json(examples / "model-info" / "valid-default.json")
