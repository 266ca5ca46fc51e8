"""`inv aws.render | push | pin | deploy | local | status | logs | down`: the AWS dev
environment (ADR-0007)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import settings
from devenv.aws import clients, config, images, local_images, network, runtime, validate
from devenv.aws import deploy as deployer
from devenv.aws import local as local_run
from devenv.aws import pin as pinning
from devenv.aws import purge as purging
from devenv.aws import render as rendering
from devenv.aws import revision as git
from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT
from devenv.tasks import user_errors

ENV_HELP = "Environment name: tags, family and log group follow it (default dev)."


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """A failure of boto3 becomes an AwsError, and that (like any user error) one line on
    stderr and exit code 1."""
    with user_errors(), clients.translated():
        yield


@task(
    help={
        "env": ENV_HELP,
        "output": "Where to write the JSON (default deploy/rendered/task-definition.json).",
        "stdout": "Print the JSON instead of its path.",
    }
)
def render(c: Context, env: str = "dev", output: str = "", stdout: bool = False) -> None:
    """Render and validate the ECS task definition (offline: account, EFS ids are placeholders)."""
    with aws_errors():
        cfg = config.load(env)
        target = rendering.Target(clients.region(cfg.region), git.current().tag)
        definition = rendering.render(cfg, target)
        validate.check(definition)
        path = rendering.write(definition, *([Path(output)] if output else []))
    print(rendering.dumps(definition) if stdout else path)


@task(
    help={
        "env": ENV_HELP,
        "allow_dirty": "Push images of uncommitted changes (tagged <sha>-dirty).",
        "dry_run": "Print what would be built, pushed and created; change nothing.",
    }
)
def push(c: Context, env: str = "dev", allow_dirty: bool = False, dry_run: bool = False) -> None:
    """Build the app, ai-inference and gateway images; push them to ECR tagged with the git sha."""
    with aws_errors():
        cfg = config.load(env)
        tag = git.require_clean(git.current(), allow_dirty or dry_run, "aws.push")
        if not dry_run and not images.engine_answers():
            raise AwsError(images.NO_ENGINE)
        try:
            aws = clients.connect(cfg.region)
        except AwsError as exc:
            if not dry_run:
                raise
            registry = f"{{{{account}}}}.dkr.ecr.{clients.region(cfg.region)}.amazonaws.com"
            images.show_plan(cfg, registry, tag, print)
            raise AwsError(f"{exc} (the plan above is offline: ECR was not checked)") from None
        images.push(aws, cfg, tag, dry_run=dry_run)


@task(
    help={
        "env": ENV_HELP,
        "dry_run": "Print what would change (task definition diff included); change nothing.",
        "allow_dirty": "Deploy although the work tree has uncommitted changes.",
        "cidr": "Who may reach HTTP 80 and MQTT 1883, e.g. 203.0.113.7/32 (added; others kept).",
        "allow_wide": "Accept a CIDR wider than network.min_prefix_ipv4/6 (HTTP has no login).",
        "revoke_unnamed": "Remove the ingress rules this deploy does not name.",
    }
)
def deploy(  # noqa: PLR0917 (Invoke turns each parameter into a flag)
    c: Context,
    env: str = "dev",
    dry_run: bool = False,
    allow_dirty: bool = False,
    cidr: str = "",
    allow_wide: bool = False,
    revoke_unnamed: bool = False,
) -> None:
    """Register the task definition, ensure cluster, logs and security group, run the task."""
    with aws_errors():
        cfg = config.load(env)
        ingress = network.ingress(cfg, cidr, allow_wide=allow_wide)  # before any AWS call
        tag = git.require_clean(git.current(), allow_dirty or dry_run, "aws.deploy")
        aws = clients.connect(cfg.region)
        deployer.deploy(
            aws, cfg, tag, ingress=ingress, dry_run=dry_run, revoke_unnamed=revoke_unnamed
        )


@task(help={"env": ENV_HELP})
def pin(c: Context, env: str = "dev") -> None:
    """Resolve compose.yaml's third-party image tags to digests; record them in aws.yaml."""
    with aws_errors():
        pinning.pin(config.load(env), say=print)
    print(f"recorded in {config.AWS_FILE.relative_to(REPO_ROOT)}: review and commit it")


