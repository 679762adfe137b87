"""Errors that name the flag at fault, so a bad value fails at start with a message a user can act on."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration value, raised before any compute.

    The message always names the command-line flag, the value given and what is allowed.
    """

    def __init__(self, flag: str, value: object, allowed: str):
        self.flag = flag
        self.value = value
        self.allowed = allowed
        super().__init__(f"{flag}={value!r} is invalid: {allowed}")


class DivergenceError(RuntimeError):
    """Training stopped because a loss, gradient or parameter became non-finite (the message says which, where)."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (disk full, I/O error): the run stopped; the message names the last
    good checkpoint and how to resume."""


def check_positive(flag: str, value: int | float) -> None:
    if not value > 0:
        raise ConfigError(flag, value, "must be > 0")


def check_choice(flag: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(flag, value, f"choose one of {', '.join(choices)}")


def check_open_unit(flag: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(flag, value, "must lie strictly between 0 and 1")
