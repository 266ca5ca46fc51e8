"""INFRA_IMAGES: which compose files the docker backend reads, and the build inputs of the
stand-ins that come from this machine (the apt mirror, configs rendered by the native
backend's functions, the build bases' arguments)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devenv import compose
from devenv.aws import dockerfiles
from devenv.backends import stand_ins
from devenv.backends.docker import DockerBackend
from devenv.backends.native import kafka, mosquitto
from devenv.settings import REPO_ROOT, Settings, SettingsError, load


def settings(tmp_path: Path, **env: str) -> Settings:
    return load(env_file=tmp_path / "none", environ=env)


def test_official_images_are_the_default(tmp_path: Path) -> None:
    assert settings(tmp_path).INFRA_IMAGES == "official"
    assert stand_ins.compose_files(settings(tmp_path)) == [compose.COMPOSE_FILE]


def test_local_adds_the_override_after_compose_yaml(tmp_path: Path) -> None:
    local = settings(tmp_path, INFRA_IMAGES="local")
    assert stand_ins.compose_files(local) == [compose.COMPOSE_FILE, stand_ins.OVERRIDE]
    argv = DockerBackend(local, say=lambda _: None).command("up")
    files = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-f"]
    assert files == [str(compose.COMPOSE_FILE), str(stand_ins.OVERRIDE)]
    assert argv[-1] == "up"


def test_a_bad_value_is_one_line_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"INFRA_IMAGES='built'.*'official' or 'local'"):
        settings(tmp_path, INFRA_IMAGES="built")


def test_official_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ran a build under INFRA_IMAGES=official")

    monkeypatch.setattr(stand_ins, "ensure_base", refuse)
    monkeypatch.setattr(stand_ins, "build", refuse)
    stand_ins.ensure(settings(tmp_path), print)


def test_the_mirror_comes_from_the_machines_apt_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text("# local\ndeb http://other.example/debian bookworm main\n")
    assert stand_ins.debian_mirror((deb822, one_line)) == "http://mirror.example/debian"
    assert stand_ins.debian_mirror((tmp_path / "none", one_line)) == "http://other.example/debian"
    assert stand_ins.debian_mirror((tmp_path / "none",)) == stand_ins.DEFAULT_MIRROR
    with_options = tmp_path / "options.list"
    with_options.write_text("deb [signed-by=/k.gpg] http://third.example/debian bookworm main\n")
    assert stand_ins.debian_mirror((with_options,)) == "http://third.example/debian"
    ubuntu = tmp_path / "ubuntu.sources"
    ubuntu.write_text("Types: deb\nURIs: http://archive.ubuntu.com/ubuntu\nSuites: noble\n")
    assert stand_ins.debian_mirror((ubuntu,)) == stand_ins.DEFAULT_MIRROR


def test_the_broker_config_is_the_native_one_on_the_containers_listener(tmp_path: Path) -> None:
    stand_ins.STAGERS["mosquitto"](tmp_path, print)
    conf = (tmp_path / "mosquitto.conf").read_text().splitlines()
    queued, inflight = mosquitto.session_limits()
    assert "listener 1883 0.0.0.0" in conf
    assert f"max_queued_messages {queued}" in conf
    assert f"max_inflight_messages {inflight}" in conf
    volume = compose.load_raw()["services"]["emqx"]["volumes"][0].split(":")[1]
    assert f"persistence_location {volume}/" in conf


def test_kafka_placeholders_are_the_ones_the_entrypoint_fills() -> None:
    template = kafka.server_properties("@LISTEN@", "@ADVERTISE@", "127.0.0.1:9093", "@LOG_DIRS@")
    entrypoint = (stand_ins.STAND_INS / "kafka" / "entrypoint.sh").read_text()
    filled = set(re.findall(r"s\|(@\w+@)\|", entrypoint))
    assert (
        filled == set(re.findall(r"@\w+@", template)) == {"@LISTEN@", "@ADVERTISE@", "@LOG_DIRS@"}
    )
    # The data folder it formats is compose.yaml's redpanda volume.
    volume = compose.load_raw()["services"]["redpanda"]["volumes"][0].split(":")[1]
    assert f"data={volume}\n" in entrypoint


def test_build_bases_cover_every_argument_the_project_dockerfiles_take() -> None:
    taken = set()
    for path in (REPO_ROOT / "deploy" / "images").glob("*.Dockerfile"):
        for word, args in dockerfiles.instructions(path):
            if word == "ARG" and args.split("=")[0].endswith("_IMAGE"):
                taken.add(args.split("=")[0])
    assert taken == set(stand_ins.BUILD_BASES)
    for context in stand_ins.BUILD_BASES.values():
        assert (stand_ins.STAND_INS / context / "Dockerfile").is_file()


def test_lint_reads_a_base_from_its_arg_default(tmp_path: Path) -> None:
    path = tmp_path / "x.Dockerfile"
    path.write_text("ARG GO_IMAGE=golang:1.26.8-bookworm\nFROM ${GO_IMAGE} AS build\nFROM $RT\n")
    assert dockerfiles.bases(path) == ["golang:1.26.8-bookworm", "$RT"]
