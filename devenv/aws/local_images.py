"""Which images `inv aws.local` runs: the task definition's own (INFRA_IMAGES=official, the
default), or, where no image registry answers (INFRA_IMAGES=local), the stand-ins built on
this machine for the third-party containers, and the local bases for our three Dockerfiles.

The stand-ins are the docker backend's (devenv/backends/stand_ins.py): the same compose override
(deploy/images/stand-ins/compose.stand-ins.yaml), keyed by compose.yaml service name, says
what each replaces, so `inv up` and `inv aws.local` cannot disagree about it."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from devenv.aws import images as our_images
from devenv.aws.errors import AwsError
from devenv.aws.local import Images
from devenv.backends import stand_ins
from devenv.backends.base import InfraError, Say
from devenv.settings import Settings


def select(settings: Settings, say: Say, *, build: bool) -> Images:
    """The images for `settings`; under local, `build` makes the stand-ins and the bases
    first (through Docker's layer cache), else only names them (dry run, down)."""
    stamps = our_images.build_args()
    if settings.INFRA_IMAGES != "local":
        return Images(build_args=stamps)
    try:
        if build:
            stand_ins.ensure(settings, say)
            bases = stand_ins.build_bases(say)
        else:
            bases = stand_ins.base_images()
    except InfraError as exc:
        raise AwsError(str(exc)) from None
    entries = override()
    if build:  # as the task runs image@digest: what was just built, whatever a tag says next
        entries = {
            name: {**spec, "image": image_id(spec["image"])} for name, spec in entries.items()
        }
        bases = {arg: image_id(image) for arg, image in bases.items()}
    return Images(
        build_args={**stamps, **bases},
        stand_ins=entries,
        compose_env=dict(stand_ins.CLASSIC_BUILDER),
    )


def image_id(image: str) -> str:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AwsError(f"image {image} was just built but Docker does not find it: {done.stderr}")
    return done.stdout.strip()


def override() -> dict[str, dict[str, Any]]:
    """compose service -> its stand-in's entry (image, build, healthcheck, command)."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(stand_ins.OVERRIDE.read_text())["services"]
    return services
