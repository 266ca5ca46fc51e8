"""The one process spec: what travels to a detached supervisor comes back equal, the secret in
a readiness check stays out of every file and line, and a run that cannot start is refused."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from devenv.proc import readiness, status
from devenv.proc.spec import ProcessSpec, RestartPolicy, check_run

SECRET = "pw-spec-5e1f-never-on-disk"


def infra_like() -> ProcessSpec:
    return ProcessSpec(
        name="postgresql",
        argv=("/usr/lib/postgresql/15/bin/postgres", "-D", "/state/data"),
        log_file=Path("/state/postgres.log"),
        env={"LC_ALL": "C"},
        user="postgres",
        ready=(
            readiness.Listening((5432,)),
            readiness.Postgres(5432, "platform", "postgres", SECRET),
            readiness.Kafka(9092),
            readiness.Mqtt(1883),
            readiness.Http("http://127.0.0.1:8080/readyz", answers_pid=True),
        ),
        ready_timeout=90,
        depends_on=("other",),
        restart=RestartPolicy(initial=0.5, longest=8, give_up_after=1),
        stop_signal=signal.SIGINT,
        leader_only=True,
    )


def test_a_spec_comes_back_from_json_as_it_went() -> None:
    spec = infra_like()
    assert ProcessSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_the_password_of_a_check_is_in_no_repr_and_no_status_entry() -> None:
    spec = infra_like()
    assert SECRET not in repr(spec)
    entry = status.entry(spec, None, started_at=None, ready=False, restarts=0, last_exit=None)
    assert SECRET not in json.dumps(entry)
    assert entry["stop_signal"] == "SIGINT" and entry["leader_only"] is True


def test_a_callable_probe_cannot_go_detached() -> None:
    spec = ProcessSpec("app", ("true",), Path("/x.log"), ready_check=lambda: True)
    with pytest.raises(ValueError, match="a callable probe cannot run detached"):
        spec.to_json()


def test_backoff_doubles_up_to_its_longest() -> None:
    policy = RestartPolicy(initial=1.0, longest=30.0)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_run_with_a_dependency_cycle_or_a_name_twice_is_refused() -> None:
    def spec(name: str, *needs: str) -> ProcessSpec:
        return ProcessSpec(name, ("true",), Path(f"/{name}.log"), depends_on=needs)

    check_run([spec("a"), spec("b", "a"), spec("c", "b", "db")])  # db: not this run's
    with pytest.raises(ValueError, match="cycle"):
        check_run([spec("a", "b"), spec("b", "a")])
    with pytest.raises(ValueError, match="unique"):
        check_run([spec("a"), spec("a")])


@pytest.mark.parametrize(
    ("code", "shown"),
    [(-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"), (3, "exited with code 3")],
)
def test_an_exit_is_described_as_a_user_reads_it(code: int, shown: str) -> None:
    assert status.describe_exit(code) == shown
