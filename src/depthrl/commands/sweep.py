"""Run a grid of training runs (depth × seed × critic loss × any train flag), then aggregate it.

    depthrl sweep --kind crl --axis depth=4,16 batch-size=64,256 --fixed env=point-maze-u width=64 \\
        --num-seeds 3 --out runs/sweep_bs

or from a JSON spec (flags given on the command line are added to / override the spec's):

    {"kind": "crl", "axes": {"depth": [4, 16]}, "fixed": {"env": "point-maze-u", "width": 64}, "num_seeds": 3}

An axis value may be a bundle of flags set together, e.g. equal-parameter networks
`"net": [{"depth": 4, "width": 128}, {"depth": 16, "width": 64}]` or named ablations
`"variant": [{"name": "baseline"}, {"name": "no-skip", "skip": false}]`.

Each cell of the grid is one `depthrl train KIND` run in OUT/cells/NAME, started as a subprocess (log in
OUT/logs/NAME.log). Cells run in parallel processes (`--jobs`), or as Ray tasks on a cluster
(`--ray-address ADDR`, or `local` to start a Ray instance here). On a GPU cluster `--gpus-per-cell 1` makes
Ray reserve a GPU for each cell and set its CUDA_VISIBLE_DEVICES, so each cell sees only its own device.
Cells that differ only by seed are best vmapped inside one cell (`--num-seeds`); a `seed` axis makes one
process per seed instead. Cells that differ only in traced hyper-parameters (crl: --critic-lr, --actor-lr,
--alpha-lr, --logsumexp-coef, --target-entropy-scale, --discount; sac and td3: learning rates, --tau and more,
docs/sweeps.md; and --seed) train in one process under one compile, vmapped with their seeds, each in its own
run directory (`--no-group`: one process each).

A cell whose process is killed (out of memory, preempted node, a Ray worker that died) is retried up to
`--max-retries` times; each attempt decides its command when it starts, so a retry continues the cell's own
run directory from its last checkpoint (`--resume`) instead of starting over.

Resumable: a cell whose run directory holds its final evaluation is skipped; a cell killed mid-run is
continued from its last checkpoint (`--resume`). A rich table shows every cell while the sweep runs.

At the end, scores (per seed: the mean of the last `--last-evals` evaluations of `eval/METRIC`) are
aggregated over seeds, per value of the `--group-by` axes, as rliable does (`depthrl.sweep.stats`): the IQM
(25% trimmed mean) with its 95% stratified bootstrap CI, the probability of improvement between values of
the first group axis with its CI, and performance profiles. Files: OUT/scores.csv (one row per seed),
OUT/aggregate.csv, OUT/probability_of_improvement.csv, OUT/curves.csv, OUT/aggregate.png,
OUT/performance_profile.png.
"""


from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from depthrl.sweep.execute import cell_state, group_cells, traced_differences
from depthrl.sweep.run import check_baseline, check_executor_options, check_options, run_sweep
from depthrl.sweep.spec import SweepSpec, _norm, expand, load_spec, parse_assignments
from depthrl.sweep.summary import improvement_line


