"""How a command fails: one line saying what is wrong and where, and an exit code."""

from __future__ import annotations

from uuid import UUID

BAD_INPUT = 2
UNAVAILABLE = 3
NOT_FOUND = 4


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def bad_input(message: str) -> CliError:
    return CliError(message, BAD_INPUT)


def unavailable(message: str) -> CliError:
    return CliError(message, UNAVAILABLE)


def uuid_argument(text: str, where: str) -> UUID:
    """A command's UUID argument, or bad input naming where it was given."""
    try:
        return UUID(text)
    except ValueError:
        raise bad_input(f"{where} {text!r}: not a UUID") from None
