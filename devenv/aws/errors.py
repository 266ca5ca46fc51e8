"""The one exception the `aws` tasks turn into a single line for the user."""

from __future__ import annotations

from devenv.errors import UserError


class AwsError(UserError):
    """A failure the user can act on; the message says what happened and how to fix it."""
