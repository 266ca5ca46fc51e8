"""Every error a task turns into one line shares one base; anything else stays a traceback."""

from __future__ import annotations

import pytest
from invoke.exceptions import Exit

from devenv.aws.errors import AwsError
from devenv.backends.base import InfraError
from devenv.backends.native import ComponentFailed
from devenv.backends.native.recipe import MissingToolError
from devenv.build import BuildError, ToolchainError
from devenv.errors import UserError
from devenv.ports import PortBusyError
from devenv.proc.detached import DetachedError
from devenv.proc.record import AlreadyRunning, StateWriteError
from devenv.settings import SettingsError
from devenv.state import UnsafeStateDir
from devenv.tasks import user_errors


@pytest.mark.parametrize(
    "error",
    [
        SettingsError("INFRA_BACKEND='podman' is not one of auto, docker, native"),
        UnsafeStateDir("STATE_DIR=/tmp is an existing folder this project did not create"),
        InfraError("bus (kafka) is not running"),
        ComponentFailed("db (postgresql) exited with code 1"),
        MissingToolError("mosquitto not found: apt-get install mosquitto"),
        PortBusyError("port 5432 is in use: stop it or set POSTGRES_PORT in .env"),
        BuildError("go build ./cmd/platform failed", "main.go:3: syntax error"),
        ToolchainError("go not found: Go >= 1.26 is needed"),
        DetachedError("the detached supervisor did not get every app ready"),
        AlreadyRunning("already running (pid 42); stop it first"),
        StateWriteError("could not write .state/backend: No space left on device"),
        AwsError("no AWS credentials found: run `aws configure`"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_user_error_is_one_line_and_exit_code_1(error: UserError) -> None:
    with pytest.raises(Exit) as exited, user_errors():
        raise error
    assert exited.value.code == 1
    assert exited.value.message == f"error: {error}"


def test_a_state_write_error_is_still_an_os_error() -> None:
    assert isinstance(StateWriteError("could not write"), OSError)


def test_a_bug_is_not_hidden_behind_one_line() -> None:
    with pytest.raises(KeyError), user_errors():
        raise KeyError("a bug, not the user's mistake")
