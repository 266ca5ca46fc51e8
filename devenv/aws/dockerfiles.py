"""A structural check of deploy/images/*.Dockerfile, standing in for hadolint (not installable
here) and for a build where no Docker engine runs: pinned bases, a numeric non-root USER in
the final stage that matches aws.yaml, no HEALTHCHECK (ECS probes from the task definition),
a multi-stage app on go.mod's Go release line, the gateway on compose.yaml's Traefik, and the
AI service's package with schemas/ two folders above it, where it reads them."""

from __future__ import annotations

import re
import sys
from pathlib import Path, PurePosixPath

from devenv import compose
from devenv.aws import config
from devenv.settings import REPO_ROOT

GO_MOD = REPO_ROOT / "services" / "platform" / "go.mod"
_GO_LINE = re.compile(r"^go\s+(\d+)\.(\d+)(?:\.(\d+))?", re.MULTILINE)
_TOOLCHAIN = re.compile(r"^toolchain\s+go(\d+)\.(\d+)\.(\d+)", re.MULTILINE)
_ARG_USE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
AI_PACKAGE = "services/ai-inference/ai_inference"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def bases(path: Path) -> list[str]:
    """The image of each FROM (stage names excluded), in order, with an `ARG NAME=default`
    declared before the first FROM read as its default: what a build without arguments uses."""
    defaults: dict[str, str] = {}
    found: list[str] = []
    for word, args in instructions(path):
        if word == "ARG" and not found:
            name, _, default = args.partition("=")
            defaults[name.strip()] = default.strip()
        elif word == "FROM":
            image = args.split()[0]
            found.append(_ARG_USE.sub(lambda m: defaults.get(m[1] or m[2], m[0]), image))
    return found


def problems(path: Path, container: str, cfg: config.AwsConfig) -> list[str]:
    name = path.name
    steps = instructions(path)
    words = [word for word, _ in steps]
    stages = {args.split()[-1] for word, args in steps if word == "FROM" and " AS " in args.upper()}
    found: list[str] = []
    for base in bases(path):
        tag = base.rpartition(":")[2] if ":" in base else ""
        if base not in stages and (not re.search(r"\d+\.\d+", tag) or tag == "latest"):
            found.append(f"{name}: base {base} is not pinned to a version tag")
    users = [args for word, args in steps if word == "USER"]
    last_from = len(words) - 1 - words[::-1].index("FROM") if "FROM" in words else -1
    last_user = len(words) - 1 - words[::-1].index("USER") if users else -1
    if last_user < last_from:
        found.append(f"{name}: the final stage has no USER, so it runs as root")
    elif not re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]):
        found.append(f"{name}: USER {users[-1]} is not a numeric non-root uid:gid")
    elif container in cfg.containers and cfg.containers[container].user != users[-1]:
        found.append(f"{name}: USER {users[-1]} differs from deploy/aws.yaml's")
    if "HEALTHCHECK" in words:
        found.append(f"{name}: HEALTHCHECK: ECS ignores it; probe in the task definition")
    if container == "app":
        found += _go_problems(path)
    if container == "ai-inference":
        found += _schemas_problems(path)
    if container == "traefik":
        wanted = compose.load_raw()["services"]["traefik"]["image"]
        if bases(path) != [wanted]:
            found.append(f"{name}: base {bases(path)} is not compose.yaml's {wanted}")
    return found


def check_all(cfg: config.AwsConfig | None = None) -> list[str]:
    cfg = cfg or config.load("dev")
    found: list[str] = []
    for container, dockerfile in cfg.images.items():
        path = REPO_ROOT / dockerfile
        if not path.is_file():
            found.append(f"{dockerfile}: missing (deploy/aws.yaml images.{container})")
            continue
        found += problems(path, container, cfg)
    return found


def copied(path: Path) -> dict[str, PurePosixPath]:
    """Each COPY source (from the build context) -> where it lands in the final image."""
    workdir = PurePosixPath("/")
    found: dict[str, PurePosixPath] = {}
    for word, args in instructions(path):
        if word == "FROM":
            workdir, found = PurePosixPath("/"), {}
        elif word == "WORKDIR":
            workdir = workdir / args
        elif word == "COPY" and not args.startswith("--"):
            *sources, target = args.split()
            for source in sources:
                found[source.rstrip("/")] = workdir / target
    return found


def _schemas_problems(path: Path) -> list[str]:
    """ai_inference/contracts.py reads schemas/ two folders above its package, as in the
    checkout (services/ai-inference/ai_inference -> schemas): the image must keep that."""
    copies = copied(path)
    package = copies.get(AI_PACKAGE)
    wanted = package.parents[2] / "schemas" if package else None
    if package and copies.get("schemas") != wanted:
        return [
            f"{path.name}: the service reads {wanted} (two folders above its package, "
            f"{package}): COPY schemas/ {wanted}/"
        ]
    return []


def _go_problems(path: Path) -> list[str]:
    images = bases(path)
    if len(images) < 2 or images[-1].startswith("golang:"):
        return [f"{path.name}: build in a golang stage, run from a small one (multi-stage)"]
    pinned = re.fullmatch(r"golang:(\d+)\.(\d+)\.(\d+)-[\w.]+", images[0])
    if not pinned:
        return [f"{path.name}: {images[0]}: pin a Go patch release, e.g. golang:1.26.8-bookworm"]
    have = tuple(int(part) for part in pinned.groups())
    text = GO_MOD.read_text()
    toolchain, minimum = _TOOLCHAIN.search(text), _GO_LINE.search(text)
    if toolchain:  # go.mod pins the exact toolchain: the image uses that one
        wanted = tuple(int(part) for part in toolchain.groups())
        ok = have == wanted
    elif minimum:  # the `go` line is a minimum: same release line, a patch at least as new
        wanted = tuple(int(part or 0) for part in minimum.groups())
        ok = have[:2] == wanted[:2] and have >= wanted
    else:
        return [f"{GO_MOD}: no go line"]
    version = ".".join(map(str, wanted))
    return [] if ok else [f"{path.name}: Go {'.'.join(map(str, have))} but go.mod says {version}"]


if __name__ == "__main__":
    issues = check_all()
    for issue in issues:
        print(f"error: {issue}", file=sys.stderr)
    print("deploy/images: structure ok" if not issues else f"{len(issues)} problem(s)")
    sys.exit(1 if issues else 0)
