"""The image files, checked statically (no Docker engine here, hadolint not installable), and
`inv aws.push`'s plan against moto: what it would build, tag and create."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from devenv import compose
from devenv.aws import clients, config, dockerfiles, images, revision
from devenv.aws.revision import Revision
from devenv.backends.native.traefik import ROUTES_FILE
from devenv.settings import REPO_ROOT
from devenv.tasks import aws as aws_tasks
from tests.unit.aws_account import REGION

IMAGES = REPO_ROOT / "deploy" / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))
instructions, bases = dockerfiles.instructions, dockerfiles.bases


def test_the_three_images_of_aws_yaml_exist_and_pass_the_structural_check() -> None:
    cfg = config.load("dev")
    assert {REPO_ROOT / f for f in cfg.images.values()} == set(DOCKERFILES)
    assert set(cfg.images) == {"app", "ai-inference", "traefik"}
    assert dockerfiles.check_all(cfg) == []


def structural(tmp_path: Path, container: str, text: str) -> list[str]:
    path = tmp_path / f"{container}.Dockerfile"
    path.write_text(text)
    return dockerfiles.problems(path, container, config.load("dev"))


def test_check_refuses_unpinned_bases_root_and_healthcheck(tmp_path: Path) -> None:
    found = structural(
        tmp_path,
        "ai-inference",
        "FROM python:latest\nUSER root\nHEALTHCHECK CMD true\n",
    )
    assert found == [
        "ai-inference.Dockerfile: base python:latest is not pinned to a version tag",
        "ai-inference.Dockerfile: USER root is not a numeric non-root uid:gid",
        "ai-inference.Dockerfile: HEALTHCHECK: ECS ignores it; probe in the task definition",
    ]
    assert structural(tmp_path, "ai-inference", "FROM python\n") == [
        "ai-inference.Dockerfile: base python is not pinned to a version tag",
        "ai-inference.Dockerfile: the final stage has no USER, so it runs as root",
    ]


def test_check_refuses_a_user_only_in_the_build_stage(tmp_path: Path) -> None:
    text = "FROM golang:1.24.13-bookworm AS build\nUSER 65532:65532\nFROM alpine:3.21.3\n"
    assert "app.Dockerfile: the final stage has no USER, so it runs as root" in structural(
        tmp_path, "app", text
    )


def test_check_holds_the_app_to_go_mod_and_multi_stage(tmp_path: Path) -> None:
    single = structural(tmp_path, "app", "FROM golang:1.24.13-bookworm\nUSER 65532:65532\n")
    assert single == ["app.Dockerfile: build in a golang stage, run from a small one (multi-stage)"]
    other = structural(
        tmp_path,
        "app",
        "FROM golang:1.23.9-bookworm AS build\nFROM alpine:3.21.3\nUSER 65532:65532\n",
    )
    assert len(other) == 1 and "Go 1.23.9 but go.mod says 1.26" in other[0]


def test_check_holds_the_gateway_to_compose_traefik(tmp_path: Path) -> None:
    found = structural(tmp_path, "traefik", "FROM traefik:v3.6.0\nUSER 65532:65532\n")
    assert found == [
        "traefik.Dockerfile: base ['traefik:v3.6.0'] is not compose.yaml's traefik:v3.7.4"
    ]


def test_app_build_uses_the_stamps_of_inv_build_and_the_schemas_module() -> None:
    app = IMAGES / "app.Dockerfile"
    build = " ".join(args for word, args in instructions(app) if word == "RUN")
    for stamp in ("main.version", "main.commit", "main.buildTime"):
        assert f"-X {stamp}=" in build
    assert set(images.build_args()) == {"VERSION", "COMMIT", "BUILD_TIME"}
    assert "COPY schemas/" in app.read_text(), "go.mod replaces platform/schemas with ../../schemas"


def test_ai_inference_installs_its_pyproject_and_runs_the_module() -> None:
    ai = IMAGES / "ai-inference.Dockerfile"
    words = instructions(ai)
    assert bases(ai)[0].startswith("python:3.1") and "slim" in bases(ai)[0]
    assert any(w == "COPY" and "services/ai-inference/pyproject.toml" in a for w, a in words)
    assert any(w == "RUN" and "pip install --editable ." in a for w, a in words)
    assert ("CMD", '["python", "-m", "ai_inference"]') in words


def test_check_holds_the_ai_service_to_the_schemas_layout_it_reads(tmp_path: Path) -> None:
    """A package copied where schemas/ is not two folders above it would exit at start."""
    head = "FROM python:3.12.8-slim-bookworm\nUSER 10001:10001\n"
    site = "COPY services/ai-inference/ai_inference/ /tmp/ai/ai_inference/\n"
    assert structural(tmp_path, "ai-inference", head + site + "COPY schemas/ /srv/schemas/\n") == [
        "ai-inference.Dockerfile: the service reads /schemas (two folders above its package, "
        "/tmp/ai/ai_inference): COPY schemas/ /schemas/"
    ]
    layout = (
        "WORKDIR /srv/services/ai-inference\n"
        "COPY services/ai-inference/ai_inference/ ./ai_inference/\n"
        "COPY schemas/ /srv/schemas/\n"
    )
    assert structural(tmp_path, "ai-inference", head + layout) == []


def test_gateway_image_is_compose_traefik_with_the_routing_file_where_compose_mounts_it() -> None:
    gateway = IMAGES / "traefik.Dockerfile"
    raw = compose.load_raw()["services"]["traefik"]
    assert bases(gateway) == [raw["image"]]
    filename = next(a for a in raw["command"] if a.startswith("--providers.file.filename="))
    copied = [a.split() for w, a in instructions(gateway) if w == "COPY"]
    assert [str(ROUTES_FILE.relative_to(REPO_ROOT)), filename.split("=", 1)[1]] in copied


def test_build_context_ignores_local_secrets_and_state() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".env", ".git", ".state", "**/.venv"):
        assert entry in ignored


def test_push_dry_run_plans_builds_and_creates_nothing(aws_env: None) -> None:
    cfg = config.load("dev")
    aws = clients.connect(cfg.region)
    lines: list[str] = []
    planned = images.push(aws, cfg, "0123456789ab", dry_run=True, say=lines.append)
    registry = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
    assert [i.uri for i in planned] == [
        f"{registry}/platform/{name}:0123456789ab" for name in ("traefik", "app", "ai-inference")
    ]
    text = "\n".join(lines)
    assert "+ ECR repository platform/app" in text
    assert "would run: docker build -f deploy/images/app.Dockerfile" in text
    assert "--build-arg=COMMIT=" in text
    assert f"would run: docker push {registry}/platform/app:0123456789ab" in text
    assert boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"] == []


def test_push_skips_an_image_already_in_ecr(aws_env: None) -> None:
    cfg = config.load("dev")
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName="platform/app")
    manifest = (
        '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    )
    ecr.put_image(repositoryName="platform/app", imageManifest=manifest, imageTag="0123456789ab")
    lines: list[str] = []
    images.push(clients.connect(cfg.region), cfg, "0123456789ab", dry_run=True, say=lines.append)
    assert any(line.startswith("= ") and "platform/app:0123456789ab" in line for line in lines)


def test_push_without_a_docker_engine_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revision, "current", lambda: Revision("0123456789ab", []))
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no docker on PATH
    with pytest.raises(Exit) as caught:
        aws_tasks.push(Context())
    message = str(caught.value.message)
    assert message.startswith("error: no Docker engine answers")
    assert "--dry-run" in message and "\n" not in message


def test_push_dry_run_without_credentials_still_shows_the_plan(
    monkeypatch: pytest.MonkeyPatch, no_aws_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr(revision, "current", lambda: Revision("0123456789ab", []))
    with pytest.raises(Exit) as caught:
        aws_tasks.push(Context(), dry_run=True)
    assert str(caught.value.message).startswith("error: no AWS credentials found")
    out = capsys.readouterr().out
    registry = "{{account}}.dkr.ecr.eu-west-1.amazonaws.com"
    assert f"would run: docker push '{registry}/platform/app:0123456789ab'" in out
