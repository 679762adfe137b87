"""`run_sweep`: validate a sweep's options, run its unfinished cells, aggregate. The Python entry point of
`depthrl sweep` (the experiment scripts call it)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from depthrl.errors import ConfigError
from depthrl.sweep.execute import LocalExecutor, RayExecutor, execute
from depthrl.sweep.progress import Reporter
from depthrl.sweep.spec import SweepSpec, bundle_label, expand
from depthrl.sweep.summary import SweepResult, default_group_by, summarize


def run_sweep(spec: SweepSpec, out: Path, jobs: int = 1, ray_address: str | None = None, cpus_per_cell: float = 1.0,
              metric: str = "time_at_goal", last_evals: int = 1, group_by: Sequence[str] | None = None,
              num_resamples: int = 2000, progress: bool = True, title: str = "", executor=None,
              reuse: Sequence[Path] = (), baseline: str | None = None, gpus_per_cell: float = 0.0,
              max_retries: int = 2, group: bool = True) -> SweepResult:
    """Validate, run the unfinished cells, aggregate. The Python entry point of `depthrl sweep` (the
    experiment scripts call it). `group`: cells that differ only in traced hyper-parameters (and seed) train
    in one process (`execute.group_cells`)."""
    check_options(jobs, cpus_per_cell, last_evals, num_resamples, group_by, spec)
    check_baseline(baseline, group_by, spec)
    check_executor_options(ray_address, gpus_per_cell, max_retries)
    out = Path(out)
    cells = expand(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    from depthrl.training.runner import write_json_atomic

    write_json_atomic(out / "sweep.json", {**spec.to_json(), "cells": [
        {"name": c.name, "values": c.values, "flags": list(c.flags)} for c in cells]})
    own_executor = executor is None
    if executor is None:
        executor = (RayExecutor(ray_address, cpus_per_cell, gpus_per_cell, max_retries) if ray_address
                    else LocalExecutor(jobs, max_retries))
    reporter = Reporter(cells, metric, live=progress)
    states: dict[str, dict] = {}
    try:
        states = execute(spec.kind, cells, out, executor, reporter, reuse, group)
    finally:
        reporter.close(states)
        if own_executor:
            executor.close()
    result = summarize(spec, cells, out, metric, last_evals, group_by, num_resamples, title, states, baseline)
    for name in result.failed:
        state = result.states[name]
        print(f"[sweep] {name} failed (exit {state['returncode']}); log {state.get('log')}:", file=sys.stderr)
        for line in state.get("log_tail", []):
            print(f"    {line}", file=sys.stderr)
    return result


def check_options(jobs: int, cpus_per_cell: float, last_evals: int, num_resamples: int,
                  group_by: Sequence[str] | None, spec: SweepSpec) -> None:
    if jobs < 1:
        raise ConfigError("--jobs", jobs, "must be >= 1")
    if cpus_per_cell <= 0:
        raise ConfigError("--cpus-per-cell", cpus_per_cell, "must be > 0")
    if last_evals < 1:
        raise ConfigError("--last-evals", last_evals, "must be >= 1")
    if num_resamples < 100:
        raise ConfigError("--bootstrap-resamples", num_resamples, "must be >= 100 for a usable 95% interval")
    for name in group_by or ():
        if name not in spec.axes:
            raise ConfigError("--group-by", name, f"not an axis of the sweep ({', '.join(spec.axes) or 'none'})")


def check_baseline(baseline: str | None, group_by: Sequence[str] | None, spec: SweepSpec) -> None:
    """--baseline must be a value (as text; a bundle's label) of the first group axis."""
    if baseline is None:
        return
    axes = default_group_by(spec, group_by)
    if not axes:
        raise ConfigError("--baseline", baseline, "needs an axis to compare along (the sweep has no group axis)")
    values = [bundle_label(v) if isinstance(v, dict) else str(v) for v in spec.axes[axes[0]]]
    if baseline not in values:
        raise ConfigError("--baseline", baseline, f"not a value of the first group axis {axes[0]} "
                                                   f"({', '.join(values)})")


def check_executor_options(ray_address: str | None, gpus_per_cell: float, max_retries: int) -> None:
    if gpus_per_cell < 0:
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "must be >= 0")
    if gpus_per_cell > 1 and gpus_per_cell != int(gpus_per_cell):
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "above 1 must be a whole number (Ray's rule)")
    if gpus_per_cell > 0 and not ray_address:
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "needs --ray-address (local cells share the "
                          "machine's devices; use --ray-address local to give each its own GPU)")
    if max_retries < 0:
        raise ConfigError("--max-retries", max_retries, "must be >= 0")
