"""What the analysis scripts share: the two scales, the command-line options every script has, and the call
into `depthrl.sweep` (resumable cells, IQM + 95% stratified bootstrap CI, CSV + PNG).

cpu    point-mass mazes, width 64, 0.6 M env steps per seed, 3 seeds vmapped per cell: minutes
       per cell on a 2-core CPU. Enough to run every script end to end; too small for several of the
       papers' effects (docs/results.md says which).
paper  the paper code's recipe on the brax/MJX physics tasks (width 256, batch 512, 512 envs, 100 M env
       steps, depth up to 64): one GPU per cell for hours (not run on the development machine).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from depthrl import sweep
from depthrl.errors import ConfigError
from depthrl.training.presets import _PAPER_TRAIN  # the paper code's training recipe, defined once in presets.py

SCALES = ("cpu", "paper")

# CPU: the quick start's recipe (64 envs × 50-step unrolls, 16 SGD steps of 256 per collection), width 64.
CPU_TRAIN: dict[str, Any] = {"num_envs": 64, "unroll_length": 50, "sgd_steps_per_collect": 16,
                             "eval_every": 100_000, "num_eval_envs": 256, "plots": False}
CPU_STEPS = 600_000

PAPER_TRAIN: dict[str, Any] = {
    "num_envs": _PAPER_TRAIN.num_envs, "unroll_length": _PAPER_TRAIN.unroll_length,
    "sgd_steps_per_collect": _PAPER_TRAIN.sgd_steps_per_collect, "buffer_size": _PAPER_TRAIN.buffer_size,
    "prefill_steps": _PAPER_TRAIN.prefill_steps, "eval_every": _PAPER_TRAIN.eval_every,
    "num_eval_envs": _PAPER_TRAIN.num_eval_envs, "plots": False}
PAPER_STEPS = _PAPER_TRAIN.total_env_steps


@dataclasses.dataclass(frozen=True)
class Options:
    """Flags every analysis script has."""

    scale: str = "cpu"
    """cpu: point-mass mazes, minutes per cell on a laptop; paper: physics tasks at the paper's budget (GPU)."""
    out: str | None = None
    """Output folder (default experiments/out/NAME[_paper]); a script with one sweep per agent writes OUT/AGENT."""
    num_seeds: int | None = None
    """Seeds per cell, vmapped in one process (default: 3 at cpu scale, 5 at paper scale)."""
    total_env_steps: int | None = None
    """Env steps per seed (default: 0.6 M at cpu scale, 100 M at paper scale)."""
    last_evals: int = 3
    """Score of a seed = mean of its last this many evaluations."""
    jobs: int = 1
    """Cells run at the same time (local processes)."""
    ray_address: str | None = None
    """Run the cells as Ray tasks on this cluster (`local` starts one here)."""
    gpus_per_cell: float = 0.0
    """With --ray-address: GPUs Ray reserves for each cell (1 at paper scale on a GPU cluster)."""
    progress: bool = True
    """Live table of the cells."""

    def validate(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError("--scale", self.scale, f"choose one of {', '.join(SCALES)}")
        if self.num_seeds is not None and self.num_seeds < 1:
            raise ConfigError("--num-seeds", self.num_seeds, "must be >= 1")
        if self.total_env_steps is not None and self.total_env_steps < 1:
            raise ConfigError("--total-env-steps", self.total_env_steps, "must be >= 1")

    @property
    def paper(self) -> bool:
        return self.scale == "paper"

    def out_dir(self, name: str) -> Path:
        """experiments/out/NAME (NAME may be ANALYSIS/PART for a script that runs several sweeps); with --out,
        OUT/PART, so that the sweeps of one script never share a folder."""
        if self.out:
            return Path(self.out, *name.split("/")[1:])
        return Path(f"experiments/out/{name}{'_paper' if self.paper else ''}")

    def seeds(self) -> int:
        return self.num_seeds or (5 if self.paper else 3)

    def steps(self) -> int:
        return self.total_env_steps or (PAPER_STEPS if self.paper else CPU_STEPS)

    def train_flags(self, width: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
        """Training flags of the scale: its recipe, width (64 / 256) and batch (256 / 512)."""
        base = PAPER_TRAIN if self.paper else CPU_TRAIN
        return {**base, "total_env_steps": self.steps(), "width": width or (256 if self.paper else 64),
                "batch_size": batch_size or (512 if self.paper else 256)}


def run(name: str, opts: Options, kind: str, axes: dict[str, tuple], fixed: dict[str, Any], title: str,
        metric: str = "time_at_goal", group_by: list[str] | None = None,
        baseline: str | None = None) -> sweep.SweepResult:
    """Run (or finish) one analysis's sweep in OUT/ and aggregate it; prints where the outputs are.
    `baseline`: the value of the first axis every other one is compared with (probability of improvement)."""
    opts.validate()
    spec = sweep.SweepSpec(kind=kind, axes=axes, fixed=fixed, num_seeds=opts.seeds())
    out = opts.out_dir(name)
    # A cell identical to one another analysis already trained (e.g. the depth-16 baseline) is reused.
    others = [p for p in out.parent.iterdir() if p.is_dir() and p != out] if out.parent.is_dir() else []
    result = sweep.run_sweep(spec, out, jobs=opts.jobs, ray_address=opts.ray_address,
                             gpus_per_cell=opts.gpus_per_cell, metric=metric,
                             last_evals=opts.last_evals, group_by=group_by, progress=opts.progress,
                             title=title, reuse=others, baseline=baseline)
    print_table(result, metric)
    if result.failed:
        raise SystemExit(f"{len(result.failed)} cell(s) failed (logs in {out / 'logs'}); rerun to retry them")
    return result


def print_table(result: sweep.SweepResult, metric: str) -> None:
    stat_keys = {"strata", "runs", "mean", "std", "median", "iqm", "iqm_low", "iqm_high", "min", "max"}
    for row in result.table:
        label = ", ".join(f"{k}={v}" for k, v in row.items() if k not in stat_keys)
        print(f"  {label}: IQM {metric} {row['iqm']:.3f} [95% CI {row['iqm_low']:.3f}, {row['iqm_high']:.3f}], "
              f"mean {row['mean']:.3f}, {row['runs']} runs")
    for row in result.improvement:
        print(f"  {sweep.improvement_line(row)}")
    for path in result.files:
        print(f"wrote {path}")