@task(
    help={
        "env": ENV_HELP,
        "dry_run": "Write and check the compose file only; start nothing.",
        "output": "Where to write it (default deploy/rendered/compose.aws-local.yaml).",
        "detach": "Return once every container is healthy; the task keeps running.",
        "down": "Stop a detached task (its data is kept).",
    }
)
def local(  # noqa: PLR0917 (Invoke turns each parameter into a flag)
    c: Context,
    env: str = "dev",
    dry_run: bool = False,
    output: str = "",
    detach: bool = False,
    down: bool = False,
) -> None:
    """Run the rendered task definition on this machine with docker compose (Ctrl-C stops it)."""
    with aws_errors():
        cfg = config.load(env)
        region = clients.region(cfg.region)
        definition = rendering.render(cfg, rendering.Target(region, git.current().tag))
        validate.check(definition)
        current = settings.load()
        built = local_images.select(current, print, build=not (dry_run or down))
        ports = local_run.host_ports(cfg, current.as_env())
        model = local_run.translate(definition, cfg, built, ports)
        path = local_run.write(model, *([Path(output)] if output else []))
        names = local_run.secret_names(definition, cfg)
        local_run.check(path, names)
        print(f"{path}: accepted by docker compose config")
        if down:
            local_run.down(path, local_run.placeholders(names))
            return
        if dry_run:
            print(f"would run: docker compose -f {path} up --build (secrets: {', '.join(names)})")
            return
        secrets, source = local_run.secret_values(names, region)
        print(f"secrets {', '.join(names)} from {source}")
        compose_env = {**built.compose_env, **secrets}
        gateway, broker = (f"127.0.0.1:{ports[port]}" for port in (80, 1883))
        if not detach:
            print(f"gateway http://{gateway}, MQTT {broker} once healthy; Ctrl-C stops the task")
            local_run.up(path, compose_env)
            return
        local_run.up_detached(path, compose_env, local_run.wait_seconds(definition), print)
        print(f"healthy: gateway http://{gateway}, MQTT {broker}; `inv aws.local --down` stops it")


@task(help={"env": ENV_HELP})
def status(c: Context, env: str = "dev") -> None:
    """One line per task of the env: state, health, revision, git sha, address."""
    with aws_errors():
        cfg = config.load(env)
        rows = runtime.status(clients.connect(cfg.region), cfg)
    if not rows:
        print(f"no task of env {env} is running (inv aws.deploy --env {env})")
        return
    print(runtime.HEADER)
    for row in rows:
        print(row.line())


@task(
    positional=["container"],
    help={
        "container": "traefik, app, mqtt-broker, redpanda, postgres or ai-inference.",
        "env": ENV_HELP,
        "follow": "Keep printing new lines until Ctrl-C.",
        "lines": "How many past lines to show first (default 50).",
    },
)
def logs(
    c: Context, container: str, env: str = "dev", follow: bool = False, lines: int = 50
) -> None:
    """Show a container's log from the env's newest task."""
    with aws_errors():
        cfg = config.load(env)
        runtime.check_container(cfg, container)
        aws = clients.connect(cfg.region)
        runtime.log_lines(aws, cfg, container, lines=lines, follow=follow, say=print)


@task(
    help={
        "env": ENV_HELP,
        "purge": "Also delete the env's EFS data, its SSM ids, security group and log group.",
        "yes": "Required with --purge: confirms deleting the data.",
    }
)
def down(c: Context, env: str = "dev", purge: bool = False, yes: bool = False) -> None:
    """Stop the env's tasks (EFS data is kept unless --purge --yes)."""
    if purge and not yes:
        raise Exit("error: --purge deletes the env's EFS data; run `inv aws.down --purge --yes`", 1)
    with aws_errors():
        cfg = config.load(env)
        aws = clients.connect(cfg.region)
        stopped = runtime.stop(aws, cfg, print)
        if purge:
            runtime.wait_stopped(aws, cfg, stopped)
            purging.purge(aws, cfg, print)
        print(f"env {env}: {len(stopped)} task(s) stopped" + ("" if purge else ", data kept"))
