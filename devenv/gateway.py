"""The gateway's routing file (deploy/gateway/routes.yaml), read as Traefik reads it: the same
file serves every environment, only the upstream host differs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from devenv.backends.native.traefik import ROUTES_FILE

_TEMPLATE = re.compile(r'\{\{\s*env\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*\}\}')
_PREFIX = re.compile(r"PathPrefix\(`([^`]+)`\)")


def routes(env: Mapping[str, str], routes_file: Path = ROUTES_FILE) -> tuple[str, dict[str, int]]:
    """The routing file evaluated as Traefik does with `env`: (upstream host, prefix -> port)."""
    http = yaml.safe_load(routes_file.read_text())["http"]
    hosts, table = set(), {}
    for router in http["routers"].values():
        if router["entryPoints"] != ["web"]:
            continue
        url = http["services"][router["service"]]["loadBalancer"]["servers"][0]["url"]
        host, port = _TEMPLATE.sub(lambda m: env.get(m.group(1), ""), url).split("//")[1].split(":")
        hosts.add(host)
        for prefix in _PREFIX.findall(router["rule"]):
            table[prefix] = int(port)
    return (hosts.pop() if len(hosts) == 1 else ",".join(sorted(hosts))), table
