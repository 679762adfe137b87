"""Recompute the statistics docs/results.md shows from the CSVs in docs/results/, with depthrl.sweep.stats
(rliable's IQM = 25% trimmed mean, stratified bootstrap CIs, probability of improvement, performance
profiles). No training: the seeds' scores are read back from the CSVs.

    .venv/bin/python experiments/results_stats.py            # reads and rewrites docs/results/

- The depth-scaling runs (§ 1) keep every evaluation of every seed (depth_scaling_u*.csv): a seed's score
  is the mean of its last 3 evaluations, as experiments/depth_scaling.py computes it. Their summaries and
  plots are redrawn with depth_scaling.py's own code.
- The sweeps' aggregate CSVs (§ 2–9) hold, per group of n ≤ 5 seeds, min, median, max, mean and std
  (population): that fixes every seed's score. n ≤ 3: min, median, max; n = 4 or 5: the two unknown middle
  scores a ≤ b follow from their sum (n·mean − the known ones) and their sum of squares (n·(std² + mean²)
  − the known squares). Each reconstruction is checked against all five columns and against the IQM column
  the sweep wrote (the fractional IQM, `stats.fractional_iqm`, before this script rewrote it).

Writes docs/results/seed_scores.csv (every seed's score), probability_of_improvement.csv (the comparisons
docs/results.md makes), depth_scaling_u4_profile.png (performance profiles of § 1's U4-maze run), rewrites
the iqm columns of the aggregate CSVs and the two depth-scaling summaries, and prints every table.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import tyro

from depthrl import sweep
from depthrl.sweep import stats as aggregate

EXPERIMENTS = Path(__file__).resolve().parent
STAT_COLUMNS = ("strata", "runs", "mean", "std", "median", "iqm", "iqm_low", "iqm_high", "min", "max")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """P(X > Y) along `group_by[0]` (within each value of the other axes), against `baseline` or pairwise."""

    group_by: tuple[str, ...]
    baseline: str | None = None


def _net_axes(label: str) -> dict:
    """'actor 4 / critic 16' -> {'actor': 4, 'critic': 16}."""
    parts = dict(p.split() for p in label.split(" / "))
    return {k: int(v) for k, v in parts.items()}


# CSV (in docs/results/) -> the comparisons docs/results.md makes, and how a row's group is named.
SWEEPS: dict[str, tuple[list[Comparison], object]] = {
    "depth_width": ([Comparison(("net",))], None),
    "batch_depth": ([Comparison(("batch_size", "depth")), Comparison(("depth", "batch_size"))], None),
    "actor_critic_depth": ([Comparison(("critic", "actor")), Comparison(("actor", "critic"))], _net_axes),
    "representations": ([Comparison(("depth",))], None),
    "stitching": ([Comparison(("depth",))], None),
    "exploration_expressivity": ([Comparison(("depth", "collector_depth")),
                                  Comparison(("collector_depth", "depth"))], None),
    "value_classification_dqn": ([Comparison(("critic_loss", "depth"), "mse"),
                                  Comparison(("depth", "critic_loss"), "4")], None),
    "value_classification_sac": ([Comparison(("critic_loss", "depth"), "mse")], None),
    "value_classification_td3": ([Comparison(("critic_loss", "depth"), "mse")], None),
    "ablations": ([Comparison(("variant", "depth"), "baseline")], None),
}
DEPTH_SCALING = {"depth_scaling_u4": "point-maze-u4", "depth_scaling_u": "point-maze-u"}


@dataclasses.dataclass(frozen=True)
class Options:
    results: str = "docs/results"
    """Folder of the CSVs (read, and rewritten with the new statistics)."""
    last_evals: int = 3
    """Score of a depth-scaling seed = mean of its last this many evaluations (as docs/results.md uses)."""
    write: bool = True
    """Rewrite the CSVs and plots (otherwise print only)."""


def _value(text: str):
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def seeds_from_row(row: dict) -> list[float]:
    """The n ≤ 5 seed scores (sorted) of one aggregate row, from its min, median, max, mean and std."""
    n, mean, std = int(row["runs"]), float(row["mean"]), float(row["std"])
    known = [float(row["min"]), float(row["max"])] if n >= 2 else [mean]
    if n >= 3 and n % 2:
        known.append(float(row["median"]))
    unknown = n - len(known)
    total = n * mean - sum(known)
    squares = n * (std**2 + mean**2) - sum(x * x for x in known)
    if unknown == 1:
        known.append(total)
    elif unknown == 2:
        half = math.sqrt(max(squares / 2 - total**2 / 4, 0.0))
        known += [total / 2 - half, total / 2 + half]
    elif unknown > 2:
        raise ValueError(f"{n} runs: min, median, max, mean and std fix at most 5 scores")
    seeds = sorted(known)
    x = np.array(seeds)
    for name, got in (("mean", [x.mean()]), ("std", [x.std()]), ("median", [np.median(x)]), ("min", [x.min()]),
                      ("max", [x.max()]), ("iqm", [aggregate.iqm(x), aggregate.fractional_iqm(x)])):
        if not any(math.isclose(g, float(row[name]), rel_tol=1e-6, abs_tol=1e-6) for g in got):
            raise ValueError(f"reconstructed seeds {seeds} give {name} {got}, the CSV {row[name]}")
    return seeds


def depth_scaling_rows(path: Path) -> dict[int, list[dict]]:
    """metrics.jsonl-like rows per depth (per-seed lists, means, stds) from depth_scaling.py's CSV."""
    by: dict[int, dict[int, dict]] = {}
    for r in read_csv(path):
        row = by.setdefault(int(r["depth"]), {}).setdefault(int(r["env_steps"]), {
            "env_steps": int(r["env_steps"]), "wall_time": float(r["wall_time_s"])})
        for m in ("success", "time_at_goal", "final_distance"):
            row.setdefault(f"eval/{m}_per_seed", []).append(float(r[m]))
    for rows in by.values():
        for row in rows.values():
            for m in ("success", "time_at_goal", "final_distance"):
                values = row[f"eval/{m}_per_seed"]
                row[f"eval/{m}"], row[f"eval/{m}_std"] = float(np.mean(values)), float(np.std(values))
    return {d: [rows[s] for s in sorted(rows)] for d, rows in by.items()}


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def main(opts: Options) -> None:
    if str(EXPERIMENTS) not in sys.path:  # depth_scaling.py sits next to this script
        sys.path.insert(0, str(EXPERIMENTS))
    import depth_scaling

    results = Path(opts.results)
    seed_rows, improvement = [], []
    # § 1: depth scaling, from every evaluation of every seed.
    for name, env in DEPTH_SCALING.items():
        rows_by_depth = depth_scaling_rows(results / f"{name}.csv")
        table = depth_scaling.summarize(rows_by_depth, opts.last_evals)
        old = {r["depth"]: r for r in read_csv(results / f"{name}_summary.csv")}
        for row in table:  # the per-evaluation CSV rounds the wall time to 0.1 s; the summary kept it whole
            row["wall_time_s"] = old[row["depth"]]["wall_time_s"]
        records = []
        print(f"\n## {name} (IQM = trimmed mean; old = the CSV's previous IQM)")
        for row in table:
            seeds = sweep.seed_scores(rows_by_depth[row["depth"]], "time_at_goal", opts.last_evals)
            records += [{"depth": row["depth"], "score": s} for s in seeds]
            seed_rows += [{"analysis": name, "group": f"depth={row['depth']}", "seed": i, "score": s}
                          for i, s in enumerate(seeds)]
            print(f"depth {row['depth']}: IQM {fmt(row['iqm'])} ({fmt(row['iqm_low'])}–{fmt(row['iqm_high'])}), "
                  f"old {fmt(old[row['depth']]['iqm'])}, seeds {row['seeds']}")
        improvement += report(name, records, [Comparison(("depth",))])  # every depth against each shallower one
        deeper = [dict(r, depth="8-64") for r in records if r["depth"] != 4]
        improvement += report(name, deeper + [r for r in records if r["depth"] == 4], [Comparison(("depth",), "4")])
        if opts.write:
            sweep.write_csv(results / f"{name}_summary.csv", table)
            plot_opts = depth_scaling.Options(env=env, depths=tuple(rows_by_depth), last_evals=opts.last_evals)
            depth_scaling.plot(results / f"{name}.png", rows_by_depth, table, plot_opts)
            if name == "depth_scaling_u4":
                sweep.plot_performance_profile(
                    results / f"{name}_profile.png", records, ["depth"], [], "time_at_goal",
                    title="CRL depth on the U4-maze, 3 M steps: performance profiles (3 seeds per depth)")
    # § 2–9: the sweeps' aggregate CSVs.
    for name, (comparisons, parse) in SWEEPS.items():
        rows = read_csv(results / f"{name}.csv")
        group_axes = [k for k in rows[0] if k not in STAT_COLUMNS]
        records, new_rows = [], []
        print(f"\n## {name}")
        for row in rows:
            seeds = seeds_from_row(row)
            group = {k: row[k] for k in group_axes}
            label = ", ".join(f"{k}={v}" for k, v in group.items())
            axes = {**group, **(parse(row[group_axes[0]]) if parse else {})}
            records += [{**axes, "score": s} for s in seeds]
            seed_rows += [{"analysis": name, "group": label, "seed": "", "score": s} for s in seeds]
            stats = aggregate.summary({"all": seeds})
            new_rows.append({**group, "strata": 1, **stats})
            digits = 0 if stats["max"] > 10 else 3
            print(f"{label}: IQM {fmt(stats['iqm'], digits)} ({fmt(stats['iqm_low'], digits)}–"
                  f"{fmt(stats['iqm_high'], digits)}), old {fmt(row['iqm'], digits)}, "
                  f"seeds {' / '.join(fmt(s, digits) for s in seeds)}")
        improvement += report(name, records, comparisons)
        if opts.write:
            sweep.write_csv(results / f"{name}.csv", new_rows)
    if opts.write:
        sweep.write_csv(results / "seed_scores.csv", seed_rows)
        sweep.write_csv(results / "probability_of_improvement.csv", improvement)
        print(f"\nwrote {results}/seed_scores.csv, probability_of_improvement.csv, the iqm columns and § 1's plots")


def report(name: str, records: list[dict], comparisons: list[Comparison]) -> list[dict]:
    """The probability-of-improvement rows of `comparisons` (printed), as flat rows for one CSV."""
    out = []
    for comp in comparisons:
        first, rest = comp.group_by[0], list(comp.group_by[1:])
        for row in sweep.improvement_records(records, list(comp.group_by), [], comp.baseline):
            where = ", ".join(f"{k}={row[k]}" for k in rest)
            print(f"{sweep.improvement_line(row)}, {row['runs']} vs {row['vs_runs']} runs")
            out.append({"analysis": name, "axis": first, "x": row[first], "y": row["vs_" + first], "at": where,
                        "runs_x": row["runs"], "runs_y": row["vs_runs"], "prob_improvement": row["prob_improvement"],
                        "prob_improvement_low": row["prob_improvement_low"],
                        "prob_improvement_high": row["prob_improvement_high"]})
    return out


if __name__ == "__main__":
    main(tyro.cli(Options))
