"""`inv aws.pin`: compose.yaml's third-party image tags resolved to digests through each
registry's own API (python-dxf: the Docker Registry v2 protocol with its anonymous token
handshake), recorded in deploy/aws.yaml's `digests`, which the renderer turns into
`repository@digest`. The file is rewritten in place with its comments (ruamel.yaml)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from dxf import DXF, DXFBase
from dxf.exceptions import DXFError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from devenv import compose
from devenv.aws.config import AWS_FILE, AwsConfig
from devenv.aws.errors import AwsError
from devenv.aws.render import untagged

Say = Callable[[str], None]
DOCKER_HUB = "registry-1.docker.io"
_HUB_NAMES = {"docker.io", "index.docker.io", DOCKER_HUB}


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str


def parse(reference: str) -> Reference:
    """An image name read as Docker reads it: a first part with a dot or a port (or
    `localhost`) is a registry, else Docker Hub, where one-part names live under library/."""
    if "@" in reference:
        raise AwsError(f"{reference} already names a digest: compose.yaml should name a tag")
    name = untagged(reference)
    tag = reference[len(name) + 1 :] or "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry = DOCKER_HUB if first in _HUB_NAMES else first
        return Reference(registry, rest, tag)
    return Reference(DOCKER_HUB, name if rest else f"library/{name}", tag)


def resolve(reference: str, timeout: float = 30.0) -> str:
    """The digest of the manifest (for a multi-platform image: its index) `reference`'s tag
    names now, computed from the bytes the registry sent and checked against its header."""
    ref = parse(reference)
    registry = DXF(ref.registry, ref.repository, auth=_anonymous, timeout=timeout)
    try:
        _, response = registry.get_manifest_and_response(ref.tag)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = "no such tag or repository" if status == 404 else "check the name"
        raise AwsError(f"{reference}: {ref.registry} answered HTTP {status} ({hint})") from None
    except (requests.RequestException, DXFError) as exc:
        raise AwsError(
            f"{reference}: cannot ask {ref.registry} ({type(exc).__name__}: {exc}); "
            "`inv aws.pin` needs network access to the image registries"
        ) from None
    digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != digest:
        raise AwsError(
            f"{reference}: the manifest's bytes hash to {digest}, the registry says {announced}"
        )
    return digest


def third_party(cfg: AwsConfig, compose_file: Path = compose.COMPOSE_FILE) -> list[str]:
    """The images the task runs that we do not build: compose.yaml's references."""
    services = compose.load_raw(compose_file)["services"]
    return [
        services[spec.compose]["image"]
        for name, spec in cfg.containers.items()
        if spec.compose and name not in cfg.images
    ]


def unpinned(cfg: AwsConfig, compose_file: Path = compose.COMPOSE_FILE) -> list[str]:
    return [ref for ref in third_party(cfg, compose_file) if ref not in cfg.digests]


def pin(
    cfg: AwsConfig,
    *,
    say: Say,
    path: Path = AWS_FILE,
    compose_file: Path = compose.COMPOSE_FILE,
    lookup: Callable[[str], str] = resolve,
) -> dict[str, str]:
    """Resolve every third-party image, then rewrite `digests` in `path` (all or nothing)."""
    digests = {ref: lookup(ref) for ref in sorted(third_party(cfg, compose_file))}
    for ref, digest in digests.items():
        old = cfg.digests.get(ref)
        sign = "=" if old == digest else ("~" if old else "+")
        say(f"{sign} {ref} {digest}" + (f" (was {old})" if old and old != digest else ""))
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    document = yaml.load(path.read_text())
    document["digests"] = CommentedMap(digests)
    text = io.StringIO()
    yaml.dump(document, text)
    path.write_text(text.getvalue())
    return digests


def _anonymous(registry: DXFBase, response: requests.Response) -> None:
    """Public images: the registry's token endpoint grants pull without credentials."""
    registry.authenticate(response=response)
