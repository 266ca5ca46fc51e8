"""The rendered task definition checked by botocore's own validator, offline: the same check
boto3 runs before sending RegisterTaskDefinition, plus the Fargate rules botocore cannot see."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from devenv.aws.errors import AwsError


def problems(definition: Mapping[str, Any]) -> list[str]:
    """Every way `definition` would be refused: botocore's shape report, then Fargate's."""
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None  # RegisterTaskDefinition has an input
    report = ParamValidator().validate(dict(definition), shape)
    found = report.generate_report().splitlines()[1:] if report.has_errors() else []
    return [line.strip() for line in found if line.strip()] + _fargate(definition)


def check(definition: Mapping[str, Any]) -> None:
    found = problems(definition)
    if found:
        raise AwsError(f"task definition invalid: {'; '.join(found)}")


def check_file(path: Path) -> None:
    """For the lint session: `python -m devenv.aws.validate <rendered task definition>`."""
    check(json.loads(path.read_text()))


def _fargate(definition: Mapping[str, Any]) -> list[str]:
    found = []
    if definition.get("networkMode") != "awsvpc":
        found.append("Fargate needs networkMode awsvpc")
    containers = definition.get("containerDefinitions", [])
    names = {c.get("name") for c in containers}
    for c in containers:
        if "memory" not in c and "memoryReservation" not in c:
            found.append(f"container {c.get('name')}: Fargate needs container memory")
        for mapping in c.get("portMappings", []):
            if mapping.get("hostPort", mapping["containerPort"]) != mapping["containerPort"]:
                found.append(f"container {c.get('name')}: awsvpc needs hostPort == containerPort")
        for dep in c.get("dependsOn", []):
            if dep["containerName"] not in names:
                found.append(
                    f"container {c.get('name')}: depends on unknown {dep['containerName']}"
                )
    found += _hostages(containers)
    total_cpu = sum(int(c.get("cpu", 0)) for c in containers)
    total_memory = sum(int(c.get("memory", 0)) for c in containers)
    if total_cpu > int(definition.get("cpu", 0)):
        found.append(f"containers ask {total_cpu} cpu units, the task has {definition.get('cpu')}")
    if total_memory > int(definition.get("memory", 0)):
        found.append(f"containers ask {total_memory} MiB, the task has {definition.get('memory')}")
    return found


def _hostages(containers: list[Mapping[str, Any]]) -> list[str]:
    """An essential container waiting for a non-essential one to be HEALTHY never starts
    when that one never is, and the task stops: the non-essential one decides after all."""
    optional = {c.get("name") for c in containers if c.get("essential") is False}
    return [
        f"container {c.get('name')} (essential) waits for {d['containerName']} (not essential) "
        "to be HEALTHY: use condition START, or no dependency"
        for c in containers
        if c.get("essential", True)
        for d in c.get("dependsOn", [])
        if d["containerName"] in optional and d.get("condition") == "HEALTHY"
    ]


def main(argv: list[str]) -> int:
    """`python -m devenv.aws.validate [FILE ...]`: check rendered files, or with no file
    render offline (every env aws.yaml accepts looks alike) and check that, and the compose
    file `inv aws.local` makes of it through the real Compose loader. For the lint session."""
    from devenv.aws import config, local, render, revision  # noqa: PLC0415 (CLI only)

    try:
        if not argv:
            cfg = config.load("dev")
            definition = render.render(cfg, render.Target(cfg.region, revision.current().tag))
            check(definition)
            print("task definition (rendered offline): valid for RegisterTaskDefinition")
            with tempfile.TemporaryDirectory() as folder:
                path = local.write(local.translate(definition, cfg), Path(folder) / "local.yaml")
                local.check(path, local.secret_names(definition, cfg))
            print("its compose file (inv aws.local): accepted by docker compose config")
        for argument in argv:
            check_file(Path(argument))
            print(f"{argument}: valid for RegisterTaskDefinition")
    except AwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
