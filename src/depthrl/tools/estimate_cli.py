"""Estimate the cost of a CRL run without running it: parameters, FLOPs per SGD step, peak memory.

Takes the flags of `depthrl train crl` (and its --preset). Nothing is compiled or allocated: shapes come
from tracing the init. Example: depthrl estimate --preset depth-u-d64 --batch-size 1024
"""

from __future__ import annotations

import dataclasses

from depthrl import presets
from depthrl.training import train_cli


@dataclasses.dataclass(frozen=True)
class Args(train_cli.Args):
    """The flags of `depthrl train crl`; prints the estimate instead of training."""

    json: bool = False
    """Print one JSON object (bytes, FLOPs, available memory, fits) instead of the table."""


PRESETS: dict[str, Args] = presets.args_for("crl", Args)


def main(args: Args) -> int:
    from depthrl import estimate
    from depthrl.training import command

    args = command.resolve_resume(args)
    command.validate_config(args)  # not the run directory: nothing is written
    trainer = command.build(args)
    est = estimate.estimate(args, trainer)
    available, where = estimate.available_memory()
    if args.json:
        print(estimate.estimate_json(est, available, where))
        return 0
    from rich.console import Console
    from rich.table import Table

    title = f"depthrl estimate: {args.env.env}, depth {args.agent.depth}, width {args.agent.width}, " \
            f"batch {args.agent.batch_size}, {args.train.num_envs} envs"
    table = Table(title=title)
    table.add_column("what")
    table.add_column("estimate", justify="right")
    for what, value in estimate.table(est):
        table.add_row(what, value)
    console = Console()
    console.print(table)
    print(est.line())
    if available is None:
        print(f"free memory: {where}")
    else:
        verdict = "fits" if est.peak_bytes <= available else "does NOT fit (depthrl train would refuse it)"
        print(f"free memory: {estimate.mib(available)} on {where}: {verdict}")
    return 0