@dataclasses.dataclass(frozen=True)
class Args:
    """Run a grid of `depthrl train` runs (locally or on Ray), resumable, and aggregate it (IQM + 95% CI)."""

    kind: str | None = None
    """Train command of every cell: crl, sac, td3, dqn, ppo, ... (default: the spec's, else crl)."""
    axis: tuple[str, ...] = ()
    """Grid axes as NAME=V1,V2,... (NAME = a train flag without dashes, e.g. depth=4,16 critic-loss=mse,c51);
    several after one --axis, or one per --axis."""
    fixed: tuple[str, ...] = ()
    """Flags shared by every cell as NAME=VALUE (e.g. env=point-maze-u width=64 total-env-steps=1000000);
    several after one --fixed, or one per --fixed."""
    spec: str | None = None
    """JSON spec file {kind, axes: {name: [values]}, fixed: {name: value}, num_seeds}; flags add to it."""
    num_seeds: int | None = None
    """Seeds per cell, vmapped in one process (passed as --num-seeds; default: the spec's, else 1)."""
    out: str = "runs/sweep"
    """Sweep folder: cells/ (one run directory per cell), logs/, sweep.json, the aggregate CSVs and plot."""
    jobs: int = 1
    """Cells run at the same time (local processes; each is pinned to one XLA thread when > 1)."""
    ray_address: str | None = None
    """Run the cells as Ray tasks on this cluster (e.g. ray://head:10001 or auto); `local` starts one here."""
    cpus_per_cell: float = 1.0
    """With --ray-address: CPUs Ray reserves for each cell."""
    gpus_per_cell: float = 0.0
    """With --ray-address: GPUs Ray reserves for each cell (a fraction < 1 shares a GPU, e.g. 0.5 runs two
    cells per GPU; above 1 a whole number). Ray sets each cell's CUDA_VISIBLE_DEVICES to its own GPUs."""
    max_retries: int = 2
    """Times a cell whose process was killed (by a signal, or its Ray worker or node died) is started again;
    a retry resumes the cell's run directory from its last checkpoint. A cell that exits with an error is
    not retried."""
    metric: str = "time_at_goal"
    """Evaluation metric aggregated (eval/METRIC): time_at_goal, success, final_distance, return, ..."""
    last_evals: int = 1
    """Score of a seed = mean of its last this many evaluations (smooths the ±0.1 noise of one evaluation)."""
    group_by: tuple[str, ...] | None = None
    """Axes that define the compared groups (default: every axis but seed); the other axes are strata."""
    bootstrap_resamples: int = 2000
    """Bootstrap resamples of each confidence interval."""
    baseline: str | None = None
    """probability_of_improvement.csv compares every value of the first group axis with this one (e.g.
    variant=baseline: --baseline baseline); default: every pair of its values, the later against the earlier."""
    progress: bool = True
    """Show the live table of cells (otherwise one line per change of a cell's state)."""
    dry_run: bool = False
    """Validate and list the cells, then stop (no training)."""
    group: bool = True
    """Train the cells that differ only in traced hyper-parameters (crl, sac, td3: learning rates and more, see
    docs/sweeps.md; and --seed) in one process under one compile, each in its own run directory. --no-group runs
    one process per cell."""


def spec_from_args(args: Args) -> SweepSpec:
    base = load_spec(args.spec)
    axes = {**base.axes, **parse_assignments(args.axis, "--axis", many=True)}
    fixed = {**base.fixed, **parse_assignments(args.fixed, "--fixed", many=False)}
    fixed = {k: v for k, v in fixed.items() if k not in axes}  # an axis given on the command line wins
    return SweepSpec(kind=args.kind or base.kind, axes=axes, fixed=fixed,
                     num_seeds=args.num_seeds if args.num_seeds is not None else base.num_seeds)


def main(args: Args) -> int:
    spec = spec_from_args(args)
    out = Path(args.out)
    group_by = None if args.group_by is None else [_norm(g) for g in args.group_by]
    if args.dry_run:
        check_options(args.jobs, args.cpus_per_cell, args.last_evals, args.bootstrap_resamples, group_by, spec)
        check_baseline(args.baseline, group_by, spec)
        check_executor_options(args.ray_address, args.gpus_per_cell, args.max_retries)
        cells = expand(spec, out)
        for cell in cells:
            print(f"{cell.name}: {cell_state(cell)}  depthrl train {spec.kind} {' '.join(cell.flags)}")
        for group in group_cells(spec.kind, cells) if args.group else ():
            if len(group) > 1:
                traced = ", ".join(f.lstrip("-") for f in traced_differences(spec.kind, group))
                print(f"{len(group)} cells share one program ({traced}): {', '.join(c.name for c in group)}")
        return 0
    result = run_sweep(spec, out, jobs=args.jobs, ray_address=args.ray_address, cpus_per_cell=args.cpus_per_cell,
                       metric=args.metric, last_evals=args.last_evals, group_by=group_by,
                       num_resamples=args.bootstrap_resamples, progress=args.progress, baseline=args.baseline,
                       gpus_per_cell=args.gpus_per_cell, max_retries=args.max_retries, group=args.group)
    for row in result.table:
        keys = [k for k in row if k not in ("strata", "runs", "mean", "std", "median", "iqm", "iqm_low",
                                            "iqm_high", "min", "max")]
        label = ", ".join(f"{k}={row[k]}" for k in keys) or "all"
        print(f"{label}: IQM {args.metric} {row['iqm']:.3f} [{row['iqm_low']:.3f}, {row['iqm_high']:.3f}] "
              f"over {row['runs']} runs")
    for row in result.improvement:
        print(improvement_line(row))
    if result.files:
        print("wrote " + ", ".join(str(p) for p in result.files))
    if result.failed:
        print(f"{len(result.failed)} cell(s) failed; rerun the same command to retry them (finished cells are "
              "skipped)", file=sys.stderr)
        return 1
    return 0
