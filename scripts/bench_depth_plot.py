"""Step time and compile time of the CRL update against depth (4 → 1024): run the sweep, then plot it.

    python scripts/bench_depth_plot.py --run --results docs/bench/update_depth.jsonl   # measure (slow)
    python scripts/bench_depth_plot.py --results docs/bench/update_depth.jsonl --out docs/bench/update_depth.png

`--run` calls `depthrl bench update --json` once per (depth, variant) in a fresh process each (so one compile
does not warm the next) and appends the JSON lines to --results; without it the script only plots the
records already there. A variant is depthrl's agent with a given --network-layout/--remat, or the paper's structure
(records with `reference_step_ms`, measured side by side in the same process as depthrl's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

VARIANTS = {  # label -> extra flags of `depthrl bench update`
    "auto layout (unrolled ≤ 16, scan above)": [],
    "scan + remat": ["--network-layout", "scan", "--remat"],
}


def run_sweep(depths: list[int], results: Path, reference_depths: set[int], extra: list[str]) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    for depth in depths:
        for label, flags in VARIANTS.items():
            repeats = "3" if depth >= 256 else "8"
            steps = "1" if depth >= 256 else "4"
            cmd = [sys.executable, "-m", "depthrl.cli", "bench", "update", "--depth", str(depth), "--json",
                   "--repeats", repeats, "--steps-per-call", steps, *flags, *extra]
            if depth in reference_depths and not flags:
                cmd.append("--reference")
            print(" ".join(cmd[2:]), flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                continue
            record = json.loads(proc.stdout.strip().splitlines()[-1])
            record["variant"] = label
            with results.open("a") as f:
                f.write(json.dumps(record) + "\n")


def plot(results: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # label -> depth -> (load, CPU ms per step, compile s): of several records, the least loaded one is kept
    series: dict[str, dict[int, tuple[float, float, float]]] = defaultdict(dict)

    def add(label: str, r: dict, step_cpu_ms: float, compile_s: float) -> None:
        load = r.get("load_avg_1m") or 0.0
        if r["depth"] not in series[label] or load < series[label][r["depth"]][0]:
            series[label][r["depth"]] = (load, step_cpu_ms, compile_s)

    for r in (json.loads(line) for path in results for line in path.read_text().splitlines()):
        if "step_ms" not in r:
            continue
        if "variant" in r:  # records of other sweeps (no variant) contribute only their reference point
            add(r["variant"], r, r["step_cpu_ms"], r["compile_s"])
        if "reference_step_ms" in r:
            add("paper structure (unrolled, measured alongside)", r, r["reference_step_cpu_ms"],
                r["reference_compile_s"])
    if not series:
        raise SystemExit(f"no timed records in {', '.join(map(str, results))}")
    fig, (ax_step, ax_compile) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, by_depth in sorted(series.items()):
        depths = sorted(by_depth)
        ax_step.plot(depths, [by_depth[d][1] for d in depths], "o-", label=label)
        ax_compile.plot(depths, [by_depth[d][2] for d in depths], "o-", label=label)
    for ax, title, unit in ((ax_step, "SGD step (critic + actor + α)", "CPU ms per step"),
                            (ax_compile, "compile time of the update", "seconds")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth (Dense layers in residual blocks)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_step.legend(fontsize=8)
    fig.suptitle("CRL update, width 256, batch 256, Ant shapes (29 + 2 state/goal dims, 8 actions)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, nargs="+", default=[Path("docs/bench/update_depth.jsonl")],
                        help="JSON lines of `depthrl bench update` (--run appends to the first file)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/update_depth.png"), help="the plot")
    parser.add_argument("--run", action="store_true", help="measure the sweep first (minutes to hours on a CPU)")
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 16, 64, 256, 1024], help="depths to measure")
    parser.add_argument("--reference-depths", type=int, nargs="*", default=[4, 16, 64],
                        help="depths where the paper's structure is timed alongside (its compile grows with depth)")
    args, extra = parser.parse_known_args(argv)  # unknown flags go to `depthrl bench update`
    if args.run:
        run_sweep(args.depths, args.results[0], set(args.reference_depths), extra)
    plot(args.results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
