"""`inv aws.pin`: tag -> digest through the registry API (python-dxf), replayed from a
registry exchange on file (no network to the registries here), and aws.yaml rewritten with
its comments kept."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from devenv.aws import config, pin, render
from devenv.aws.errors import AwsError

EXCHANGE = json.loads((Path(__file__).parent / "registry" / "docker-hub-emqx.json").read_text())
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def replay(mock: responses.RequestsMock, exchange: dict[str, Any]) -> None:
    for step in exchange["exchanges"]:
        mock.add(
            step["method"],
            step["url"],
            body=step["body"],
            status=step["status"],
            headers=step["headers"],
        )


def moved(exchange: dict[str, Any], image: str, path: str) -> dict[str, Any]:
    """The same exchange for another image: the URLs and the token scope follow its name."""
    copied = copy.deepcopy(exchange)
    for step in copied["exchanges"]:
        step["url"] = step["url"].replace("https://registry-1.docker.io/v2/emqx/emqx/", path)
        step["url"] = step["url"].replace("emqx%2Femqx", image.replace("/", "%2F"))
        if "Www-Authenticate" in step["headers"]:
            step["headers"]["Www-Authenticate"] = step["headers"]["Www-Authenticate"].replace(
                "emqx/emqx", image
            )
    return copied


@pytest.fixture
def registry() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_tag_resolves_to_the_digest_of_its_manifest_index(
    registry: responses.RequestsMock,
) -> None:
    replay(registry, EXCHANGE)
    assert pin.resolve("emqx/emqx:5.8.6") == EXCHANGE["digest"]
    challenge, token, manifest = registry.calls
    assert "scope=repository%3Aemqx%2Femqx%3Apull" in str(token.request.url)
    assert manifest.request.headers["Authorization"] == "Bearer anonymous-pull-token"
    # Asking for the index too: the digest names every platform, as `docker pull` resolves it.
    assert INDEX_TYPE in manifest.request.headers["Accept"]
    assert challenge.response is not None and challenge.response.status_code == 401


@pytest.mark.parametrize(
    ("image", "registry_path"),
    [
        ("traefik:v3.7.4", "https://registry-1.docker.io/v2/library/traefik/"),
        (
            "docker.redpanda.com/redpandadata/redpanda:v24.2.18",
            "https://docker.redpanda.com/v2/redpandadata/redpanda/",
        ),
        ("docker.io/emqx/emqx:5.8.6", "https://registry-1.docker.io/v2/emqx/emqx/"),
    ],
)
def test_names_are_read_as_docker_reads_them(
    registry: responses.RequestsMock, image: str, registry_path: str
) -> None:
    name = pin.parse(image).repository
    exchange = moved(EXCHANGE, name, registry_path)
    for step in exchange["exchanges"]:
        step["url"] = step["url"].replace("/manifests/5.8.6", f"/manifests/{pin.parse(image).tag}")
    replay(registry, exchange)
    assert pin.resolve(image) == EXCHANGE["digest"]
    assert str(registry.calls[-1].request.url).startswith(registry_path)


def test_a_missing_tag_is_one_line(registry: responses.RequestsMock) -> None:
    registry.add("GET", "https://registry-1.docker.io/v2/emqx/emqx/manifests/9.9.9", status=404)
    with pytest.raises(AwsError, match=r"emqx/emqx:9.9.9: registry-1.docker.io answered HTTP 404"):
        pin.resolve("emqx/emqx:9.9.9")


def test_a_digest_header_that_does_not_match_the_bytes_is_refused(
    registry: responses.RequestsMock,
) -> None:
    tampered = copy.deepcopy(EXCHANGE)
    tampered["exchanges"][-1]["body"] = tampered["exchanges"][-1]["body"].replace("arm64", "s390x")
    replay(registry, tampered)
    with pytest.raises(
        AwsError, match=r"the manifest's bytes hash to sha256:\w+, the registry says"
    ):
        pin.resolve("emqx/emqx:5.8.6")


def test_no_network_is_one_line_naming_the_registry(registry: responses.RequestsMock) -> None:
    registry.add(
        "GET",
        "https://registry-1.docker.io/v2/emqx/emqx/manifests/5.8.6",
        body=requests.ConnectionError("Name or service not known"),
    )
    with pytest.raises(AwsError, match=r"cannot ask registry-1.docker.io .*needs network access"):
        pin.resolve("emqx/emqx:5.8.6")


def test_pin_rewrites_only_the_digests_and_the_render_follows(
    registry: responses.RequestsMock, tmp_path: Path
) -> None:
    aws_file = tmp_path / "aws.yaml"
    stale = "sha256:" + "00" * 32  # an earlier pin of one image, which the new one replaces
    aws_file.write_text(
        config.AWS_FILE.read_text().replace(
            "digests: {}", f"digests:\n  timescale/timescaledb:2.17.2-pg16: {stale}"
        )
    )
    before = config.load("dev", aws_file)
    for image in pin.third_party(before):
        ref = pin.parse(image)
        host = ref.registry
        exchange = moved(EXCHANGE, ref.repository, f"https://{host}/v2/{ref.repository}/")
        for step in exchange["exchanges"]:
            step["url"] = step["url"].replace("/manifests/5.8.6", f"/manifests/{ref.tag}")
        replay(registry, exchange)

    lines: list[str] = []
    pinned = pin.pin(before, say=lines.append, path=aws_file)

    assert (
        set(pinned)
        == set(pin.third_party(before))
        == {
            "timescale/timescaledb:2.17.2-pg16",
            "docker.redpanda.com/redpandadata/redpanda:v24.2.18",
            "emqx/emqx:5.8.6",
        }
    )
    assert set(pinned.values()) == {EXCHANGE["digest"]}
    assert f"+ emqx/emqx:5.8.6 {EXCHANGE['digest']}" in lines
    assert any(line.startswith("~ timescale/timescaledb:2.17.2-pg16 ") for line in lines)
    after = config.load("dev", aws_file)
    assert after.digests == pinned and pin.unpinned(after) == []
    # Everything but the digests is as it was, comments included.
    old_text, new_text = config.AWS_FILE.read_text(), aws_file.read_text()
    head = old_text.split("\ndigests:")[0]
    assert new_text.split("\ndigests:")[0] == head
    assert "# compose.yaml's third-party images, pinned" in new_text
    target = render.Target(region="eu-central-1", tag="0123456789ab")
    images = {c["name"]: c["image"] for c in render.render(after, target)["containerDefinitions"]}
    assert images["mqtt-broker"] == f"emqx/emqx@{EXCHANGE['digest']}"
    assert images["postgres"] == f"timescale/timescaledb@{EXCHANGE['digest']}"


def test_a_reference_that_already_names_a_digest_is_refused() -> None:
    with pytest.raises(AwsError, match="already names a digest"):
        pin.parse("emqx/emqx@sha256:" + "0" * 64)
