"""One error type with a hint and an exit code; only the CLI entry prints it.

Exit codes (documented in the README):
  0   ok
  1   podrepro error (something podrepro tried failed; the hint says how to fix it)
  2   usage error (bad argument, unknown architecture, malformed config)
  125 the container engine itself failed (as podman uses it)
  126 the command inside the container could not be invoked
  127 the command inside the container was not found
  any other code is the inner command's own exit code, unchanged.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ENGINE = 125
EXIT_CANNOT_INVOKE = 126
EXIT_NOT_FOUND = 127
EXIT_INTERRUPTED = 130


class PodreproError(Exception):
    """An error a user can act on: one line of message, one line of hint."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(PodreproError):
    """Bad input from the command line or a config file: exit 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A malformed or hostile podrepro.toml / user config file."""


class EngineError(PodreproError):
    """podman/buildah/mmdebstrap failed in a way that is not the user's command."""

    exit_code = EXIT_ERROR


class HostNotReady(PodreproError):
    """The host lacks something (podman, binfmt handler, qemu) that a command needs."""

    exit_code = EXIT_ERROR


class Interrupted(PodreproError):
    exit_code = EXIT_INTERRUPTED
