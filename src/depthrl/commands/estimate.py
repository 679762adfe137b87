"""Estimate the cost of a CRL run without running it: parameters, FLOPs per SGD step, peak memory.

Takes the flags of `depthrl train crl` (and its --preset). Nothing is compiled or allocated: shapes come
from tracing the init. Example: depthrl estimate --preset depth-u-d64 --batch-size 1024
With --compile it also compiles the training programs (still allocating nothing) and prints XLA's exact
memory next to the estimate: what `depthrl train` checks.
"""

from __future__ import annotations

import dataclasses
import json

from depthrl.training import registry


@dataclasses.dataclass(frozen=True)
class Args(registry.get("crl").args):
    """The flags of `depthrl train crl`; prints the estimate instead of training."""

    json: bool = False
    """Print one JSON object (bytes, FLOPs, available memory, fits) instead of the table."""
    compile: bool = False
    """Also compile the epoch, evaluation and diagnostics programs (nothing is allocated; takes the compile
    time) and report XLA's exact memory (`memory_analysis()`), the number `depthrl train` checks, with the
    estimate's ratio to it."""


PRESETS: dict[str, Args] = registry.get("crl").preset_args(Args)


def main(args: Args) -> int:
    from depthrl.training import command, estimate

    args = command.resolve_resume(args)
    command.validate_config(args)  # not the run directory: nothing is written
    trainer = command.build(args)
    est = estimate.estimate(args, trainer)
    available, where = estimate.available_memory(args.train.num_devices)
    memory = _compiled(args, trainer) if args.compile else None
    if args.json:
        out = json.loads(estimate.estimate_json(est, available, where))
        if memory is not None:
            out.update(compiled=memory.to_json(), estimate_over_compiled=est.peak_bytes / memory.peak_bytes,
                       fits=available is None or memory.needed_bytes <= available)
        print(json.dumps(out))
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
    if memory is not None:
        print(memory.line(est))
    needed = memory.needed_bytes if memory is not None else est.peak_bytes
    if available is None:
        print(f"free memory: {where}")
    else:
        refuse = "depthrl train refuses it" if memory is not None else "the compiled check of depthrl train decides"
        verdict = "fits" if needed <= available else f"does NOT fit ({refuse})"
        print(f"free memory: {estimate.mib(available)} on {where}: {verdict}")
    return 0


def _compiled(args: Args, trainer):
    """XLA's memory of the run's compiled programs (as `depthrl train` compiles them), nothing allocated."""
    from depthrl.training import runner

    cfg = trainer.config
    abstract = runner.abstract_state(trainer, runner.seed_keys(cfg.seed, cfg.num_seeds))
    programs = runner.compile_programs(trainer, runner.place(abstract, cfg.num_devices),
                                       donate=not args.skip_non_finite)
    omitted = ("buffer",) if not args.checkpoint_buffer and hasattr(abstract, "buffer") else ()
    return runner.measure_memory(trainer, abstract, programs, omitted)
