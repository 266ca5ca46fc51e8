"""Regression: KRaft storage is formatted whatever random cluster id comes up, including one
that starts with "-" (base64 can), which argparse would otherwise read as a flag."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from devenv import compose
from devenv.backends.native import TOOL_CACHE
from devenv.backends.native.kafka import Kafka
from devenv.settings import load
from devenv.stack import isolated_env

pytestmark = pytest.mark.integration


def test_cluster_id_starting_with_a_dash_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load(env_file=tmp_path / "none", environ=isolated_env(tmp_path / "state"))
    component = compose.find(compose.components(settings.as_env()), "bus")
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))  # urlsafe base64 of 0xf8.. is "-..."
    monkeypatch.setattr(uuid, "uuid4", lambda: dash_first)
    recipe = Kafka(settings, component, tmp_path / "kafka", TOOL_CACHE)
    recipe.prepare(lambda _: None)
    meta = (recipe.data_dir / "meta.properties").read_text()
    assert "cluster.id=-" in meta
