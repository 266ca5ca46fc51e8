"""The rendered task definition checked by botocore's own validator, offline: the same check
boto3 runs before sending RegisterTaskDefinition, plus the Fargate rules botocore cannot see."""

from __future__ import annotations

import json
import sys
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
    total_cpu = sum(int(c.get("cpu", 0)) for c in containers)
    total_memory = sum(int(c.get("memory", 0)) for c in containers)
    if total_cpu > int(definition.get("cpu", 0)):
        found.append(f"containers ask {total_cpu} cpu units, the task has {definition.get('cpu')}")
    if total_memory > int(definition.get("memory", 0)):
        found.append(f"containers ask {total_memory} MiB, the task has {definition.get('memory')}")
    return found


def main(argv: list[str]) -> int:
    """`python -m devenv.aws.validate [FILE ...]`: check rendered files, or with no file
    render offline (every env aws.yaml accepts looks alike) and check that. For the lint session."""
    from devenv.aws import config, render, revision  # noqa: PLC0415 (CLI only)

    try:
        if not argv:
            cfg = config.load("dev")
            target = render.Target(cfg.region, revision.current().tag)
            check(render.render(cfg, target))
            print("task definition (rendered offline): valid for RegisterTaskDefinition")
        for argument in argv:
            check_file(Path(argument))
            print(f"{argument}: valid for RegisterTaskDefinition")
    except AwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
