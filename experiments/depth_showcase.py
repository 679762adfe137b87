"""Depth showcase: does a deep CRL critic beat a shallow one on a CPU task built for it?

The task is the `depth-showcase-dD` presets' (docs/results.md, "Depth showcase"): the crawler in the U4-maze
(`crawler-maze-u4`: a 12-d joint-space state whose base position is the 2-d goal, moving only by a
coordinated gait), episodes starting in any free cell (`--random-start`, in training and evaluation), CRL at
width 64 with the CPU recipe, 3 M env steps per seed. The sweep trains every depth with the same env steps and
seeds (vmapped in one process per depth), then:

- OUT/aggregate.png, aggregate.csv, curves.csv, scores.csv: time at goal against env steps (IQM over seeds
  with 95% stratified bootstrap bands) and the final score against depth (IQM, 95% CI);
- OUT/showcase.csv: per deeper depth, its IQM over depth 4's, and whether the two 95% CIs overlap (the
  goal: ratio >= 1.5 without overlap);
- OUT/wall_scores.csv and OUT/q_heatmaps.png: the representation contrast of the paper's Fig. 9. For every
  seed, the Spearman rank correlation of the critic's energy over the maze's cell centres with −(shortest
  path) and with −(Euclidean distance) to the farthest goal; the heat-maps of the shallowest and deepest
  critics (seed 0) side by side.

Resumable: a finished depth is skipped and a killed one continues from its checkpoint (`depthrl.sweep`).
Pilots of other settings (--env, --batch-size, --sgd-steps-per-collect, budget, seeds) need their own --out.

    .venv/bin/python experiments/depth_showcase.py                       # depths 4, 16, 64 x 5 seeds
    .venv/bin/python experiments/depth_showcase.py --depths 4 16 --num-seeds 3 --total-env-steps 2000000 \
        --batch-size 512 --out experiments/out/showcase_b512
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import tyro

from common import Options, run
from depthrl import sweep
from depthrl.errors import ConfigError
from depthrl.training.presets import SHOWCASE_ENV, SHOWCASE_TRAIN
from representations import critic_fn, heatmap_image, plot_side_by_side, wall_scores

_TRAIN_FIELDS = ("num_envs", "unroll_length", "num_eval_envs")


@dataclasses.dataclass(frozen=True)
class ShowcaseOptions(Options):
    env: str = SHOWCASE_ENV.env
    """Task: a crawler maze (crawler-maze-u4, -big, -hardest, ...) or, as a control, a point-mass maze."""
    depths: tuple[int, ...] = (4, 16, 64)
    """Depths compared (multiples of 4); the first is the baseline the others are divided by."""
    width: int = 64
    """Width of every network."""
    random_start: bool = SHOWCASE_ENV.random_start
    """Start episodes (training and evaluation) anywhere free instead of at the maze's reset cell; without it
    neither critic learned the maze's walls (docs/results.md)."""
    batch_size: int = 256
    """Transitions per SGD step (also the contrastive loss's negatives)."""
    sgd_steps_per_collect: int = SHOWCASE_TRAIN.sgd_steps_per_collect
    """SGD steps after each collection of num_envs x unroll_length env steps (the update-to-data ratio)."""
    eval_every: int = SHOWCASE_TRAIN.eval_every
    """Evaluation interval in env steps."""

    def validate(self) -> None:
        super().validate()
        if self.paper:
            raise ConfigError("--scale", self.scale, "the showcase is a CPU task; the paper's version is the "
                              "Ant U4-maze (`depthrl train --preset ant-u4-maze-d64`, GPU)")
        if len(self.depths) < 2:
            raise ConfigError("--depths", self.depths, "give a baseline and at least one deeper depth")
        if not self.env.startswith(("crawler-maze", "point-maze")):
            raise ConfigError("--env", self.env, "the showcase draws the critic over a maze: give a crawler-maze-* "
                              "or point-maze-* env")
        for name in ("width", "batch_size", "sgd_steps_per_collect", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}", getattr(self, name), "must be >= 1")

    def seeds(self) -> int:
        return self.num_seeds or 5

    def steps(self) -> int:
        return self.total_env_steps or SHOWCASE_TRAIN.total_env_steps


