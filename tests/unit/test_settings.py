from __future__ import annotations

import re
from pathlib import Path

import pytest

from devenv import declared, settings
from devenv.settings import REPO_ROOT, SettingsError, load


def test_defaults_work_out_of_the_box(no_env_file: Path) -> None:
    s = load(env_file=no_env_file, environ={})
    assert (s.GATEWAY_PORT, s.POSTGRES_PORT, s.KAFKA_PORT, s.MQTT_PORT) == (8000, 5432, 9092, 1883)
    assert (s.INGESTION_PORT, s.QUERY_PORT, s.ACTIONS_PORT, s.AI_INFERENCE_PORT) == (
        8080,
        8081,
        8082,
        8090,
    )
    assert s.INFRA_BACKEND == "auto"


def test_env_file_overrides_defaults_and_environment_overrides_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GATEWAY_PORT=8100\nMQTT_PORT=1999\n")
    s = load(env_file=env_file, environ={"MQTT_PORT": "2883"})
    assert s.GATEWAY_PORT == 8100
    assert s.MQTT_PORT == 2883


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("POSTGRES_PORT", "abc", "POSTGRES_PORT='abc'"),
        ("GATEWAY_PORT", "70000", "GATEWAY_PORT='70000'"),
        ("INFRA_BACKEND", "podman", "INFRA_BACKEND='podman'"),
        ("UP_TIMEOUT", "-1", "UP_TIMEOUT='-1'"),
    ],
)
def test_bad_value_is_one_line_naming_key_value_source_and_fix(
    no_env_file: Path, key: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load(env_file=no_env_file, environ={key: value})
    message = str(err.value)
    assert "\n" not in message
    assert expected in message
    assert "(from environment)" in message
    assert ".env" in message  # where to fix it


def test_two_settings_on_one_port_are_refused(no_env_file: Path) -> None:
    with pytest.raises(SettingsError, match="POSTGRES_PORT and GATEWAY_PORT are both 5432"):
        load(env_file=no_env_file, environ={"GATEWAY_PORT": "5432"})


def test_unknown_key_in_env_file_suggests_the_right_one(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PROT=5433\n")
    with pytest.raises(
        SettingsError, match="unknown setting POSTGRES_PROT: did you mean POSTGRES_PORT"
    ):
        load(env_file=env_file, environ={})


def test_a_setting_devenv_does_not_read_passes_through_untouched(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KAFKA_TOPIC_PARTITIONS=0\nTOPIC_TELEMETRY=mine.v1\n")
    s = load(env_file=env_file, environ={"LOG_LEVEL": "loud"})
    # The monolith and the AI service validate their own settings, with their own errors.
    env = s.as_env()
    assert (env["KAFKA_TOPIC_PARTITIONS"], env["LOG_LEVEL"]) == ("0", "loud")
    assert s.value("TOPIC_TELEMETRY") == "mine.v1"
    assert s.value("TOPIC_ANOMALIES") == "anomalies.v1"  # the declared default
    assert set(env) == set(declared.settings())


def test_devenv_validates_only_what_it_reads() -> None:
    assert set(settings.KNOWN_KEYS) == set(declared.read_by("devenv"))


def test_an_undeclared_key_has_no_value(no_env_file: Path) -> None:
    with pytest.raises(KeyError, match="TOPIC_TELEMETRI is not declared"):
        load(env_file=no_env_file, environ={}).value("TOPIC_TELEMETRI")


def test_unknown_key_suggests_a_key_only_the_apps_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OUTBOX_BATCH=5\n")
    with pytest.raises(SettingsError, match="OUTBOX_BATCH: did you mean OUTBOX_BATCH_SIZE"):
        load(env_file=env_file, environ={})


def test_env_example_values_are_the_defaults(no_env_file: Path) -> None:
    example = load(env_file=REPO_ROOT / ".env.example", environ={})
    assert example == load(env_file=no_env_file, environ={})


def test_every_documented_key_has_a_comment_above_it() -> None:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            block = lines[:index]
            comments_before_key = [ln for ln in block[-6:] if ln.startswith("#")]
            assert comments_before_key, f"{line.split('=')[0]} has no explanation in .env.example"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        (".", "is this checkout or a folder holding it"),
        ("..", "is this checkout or a folder holding it"),
        (str(REPO_ROOT), "is this checkout or a folder holding it"),
        ("~", "is your home folder"),
        ("/", "is the file system root"),
    ],
)
def test_a_state_dir_that_clean_would_wreck_is_refused(
    no_env_file: Path, value: str, reason: str
) -> None:
    with pytest.raises(SettingsError, match=f"STATE_DIR=.* is invalid: {reason}"):
        load(env_file=no_env_file, environ={"STATE_DIR": value})


def test_a_tilde_in_state_dir_is_expanded(no_env_file: Path) -> None:
    s = load(env_file=no_env_file, environ={"STATE_DIR": "~/.platform-state"})
    assert s.state_dir == Path.home() / ".platform-state"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("GATEWAY_PORT 8100", "line 2 (GATEWAY_PORT ...) is not KEY=value"),
        ("=8100", "line 2 is not KEY=value"),
        ("GATEWAY_PORT", "line 2: GATEWAY_PORT has no `=`"),
        ('POSTGRES_PASSWORD="s3cret', "line 2 (POSTGRES_PASSWORD ...) is not KEY=value"),
    ],
)
def test_a_malformed_env_line_is_an_error_naming_the_line(
    tmp_path: Path, line: str, shown: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"MQTT_PORT=1999\n{line}\n")
    with pytest.raises(SettingsError) as err:
        load(env_file=env_file, environ={})
    assert shown in str(err.value)
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"), [("POSTGRES_PASSWORD", ""), ("EMQX_DASHBOARD_PASSWORD", "hunter2")]
)
def test_a_bad_secret_is_named_but_never_shown(no_env_file: Path, key: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(env_file=no_env_file, environ={key: value})
    message = str(err.value)
    assert f"{key}=(hidden) (from environment) is invalid" in message
    assert "hunter2" not in message
