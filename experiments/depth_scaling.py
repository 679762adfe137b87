"""Depth scaling (Wang et al. 2025, Fig. 1/3 at CPU scale): CRL time-at-goal vs env steps for several
depths on one maze, several seeds per depth (vmapped in one process), same budget for every depth.

    .venv/bin/python experiments/depth_scaling.py --env point-maze-u4   # depths 4-64, 3 seeds, 3 M steps each

Writes OUT/runs/depth_D (one run directory per depth), OUT/depth_scaling.csv (every evaluation of every
seed), OUT/depth_scaling_summary.csv (per depth: IQM over seeds of the final score, the mean of each seed's
last --last-evals evaluations, with a 95% bootstrap CI) and OUT/depth_scaling.png (curves, and the final
score against depth). A depth whose run already finished is skipped, so a killed sweep continues where it
stopped.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import tyro

from depthrl import sweep
from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.errors import ConfigError
from depthrl.sweep import stats as sweep_stats
from depthrl.training import command, runner
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`


@dataclasses.dataclass(frozen=True)
class Options:
    env: str = "point-maze-u4"
    """Maze to train on."""
    depths: tuple[int, ...] = (4, 8, 16, 32, 64)
    """Depths to compare (each a multiple of 4); U4-maze, 3 M steps: about an hour for all five on 2 cores."""
    width: int = 64
    """Width of every network."""
    num_seeds: int = 3
    """Seeds per depth (vmapped in one process)."""
    total_env_steps: int = 3_000_000
    """Env steps per seed, the same for every depth."""
    eval_every: int = 150_000
    """Evaluation interval in env steps."""
    out: str = "experiments/out/depth_scaling"
    """Output folder."""
    last_evals: int = 3
    """Final score of a seed = mean of its last this many evaluations."""

    def validate(self) -> None:
        for flag, value in (("--num-seeds", self.num_seeds), ("--total-env-steps", self.total_env_steps),
                            ("--eval-every", self.eval_every), ("--last-evals", self.last_evals),
                            ("--width", self.width)):
            if value < 1:
                raise ConfigError(flag, value, "must be >= 1")
        if not self.depths:
            raise ConfigError("--depths", self.depths, "give at least one depth")


def finished(run_dir: Path, args: Args) -> bool:
    rows = runner.read_metrics(run_dir)
    return bool(rows) and rows[-1]["epoch"] == args.train.num_epochs


def main(opts: Options) -> None:
    opts.validate()
    out = Path(opts.out)
    rows_by_depth = {}
    for depth in opts.depths:
        run_dir = out / "runs" / f"depth_{depth}"
        args = Args(env=EnvConfig(env=opts.env), agent=CRLConfig(depth=depth, width=opts.width),
                    train=TrainConfig(num_envs=64, unroll_length=50, sgd_steps_per_collect=16,
                                      total_env_steps=opts.total_env_steps, eval_every=opts.eval_every,
                                      num_eval_envs=256, num_seeds=opts.num_seeds),
                    run_dir=str(run_dir), overwrite=True)
        if finished(run_dir, args):
            print(f"depth {depth}: finished run found in {run_dir}, skipped")
        elif (run_dir / "checkpoints").exists() and runner.read_metrics(run_dir):
            command.run(dataclasses.replace(args, resume=str(run_dir), overwrite=False))
        else:
            command.run(args)
        rows_by_depth[depth] = runner.read_metrics(run_dir)
    write_csv(out / "depth_scaling.csv", rows_by_depth)
    table = summarize(rows_by_depth, opts.last_evals)
    sweep.write_csv(out / "depth_scaling_summary.csv", table)
    for row in table:
        print(f"  depth {row['depth']}: IQM time at goal {row['iqm']:.3f} [95% CI {row['iqm_low']:.3f}, "
              f"{row['iqm_high']:.3f}], seeds {row['seeds']}, success {row['success_mean']:.3f}, "
              f"{row['wall_time_s']:.0f} s")
    plot(out / "depth_scaling.png", rows_by_depth, table, opts)
    print(f"wrote {out / 'depth_scaling.csv'}, {out / 'depth_scaling_summary.csv'} and {out / 'depth_scaling.png'}")


def summarize(rows_by_depth: dict[int, list[dict]], last_evals: int) -> list[dict]:
    """One row per depth: IQM of the seeds' final time at goal with its 95% bootstrap CI, and the seeds."""
    table = []
    for depth, rows in rows_by_depth.items():
        finals = sweep.seed_scores(rows, "time_at_goal", last_evals)
        stats = sweep_stats.summary({"all": finals})
        table.append({"depth": depth, "iqm": stats["iqm"], "iqm_low": stats["iqm_low"], "iqm_high": stats["iqm_high"],
                      "mean": stats["mean"], "seeds": " ".join(f"{v:.3f}" for v in finals),
                      "success_mean": float(np.mean(sweep.seed_scores(rows, "success", last_evals))),
                      "env_steps": rows[-1]["env_steps"], "wall_time_s": rows[-1]["wall_time"]})
    return table


def write_csv(path: Path, rows_by_depth: dict[int, list[dict]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["depth", "env_steps", "wall_time_s", "seed", "success", "time_at_goal", "final_distance"])
        for depth, rows in rows_by_depth.items():
            for r in rows:
                seeds = len(r.get("eval/success_per_seed", [0]))
                for s in range(seeds):
                    vals = [r.get(f"eval/{m}_per_seed", [r[f"eval/{m}"]])[s]
                            for m in ("success", "time_at_goal", "final_distance")]
                    writer.writerow([depth, r["env_steps"], round(r["wall_time"], 1), s, *vals])


def plot(path: Path, rows_by_depth: dict[int, list[dict]], table: list[dict], opts: Options) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    for depth, rows in rows_by_depth.items():
        steps = np.array([r["env_steps"] for r in rows])
        for ax, m in zip(axes[:2], ("time_at_goal", "success"), strict=True):
            mean = np.array([r[f"eval/{m}"] for r in rows])
            std = np.array([r.get(f"eval/{m}_std", 0.0) for r in rows])
            ax.plot(steps, mean, label=f"depth {depth}")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for ax, m in zip(axes[:2], ("time at goal", "success"), strict=True):
        ax.set_xlabel("env steps (per seed)")
        ax.set_ylabel(m)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    ax = axes[2]
    depths = [r["depth"] for r in table]
    iqm = np.array([r["iqm"] for r in table])
    err = np.array([[r["iqm"] - r["iqm_low"] for r in table], [r["iqm_high"] - r["iqm"] for r in table]])
    ax.errorbar(depths, iqm, yerr=np.clip(err, 0, None), marker="o", capsize=4)
    for r in table:
        seeds = [float(v) for v in r["seeds"].split()]
        ax.scatter([r["depth"]] * len(seeds), seeds, color="grey", s=10, zorder=3)
    if len(depths) > 1 and min(depths) > 0 and max(depths) / min(depths) >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xlabel("depth")
    ax.set_ylabel(f"time at goal, last {opts.last_evals} evals")
    ax.set_title("IQM over seeds, 95% bootstrap CI (grey: seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.suptitle(f"CRL depth scaling on {opts.env}: width {opts.width}, {opts.num_seeds} seeds (curves: mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(Options))
