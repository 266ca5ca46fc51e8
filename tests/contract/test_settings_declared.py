"""schemas/settings.schema.json declares every setting once; each copy is held to it here.

.env.example is its generated text; devenv's model and the AI service's pydantic-settings
declare the keys their reader reads with the same default, range, pattern and secret flag
(compared through pydantic's own JSON Schema of each field); the ECS task gives each app
container exactly the keys its reader reads, secrets only as references. The Go struct tags
are held to the same file by the Go side's own test (services/platform/internal/config).
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from ai_inference.settings import Settings as AiSettings
from pydantic import BaseModel, SecretStr

from devenv import compose, declared
from devenv.aws import config, render
from devenv.settings import Settings as DevenvSettings

# What a reader's model must say exactly as the declaration does.
COMPARED = (
    "type",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "pattern",
    "minLength",
    "maxLength",
)
READERS = {"devenv", "platform", "ai-inference"}


def declared_view(reader: str) -> dict[str, dict[str, Any]]:
    return {
        key: {k: s.schema[k] for k in COMPARED if k in s.schema} | {"secret": s.secret}
        for key, s in declared.read_by(reader).items()
    }


def model_view(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each field as its environment key (the alias, if any) sees it in pydantic's JSON
    Schema; a secret is a `SecretStr` (JSON Schema `format: password`)."""
    properties = model.model_json_schema(by_alias=True)["properties"]
    views = {}
    for name, field in model.model_fields.items():
        key = str(field.validation_alias or name)
        view = {k: properties[key][k] for k in COMPARED if k in properties[key]}
        secret = field.annotation is SecretStr
        if secret:
            view["default"] = field.default.get_secret_value()
        views[key] = view | {"secret": secret}
    return views


def test_env_example_is_the_generated_text() -> None:
    assert declared.ENV_EXAMPLE.read_text() == declared.env_example(), (
        ".env.example differs from schemas/settings.schema.json: edit the schema, then run "
        "`inv settings.example`"
    )


def test_every_setting_has_a_known_reader_and_a_default_its_own_schema_accepts() -> None:
    for key, s in declared.settings().items():
        assert s.readers and set(s.readers) <= READERS, key
    defaults = {key: s.default for key, s in declared.settings().items()}
    jsonschema.Draft202012Validator(declared.document()).validate(defaults)


@pytest.mark.parametrize(
    ("reader", "model"), [("devenv", DevenvSettings), ("ai-inference", AiSettings)]
)
def test_a_python_model_declares_what_its_reader_reads_as_declared(
    reader: str, model: type[BaseModel]
) -> None:
    want, have = declared_view(reader), model_view(model)
    assert sorted(have) == sorted(want), f"{model.__module__}: keys differ from {reader}'s"
    for key in want:
        assert have[key] == want[key], (
            f"{model.__module__}: {key} is {have[key]}, the schema says {want[key]}"
        )


@pytest.fixture(scope="module")
def cfg() -> config.AwsConfig:
    return config.load("dev")


@pytest.fixture(scope="module")
def containers(dev_definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in dev_definition["containerDefinitions"]}


@pytest.mark.parametrize("container", sorted(render.APP_READERS))
def test_each_app_container_gets_what_its_reader_reads(
    container: str, cfg: config.AwsConfig, containers: dict[str, dict[str, Any]]
) -> None:
    reads = declared.read_by(render.APP_READERS[container])
    env = {e["name"]: e["value"] for e in containers[container]["environment"]}
    secrets = {s["name"] for s in containers[container]["secrets"]}
    assert sorted(env.keys() | secrets) == sorted(reads), f"{container}: keys differ"
    assert secrets == {key for key, s in reads.items() if s.secret}, f"{container}: secrets differ"
    assert not env.keys() & secrets, f"{container}: secrets as plain values {env.keys() & secrets}"


@pytest.mark.parametrize("container", sorted(render.APP_READERS))
def test_each_task_value_is_the_default_or_a_documented_task_override(
    container: str, cfg: config.AwsConfig, containers: dict[str, dict[str, Any]]
) -> None:
    """Overrides: deploy/aws.yaml's `settings`, hosts are localhost (one network namespace),
    and a port compose.yaml publishes is that container's own port."""
    own = {key: str(value) for key, value in cfg.containers[container].settings.items()}
    ports = render.published_ports()
    for entry in containers[container]["environment"]:
        key, value = entry["name"], entry["value"]
        if key in own:
            expected = own[key]
        elif key.endswith("_HOST"):
            expected = "localhost"
        else:
            expected = ports.get(key, declared.settings()[key].default_text)
        assert value == expected, f"{container}: {key}={value!r} in the task"


def test_compose_reads_declared_settings_with_their_declared_defaults() -> None:
    """compose.yaml's `${KEY:-default}` fallbacks are copies of the declaration: held here."""
    text = compose.COMPOSE_FILE.read_text()
    for key, default in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", text):
        assert key in declared.settings(), f"compose.yaml reads {key}, which is not declared"
        if default:
            want = declared.settings()[key].default_text
            assert default == want, f"compose.yaml: ${{{key}:-{default}}}, the schema says {want}"


def test_the_aws_secrets_are_exactly_the_declared_secrets(cfg: config.AwsConfig) -> None:
    want = {key for key, s in declared.settings().items() if s.secret}
    assert set(cfg.secrets) == want, "deploy/aws.yaml `secrets` differs from the x-secret keys"


def test_no_container_gets_a_declared_secret_as_a_plain_value(
    cfg: config.AwsConfig, containers: dict[str, dict[str, Any]]
) -> None:
    services = compose.load_raw(compose.COMPOSE_FILE)["services"]
    for name, spec in cfg.containers.items():
        if not spec.compose:
            continue
        env = {e["name"] for e in containers[name]["environment"]}
        secrets = {s["name"] for s in containers[name]["secrets"]}
        for key, raw in (services[spec.compose].get("environment") or {}).items():
            variable = render._VAR.search(str(raw))
            if variable and declared.settings()[variable.group(1)].secret:
                assert key in secrets and key not in env, f"{name}: {key} is not a secret reference"
