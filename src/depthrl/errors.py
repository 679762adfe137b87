"""Errors that name the flag at fault, so a bad value fails at start with a message a user can act on."""

from __future__ import annotations

import os
from pathlib import Path


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


def check_defaults(config: object, flags, why: str) -> None:
    """Refuse a flag that would do nothing: ConfigError(flag, value, why) for the first (flag, field name) of
    `flags` whose field of the dataclass `config` differs from its class default (`type(config)()`)."""
    defaults = type(config)()
    for flag, name in flags:
        value = getattr(config, name)
        if value != getattr(defaults, name):
            raise ConfigError(flag, value, why)


def check_choice(flag: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(flag, value, f"choose one of {', '.join(choices)}")


def check_open_unit(flag: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(flag, value, "must lie strictly between 0 and 1")


def check_writable_file(flag: str, path: str | os.PathLike) -> None:
    """The file `path` can be written: its folder exists or can be created, and a file can be made there (a
    probe file is written and removed; an existing file is left as it is). Otherwise a ConfigError names
    `flag`, so a command fails at start instead of after its work."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(flag, str(path), "is a folder: give a file path")
    probe = path.parent / f".{path.name}.{os.getpid()}.probe"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise ConfigError(flag, str(path), f"cannot be written ({err.strerror or err})") from None