def contrast(table: list[dict], depths: tuple[int, ...]) -> list[dict]:
    """Per deeper depth: IQM ratio to the first depth and whether their 95% CIs are disjoint (above).
    Depths without a finished run (and all of them without the baseline) are left out."""
    by_depth = {row["depth"]: row for row in table}
    base = by_depth.get(depths[0])
    rows = []
    for depth in depths[1:]:
        row = by_depth.get(depth)
        if base is None or row is None:
            continue
        rows.append({"depth": depth, "baseline_depth": depths[0], "iqm": row["iqm"], "baseline_iqm": base["iqm"],
                     "ratio": row["iqm"] / base["iqm"] if base["iqm"] > 0 else float("inf"),
                     "ci_low": row["iqm_low"], "baseline_ci_high": base["iqm_high"],
                     "cis_disjoint": bool(row["iqm_low"] > base["iqm_high"])})
    return rows


def check_out_dir(out: Path, fixed: dict, num_seeds: int) -> None:
    """A sweep folder holds one setting: its unfinished cells resume with their own stored flags, so a rerun
    with other settings (env, recipe, budget, seeds) must go to another --out. Depths may be added."""
    stored = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").is_file() else None
    if stored is not None and (stored.get("fixed") != fixed or stored.get("num_seeds") != num_seeds):
        changed = sorted(k for k in {*fixed, *stored.get("fixed", {})} if stored["fixed"].get(k) != fixed.get(k))
        changed += ["num_seeds"] if stored.get("num_seeds") != num_seeds else []
        raise ConfigError("--out", str(out), f"holds a showcase sweep with other {', '.join(changed)}; "
                          "give another --out for these settings")


def main(opts: ShowcaseOptions) -> None:
    opts.validate()
    fixed = {"env": opts.env, "random_start": opts.random_start, "width": opts.width,
             "batch_size": opts.batch_size, "total_env_steps": opts.steps(), "plots": False,
             **{f: getattr(SHOWCASE_TRAIN, f) for f in _TRAIN_FIELDS},
             "sgd_steps_per_collect": opts.sgd_steps_per_collect, "eval_every": opts.eval_every}
    check_out_dir(opts.out_dir("depth_showcase"), fixed, opts.seeds())
    result = run("depth_showcase", opts, "crl", {"depth": opts.depths}, fixed,
                 title=f"Depth showcase ({opts.env}{', random starts' if opts.random_start else ''}): "
                       f"IQM time at goal over {opts.seeds()} seeds")
    out = opts.out_dir("depth_showcase")
    rows = contrast(result.table, opts.depths)
    sweep.write_csv(out / "showcase.csv", rows)
    for r in rows:
        print(f"  depth {r['depth']} / depth {r['baseline_depth']}: {r['ratio']:.2f}x "
              f"(IQM {r['iqm']:.3f} vs {r['baseline_iqm']:.3f}), "
              f"95% CIs {'disjoint' if r['cis_disjoint'] else 'overlap'}")
    scores, panels = [], []
    shown = (opts.depths[0], max(opts.depths))
    for cell in result.cells:
        depth = cell.values["depth"]
        for seed in range(cell.num_seeds):
            layout, goal, fn = critic_fn(cell.run_dir, seed)
            s = wall_scores(layout, goal, fn)
            gap = s["spearman_path"] - s["spearman_euclid"]
            scores.append({"depth": depth, "seed_index": seed, **s, "path_minus_euclid": gap})
            if seed == 0 and depth in shown:
                panels.append((f"depth {depth} (seed 0): Spearman vs path {s['spearman_path']:.2f}, "
                               f"vs Euclid {s['spearman_euclid']:.2f}", layout, goal, heatmap_image(layout, fn)))
    sweep.write_csv(out / "wall_scores.csv", scores)
    for depth in opts.depths:
        gaps = [s["path_minus_euclid"] for s in scores if s["depth"] == depth]
        print(f"  depth {depth}: Spearman(−path) − Spearman(−Euclid), mean over {len(gaps)} seeds {np.mean(gaps):+.3f}")
    heatmaps = plot_side_by_side(out / "q_heatmaps.png", panels)
    print(f"wrote {out / 'showcase.csv'}, {out / 'wall_scores.csv'} and {heatmaps}")


if __name__ == "__main__":
    main(tyro.cli(ShowcaseOptions))
