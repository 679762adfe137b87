"""Write the plots of a run directory (learning curves, trajectories, Q heat-map) from its last checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tyro


@dataclasses.dataclass(frozen=True)
class Args:
    run_dir: tyro.conf.Positional[str]
    """The run directory to plot (written by `depthrl train`)."""


def main(args: Args) -> int:
    from depthrl.training.plots import plot_run
    from depthrl.training.runner import read_metrics
    from depthrl.training.runs import load_run

    run_dir = Path(args.run_dir)
    _, trainer, state = load_run(run_dir)
    for path in plot_run(run_dir, trainer, state, read_metrics(run_dir)):
        print(path)
    return 0
