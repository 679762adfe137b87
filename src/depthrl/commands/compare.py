"""Compare runs side by side: one table of their configs and final numbers, one plot of their learning curves.

Example (a depth sweep): depthrl compare runs/depth-u-d4 runs/depth-u-d16 runs/depth-u-d64 --out depth.png

Runs of a Table 1 task at depth 4 or 64 also get the paper's number (steps at goal of 1000) beside their
final `eval/steps_at_goal` (the same count).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import tyro

from depthrl.errors import ConfigError

DEFAULT_METRICS = ("eval/time_at_goal", "eval/success")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


@dataclasses.dataclass(frozen=True)
class Args:
    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR...")]
    """Run directories to compare (written by `depthrl train`)."""
    out: str = "compare.png"
    """Plot file (.png, .pdf or .svg): one panel per --metrics entry, one line per run."""
    metrics: tuple[str, ...] = DEFAULT_METRICS
    """Metrics of metrics.jsonl to tabulate and plot against env steps (reward envs: eval/return)."""
    json: bool = False
    """Print one JSON object per run instead of the table."""

    def validate(self) -> Args:
        if not self.run_dirs:
            raise ConfigError("RUN_DIRS", (), "give at least one run directory")
        if not self.out.lower().endswith(PLOT_SUFFIXES):
            raise ConfigError("--out", self.out, f"must end in one of {', '.join(PLOT_SUFFIXES)}")
        if not self.metrics:
            raise ConfigError("--metrics", (), "give at least one metric, e.g. eval/time_at_goal")
        return self


@dataclasses.dataclass(frozen=True)
class RunSummary:
    label: str
    run_dir: str
    kind: str
    config: dict
    rows: list[dict]

    def final(self, name: str) -> float | None:
        values = [r[name] for r in self.rows if isinstance(r.get(name), float | int)]
        return float(values[-1]) if values else None

    def best(self, name: str) -> float | None:
        values = [r[name] for r in self.rows if isinstance(r.get(name), float | int)]
        return float(max(values)) if values else None

    def record(self, metrics: tuple[str, ...]) -> dict:
        agent, train, last = self.config.get("agent", {}), self.config.get("train", {}), self.rows[-1]
        out = {"run": self.label, "run_dir": self.run_dir, "kind": self.kind,
               "env": self.config.get("env", {}).get("env"), "depth": agent.get("depth"),
               "actor_depth": agent.get("actor_depth"), "critic_depth": agent.get("critic_depth"),
               "width": agent.get("width"), "batch_size": agent.get("batch_size"),
               "num_seeds": train.get("num_seeds"), "env_steps": last.get("env_steps"),
               "wall_time_s": last.get("wall_time"), "compile_s": last.get("compile_s"),
               "epoch_s": last.get("time/epoch_s")}
        for name in metrics:
            out[f"final {name}"] = self.final(name)
            out[f"final {name}_std"] = self.final(f"{name}_std")
            out[f"best {name}"] = self.best(name)
        # Table 1 runs: the paper's number (steps at goal of 1000) beside the same count of this run
        from depthrl.training.presets import paper_steps_at_goal

        one_depth = out["actor_depth"] is None and out["critic_depth"] is None
        out["paper steps_at_goal"] = paper_steps_at_goal(out["env"], out["depth"]) if one_depth else None
        out["final eval/steps_at_goal"] = self.final("eval/steps_at_goal")
        return out


def load_runs(run_dirs: tuple[str, ...]) -> list[RunSummary]:
    from depthrl.training import runner

    summaries = []
    names = [Path(d).name for d in run_dirs]
    for run_dir, name in zip(run_dirs, names, strict=True):
        path = Path(run_dir)
        config_path = path / runner.CONFIG_FILE
        if not config_path.is_file():
            raise ConfigError("RUN_DIRS", run_dir, f"not a run directory (no {runner.CONFIG_FILE})")
        rows = runner.read_metrics(path)
        if not rows:
            raise ConfigError("RUN_DIRS", run_dir, f"has no evaluations yet ({runner.METRICS_FILE} is empty)")
        config = json.loads(config_path.read_text())
        label = name if names.count(name) == 1 else str(path)
        summaries.append(RunSummary(label=label, run_dir=str(path), kind=config.get("kind", "crl"),
                                    config=config, rows=rows))
    return summaries


def plot(summaries: list[RunSummary], metrics: tuple[str, ...], out: Path) -> Path:
    """One panel per metric (vs env steps), one line per run (mean ± std over seeds where logged)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(metrics), 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, name in zip(axes, metrics, strict=True):
        for i, run in enumerate(summaries):
            rows = [r for r in run.rows if isinstance(r.get(name), float | int)]
            if not rows:
                continue
            steps = np.array([r["env_steps"] for r in rows], float)
            mean = np.array([r[name] for r in rows], float)
            std = np.array([r.get(f"{name}_std", 0.0) for r in rows], float)
            ax.plot(steps, mean, marker="o", markersize=3, color=f"C{i % 10}", label=run.label)
            ax.fill_between(steps, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
        ax.set_xlabel("env steps")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(" vs ".join(s.label for s in summaries), fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def _fmt(value, spread=None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
        return text + (f" ± {spread:.3f}" if spread else "")
    return f"{value:,}" if isinstance(value, int) else str(value)


def main(args: Args) -> int:
    args.validate()
    summaries = load_runs(args.run_dirs)
    records = [s.record(args.metrics) for s in summaries]
    out = plot(summaries, args.metrics, Path(args.out))
    if args.json:
        for record in records:
            print(json.dumps(record))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="depthrl compare")
    paper = any(r["paper steps_at_goal"] is not None for r in records)
    columns = ["run", "agent", "env", "depth", "width", "batch", "seeds", "env steps",
               *[f"final {m}" for m in args.metrics], f"best {args.metrics[0]}", "wall s", "compile s",
               *(["steps at goal", "paper (Table 1)"] if paper else [])]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "agent", "env") else "right")
    for r in records:
        depth = r["depth"]
        if r["actor_depth"] is not None or r["critic_depth"] is not None:
            depth = f"a{r['actor_depth'] or depth}/c{r['critic_depth'] or depth}"
        table.add_row(r["run"], r["kind"], str(r["env"]), _fmt(depth), _fmt(r["width"]), _fmt(r["batch_size"]),
                      _fmt(r["num_seeds"]), _fmt(r["env_steps"]),
                      *[_fmt(r[f"final {m}"], r[f"final {m}_std"]) for m in args.metrics],
                      _fmt(r[f"best {args.metrics[0]}"]), _fmt(r["wall_time_s"]), _fmt(r["compile_s"]),
                      *([_fmt(r["final eval/steps_at_goal"]), _fmt(r["paper steps_at_goal"])] if paper else []))
    Console(width=max(160, Console().width)).print(table)
    print(f"plot: {out}")
    return 0
