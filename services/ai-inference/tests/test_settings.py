"""Settings: defaults, environment and `.env`, and one clear line for a bad value."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ai_inference import contracts
from ai_inference.__main__ import log_config
from ai_inference.scoring import ModelParams
from ai_inference.settings import Settings, SettingsError, load

ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def test_defaults(default_settings: Settings) -> None:
    assert (default_settings.host, default_settings.port) == ("127.0.0.1", 8090)
    assert default_settings.workers == 1
    assert default_settings.model_params == ModelParams(
        window=64, min_history=16, threshold=5.0, min_scale=1e-6
    )


def test_environment_overrides(default_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_INFERENCE_PORT", "58123")
    monkeypatch.setenv("AI_ANOMALY_THRESHOLD", "3.5")
    settings = load()
    assert settings.port == 58123
    assert settings.threshold == 3.5


def test_an_empty_value_means_the_default(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "")
    monkeypatch.setenv("AI_INFERENCE_HOST", "")
    settings = load()
    assert (settings.log_level, settings.host) == ("info", "127.0.0.1")


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("AI_WINDOW=40\nAI_MIN_HISTORY=10\nPOSTGRES_PORT=5432\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(Settings.model_config, "env_file", ".env")
    monkeypatch.setenv("AI_MIN_HISTORY", "12")
    settings = load()
    assert (settings.window, settings.min_history) == (40, 12)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("AI_INFERENCE_PORT", "70000", "less than or equal to 65535"),
        ("AI_INFERENCE_PORT", "http", "valid integer"),
        ("AI_WINDOW", "0", "greater than or equal to 1"),
        ("AI_WINDOW", "257", "less than or equal to 256"),
        ("AI_ANOMALY_THRESHOLD", "-1", "greater than 0"),
        ("AI_ANOMALY_THRESHOLD", "nan", "finite number"),
        ("AI_MIN_SCALE", "0", "greater than 0"),
        ("AI_INFERENCE_WORKERS", "0", "greater than or equal to 1"),
        ("LOG_LEVEL", "loud", "'debug', 'info', 'warn' or 'error'"),
    ],
)
def test_bad_value_is_one_line_naming_key_value_and_fix(
    default_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    value: str,
    words: str,
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as err:
        load()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{key}={value!r} is invalid:")
    assert words in message
    assert ".env.example" in message


def test_min_history_larger_than_window_is_refused(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_WINDOW", "8")
    monkeypatch.setenv("AI_MIN_HISTORY", "9")
    with pytest.raises(SettingsError, match=r"AI_MIN_HISTORY=9 is larger than AI_WINDOW=8"):
        load()


def test_entry_point_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_")}
    env["AI_ANOMALY_THRESHOLD"] = "high"
    proc = subprocess.run(
        [sys.executable, "-m", "ai_inference"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 78  # EX_CONFIG: not worth a restart
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ai-inference: AI_ANOMALY_THRESHOLD='high' is invalid:")


def test_defaults_and_bounds_are_the_declarations(default_settings: Settings) -> None:
    """Read from schemas/settings.schema.json: a default changed there is the service's."""
    declared = contracts.document(contracts.SETTINGS)["properties"]
    assert default_settings.window == declared["AI_WINDOW"]["default"]
    assert default_settings.threshold == declared["AI_ANOMALY_THRESHOLD"]["default"]
    assert ModelParams() == default_settings.model_params


def test_a_checkout_without_schemas_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """The package where the layout puts it, with no schemas/ beside services/: the entry
    point names the missing file and exits EX_CONFIG (the supervisor does not restart it)."""
    service = tmp_path / "services" / "ai-inference"
    shutil.copytree(
        Path(contracts.__file__).parent,
        service / "ai_inference",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ai_inference"],
        env=env,
        cwd=service,  # `-m` imports the package from here, not the checkout's
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 78
    missing = tmp_path / "schemas" / contracts.SETTINGS
    assert proc.stderr.splitlines() == [
        f"ai-inference: {missing} not found: the service reads the repository's schemas/ two "
        "folders above its package; run it from the checkout, or copy schemas/ there in the "
        "image (deploy/images/ai-inference.Dockerfile)"
    ]


def test_logging_goes_to_stdout_and_access_log_follows_level(
    default_settings: Settings,
) -> None:
    config = log_config(default_settings)
    assert config["handlers"]["stdout"]["stream"] == "ext://sys.stdout"
    assert config["loggers"][""]["level"] == "INFO"


def test_every_setting_is_documented_in_env_example() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    keys = {str(field.validation_alias) for field in Settings.model_fields.values()}
    assert keys <= documented, f"not in .env.example: {sorted(keys - documented)}"
