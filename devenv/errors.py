"""The one base of every error a task turns into one line for the user (`devenv.tasks`)."""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can act on: the message is the one line they see, saying what
    happened and how to fix it. Each concern raises its own subclass (SettingsError,
    InfraError, BuildError, AwsError, ...); the tasks catch only this base."""
