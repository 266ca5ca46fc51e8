"""`inv aws.push`: build our three images (context: the repository root) and push them to
ECR as <prefix>/<container>:<git sha>. Docker is the one external tool, echoed per command;
the registry password goes to `docker login` on stdin only."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from botocore.exceptions import ClientError

from devenv import build
from devenv.aws.clients import Aws, error_code
from devenv.aws.config import AwsConfig
from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT

Say = Callable[[str], None]
NO_ENGINE = (
    "no Docker engine answers (`docker version` failed): `inv aws.push` builds images with "
    "Docker; start Docker or run it where an engine runs (CI); `inv aws.push --dry-run` "
    "shows what it would build and push"
)


@dataclass(frozen=True)
class Image:
    container: str
    dockerfile: str
    repository: str
    uri: str


def plan(cfg: AwsConfig, registry: str, tag: str) -> list[Image]:
    return [
        Image(name, dockerfile, cfg.repository(name), f"{registry}/{cfg.repository(name)}:{tag}")
        for name, dockerfile in cfg.images.items()
    ]


def build_args() -> dict[str, str]:
    """The app's -X stamps as `inv build` computes them, but for the build time: the commit's
    (as SOURCE_DATE_EPOCH would), so an unchanged tree builds from Docker's layer cache
    instead of compiling the monolith again because the clock moved."""
    stamps = build.stamp_vars(REPO_ROOT)
    return {
        "VERSION": stamps["main.version"],
        "COMMIT": stamps["main.commit"],
        "BUILD_TIME": _commit_time() or stamps["main.buildTime"],
    }


def _commit_time() -> str | None:
    done = subprocess.run(
        ["git", "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ"],
        cwd=REPO_ROOT, env={**os.environ, "TZ": "UTC"}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return done.stdout.strip() or None


def docker_commands(image: Image, args: dict[str, str]) -> list[list[str]]:
    flags = [f"--build-arg={k}={v}" for k, v in args.items()] if image.container == "app" else []
    return [
        ["docker", "build", "-f", image.dockerfile, "-t", image.uri, *flags, "."],
        ["docker", "push", image.uri],
    ]


def show_plan(cfg: AwsConfig, registry: str, tag: str, say: Say) -> None:
    """The docker commands a push would run, without asking AWS or Docker anything."""
    args = build_args()
    for image in plan(cfg, registry, tag):
        for cmd in docker_commands(image, args):
            say("would run: " + shlex.join(cmd))


def engine_answers(timeout: float = 15.0) -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        proc = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def push(
    aws: Aws, cfg: AwsConfig, tag: str, *, dry_run: bool, say: Say = print,
    echo: TextIO = sys.stderr,
) -> list[Image]:  # fmt: skip
    registry = f"{aws.account}.dkr.ecr.{aws.region}.amazonaws.com"
    images = plan(cfg, registry, tag)
    args = build_args()
    for image in images:
        if _pushed(aws, image.repository, tag):
            say(f"= {image.uri} already pushed")
            continue
        if not _repository_exists(aws, image.repository):
            say(f"+ ECR repository {image.repository}")
            if not dry_run:
                aws.ecr.create_repository(
                    repositoryName=image.repository,
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    tags=[{"Key": "managed-by", "Value": "devenv"}],
                )
        for cmd in docker_commands(image, args):
            say(("would run: " if dry_run else "$ ") + shlex.join(cmd))
        if not dry_run:
            _login_once(aws, registry, echo)
            for cmd in docker_commands(image, args):
                _docker(cmd, echo)
    if dry_run:
        say("dry run: nothing was built, pushed or created")
    return images


_logged_in: set[str] = set()


def _login_once(aws: Aws, registry: str, echo: TextIO) -> None:
    if registry in _logged_in:
        return
    data = aws.ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    cmd = ["docker", "login", "--username", user, "--password-stdin", registry]
    print(f"$ {shlex.join(cmd)}", file=echo, flush=True)
    proc = subprocess.run(cmd, input=password, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AwsError(f"docker login to {registry} failed: {proc.stderr.strip()}")
    _logged_in.add(registry)


def _docker(cmd: Sequence[str], echo: TextIO) -> None:
    print(f"$ {shlex.join(cmd)}", file=echo, flush=True)
    proc = subprocess.run(list(cmd), cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        raise AwsError(
            f"{shlex.join(cmd[:2])} failed (exit {proc.returncode}): see its output above"
        )


def missing(aws: Aws, cfg: AwsConfig, tag: str) -> list[str]:
    """The images of `tag` the task definition names that ECR does not have."""
    registry = f"{aws.account}.dkr.ecr.{aws.region}.amazonaws.com"
    return [i.uri for i in plan(cfg, registry, tag) if not _pushed(aws, i.repository, tag)]


def _repository_exists(aws: Aws, name: str) -> bool:
    try:
        aws.ecr.describe_repositories(repositoryNames=[name])
    except ClientError as exc:
        if error_code(exc) != "RepositoryNotFoundException":
            raise
        return False
    return True


def _pushed(aws: Aws, repository: str, tag: str) -> bool:
    try:
        found = aws.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if error_code(exc) not in {"RepositoryNotFoundException", "ImageNotFoundException"}:
            raise
        return False
    return bool(found["imageDetails"])
