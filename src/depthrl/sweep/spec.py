"""The grid of a sweep: its spec (a train command, axes, shared flags, seeds per cell) and its cells, each a
`depthrl train KIND` run whose flags are parsed and validated before anything runs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from depthrl.errors import ConfigError

# Flags the sweep sets itself for every cell: a grid may not set them.
_RESERVED = {"run_dir", "resume", "overwrite", "progress", "preset", "num_seeds", "kind"}
SEED_AXIS = "seed"


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains: a train command, its grid axes, shared flags, seeds per cell."""

    kind: str = "crl"
    axes: dict[str, tuple] = dataclasses.field(default_factory=dict)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_seeds: int = 1

    def to_json(self) -> dict:
        return {"kind": self.kind, "axes": {k: list(v) for k, v in self.axes.items()}, "fixed": dict(self.fixed),
                "num_seeds": self.num_seeds}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    name: str
    values: dict[str, Any]  # axis name -> value of this cell
    flags: tuple[str, ...]  # the train command's flags (without --run-dir and the sweep's own)
    run_dir: Path
    num_epochs: int  # evaluations stop at this epoch: the cell is finished when metrics reach it
    num_seeds: int
    learned: dict = dataclasses.field(default_factory=dict, compare=False)  # what is trained: kind, env, agent, train
    shell: dict = dataclasses.field(default_factory=dict, compare=False)  # the rest of its config (not run_dir)


def _norm(name: str) -> str:
    return name.strip().lstrip("-").replace("-", "_")


def _parse_value(text: str) -> Any:
    """A flag value from the command line: JSON where it parses (4, 1e-3, true, null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str], flag: str, many: bool) -> dict[str, Any]:
    """["depth=4,16", ...] -> {"depth": (4, 16)} (many) or ["width=64"] -> {"width": 64}."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(flag, item, "write NAME=VALUE" + (",VALUE..." if many else ""))
        name, text = item.split("=", 1)
        name = _norm(name)
        if not name or not text:
            raise ConfigError(flag, item, "write NAME=VALUE" + (",VALUE..." if many else ""))
        if name in out:
            raise ConfigError(flag, item, f"{name} is given twice: give each name once"
                              + (" with all its values (NAME=V1,V2,...)" if many else ""))
        out[name] = tuple(_parse_value(v) for v in text.split(",")) if many else _parse_value(text)
    return out


def load_spec(path: str | None) -> SweepSpec:
    if path is None:
        return SweepSpec()
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ConfigError("--spec", path, f"cannot be read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError("--spec", path, f"is not valid JSON ({err})") from None
    if not isinstance(data, dict) or set(data) - {"kind", "axes", "fixed", "num_seeds"}:
        raise ConfigError("--spec", path, "must be a JSON object with keys among kind, axes, fixed, num_seeds")
    axes = data.get("axes", {})
    fixed = data.get("fixed", {})
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError("--spec", path, "axes must map each flag name to a non-empty list of values")
    if not isinstance(fixed, dict):
        raise ConfigError("--spec", path, "fixed must map flag names to values")
    return SweepSpec(kind=data.get("kind", "crl"), axes={_norm(k): tuple(v) for k, v in axes.items()},
                     fixed={_norm(k): v for k, v in fixed.items()}, num_seeds=int(data.get("num_seeds", 1)))


def flag_args(name: str, value: Any) -> list[str]:
    """The command-line words of one train flag: --depth 4, --skip / --no-skip, --actor-depth None."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag] if value else ["--no-" + name.replace("_", "-")]
    if value is None:
        return [flag, "None"]
    if isinstance(value, list | tuple):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]


def _safe(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(value).lower() if isinstance(value, bool) else str(value))


def bundle_label(bundle: dict[str, Any]) -> str:
    """The axis value shown for a bundle of flags: its "name", else its flags (e.g. "depth=4,width=128")."""
    return str(bundle["name"]) if "name" in bundle else ",".join(f"{k}={v}" for k, v in bundle.items()) or "default"


def cell_name(values: dict[str, Any]) -> str:
    return "__".join(f"{k}={_safe(v)}" for k, v in values.items()) or "cell"


def expand(spec: SweepSpec, out: Path, parse: Callable[[str, list[str]], Any] | None = None) -> list[Cell]:
    """Every cell of the grid, validated (flags parsed by the train command, its config checked) before any
    compute. `parse(kind, flags) -> Args` defaults to the train command's own tyro parser."""
    if spec.num_seeds < 1:
        raise ConfigError("--num-seeds", spec.num_seeds, "must be >= 1")
    for name in [*spec.axes, *spec.fixed]:
        if name in _RESERVED:
            raise ConfigError("--axis" if name in spec.axes else "--fixed", name,
                              "is set by the sweep itself (use --out, --num-seeds, --kind)")
    parse = parse or parse_train_flags
    names = list(spec.axes)
    cells = []
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        values = {n: bundle_label(v) if isinstance(v, dict) else v for n, v in zip(names, combo, strict=True)}
        chosen: dict[str, Any] = {}
        for n, v in zip(names, combo, strict=True):  # a bundle sets several flags at once
            chosen.update({k: x for k, x in v.items() if k != "name"} if isinstance(v, dict) else {n: v})
        for name in chosen:
            if name in _RESERVED:
                raise ConfigError("--axis", name, "is set by the sweep itself (use --out, --num-seeds, --kind)")
        flags = [w for k, v in {**spec.fixed, **chosen}.items() for w in flag_args(k, v)]
        flags += ["--num-seeds", str(spec.num_seeds)]
        name = cell_name(values)
        train_args = parse(spec.kind, flags)
        cells.append(Cell(name=name, values=values, flags=tuple(flags), run_dir=out / "cells" / name,
                          num_epochs=train_args.train.num_epochs, num_seeds=spec.num_seeds,
                          learned=learned_config(dataclasses.asdict(train_args)),
                          shell=shell_config(dataclasses.asdict(train_args))))
    if len({c.name for c in cells}) != len(cells):
        raise ConfigError("--axis", list(spec.axes), "two cells get the same directory name: make the values distinct")
    return cells


def parse_train_flags(kind: str, flags: list[str]) -> Any:
    """`depthrl train KIND FLAGS` parsed and validated (config only: no run directory, no compute)."""
    import contextlib
    import io

    import tyro

    from depthrl.training import command, registry

    entry = registry.get(kind)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = tyro.cli(entry.args, args=flags, prog=f"depthrl train {kind}")
    except SystemExit:
        message = " ".join(stderr.getvalue().split())[-400:]
        raise ConfigError("--axis/--fixed", " ".join(flags),
                          f"not accepted by `depthrl train {kind}`: {message}") from None
    command.validate_config(args)
    return args


def shell_config(config: dict) -> dict:
    """The part of a run's config.json that is not learned and not its directory (logging, checkpoints, ...)."""
    return {k: v for k, v in config.items() if k not in ("kind", "env", "agent", "train", "run_dir")}


def learned_config(config: dict) -> dict:
    """The part of a run's config.json that decides what is learned (not where it is written or shown)."""
    return {k: config.get(k) for k in ("kind", "env", "agent", "train")}
