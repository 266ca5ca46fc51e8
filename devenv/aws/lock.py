"""One deploy of an env at a time: the env carries a lock, an SSM parameter created with a
conditional write (PutParameter without Overwrite fails when it exists), so a laptop and CI
deploying the same env never run two PostgreSQL or Redpanda tasks on one EFS volume."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from devenv.aws.clients import Aws, error_code, parameter
from devenv.aws.config import AwsConfig
from devenv.aws.errors import AwsError

Say = Callable[[str], None]


def holder(aws: Aws, cfg: AwsConfig) -> str | None:
    """Who holds the env's deploy lock, as one phrase; None when nobody does."""
    value = parameter(aws, cfg.lock)
    if value is None:
        return None
    try:
        held = json.loads(value)
        return f"{held['owner']} (git sha {held['sha']}, since {held['since']})"
    except (ValueError, KeyError, TypeError):
        return value


@contextlib.contextmanager
def held(aws: Aws, cfg: AwsConfig, tag: str, say: Say) -> Iterator[None]:
    """The env's deploy lock for the duration of the block; released even on failure."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = json.dumps({"owner": aws.caller, "sha": tag, "since": since})
    try:
        aws.ssm.put_parameter(
            Name=cfg.lock,
            Value=value,
            Type="String",
            Overwrite=False,
            Description=f"inv aws.deploy of env {cfg.env} in progress",
        )
    except ClientError as exc:
        if error_code(exc) != "ParameterAlreadyExists":
            raise
        raise AwsError(refusal(cfg, holder(aws, cfg) or "another deploy")) from None
    say(f"+ deploy lock {cfg.lock}")
    try:
        yield
    finally:
        aws.ssm.delete_parameter(Name=cfg.lock)
        say(f"- deploy lock {cfg.lock}")


def refusal(cfg: AwsConfig, who: str) -> str:
    return (
        f"env {cfg.env} is being deployed by {who}: wait until it finishes; if that deploy "
        f"died, release its lock with `aws ssm delete-parameter --name {cfg.lock}`"
    )
