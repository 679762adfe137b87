"""Benchmark: a learning-rate sweep in one program (grouped cells) against one process per cell.

Runs `depthrl sweep --axis critic-lr=LR1,LR2,... --num-seeds S` (CRL) twice, each into a fresh folder with the
compile cache off, and prints one JSON line per mode, then one with the ratio:

  grouped    the cells differ only in --critic-lr, a traced hyper-parameter: one process trains all of them
             (cells × seeds on one vmapped axis), one compile;
  processes  --no-group: one process per cell, --jobs J at a time (the sweep pins each to one XLA thread when
             J > 1).

Per mode: wall seconds of the whole sweep command, compile seconds (the `compile_s` of each process, summed),
env steps/s over all cells and seeds (the sweep's env steps / its wall time), the seconds of one training
epoch of each process (`time/epoch_s` of its last evaluation window), the cells' final eval/success, and
`uptime`'s 1-minute load before and after (other work on the machine slows both modes).

    python scripts/bench_group_sweep.py                 # 4 learning rates × 3 seeds, --jobs 2
    python scripts/bench_group_sweep.py --total-env-steps 4000   # a quick one
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load() -> float:
    return os.getloadavg()[0]


def sweep(out: Path, args: argparse.Namespace, group: bool) -> dict:
    fixed = [f"env={args.env}", f"depth={args.depth}", f"width={args.width}", f"batch-size={args.batch_size}",
             f"num-envs={args.num_envs}", "unroll-length=50", f"sgd-steps-per-collect={args.sgd_steps}",
             f"total-env-steps={args.total_env_steps}", f"eval-every={args.total_env_steps}",
             "num-eval-envs=16", "compile-cache=false", "plots=false", "tensorboard=false"]
    command = [sys.executable, "-m", "depthrl.cli", "sweep", "--axis", "critic-lr=" + ",".join(args.lrs),
               "--num-seeds", str(args.num_seeds), "--fixed", *fixed, "--out", str(out), "--jobs", str(args.jobs),
               "--metric", "success", "--bootstrap-resamples", "200", "--no-progress",
               *([] if group else ["--no-group"])]
    before = load()
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    finals = {p.name: json.loads(p.joinpath("metrics.jsonl").read_text().splitlines()[-1])
              for p in sorted((out / "cells").iterdir())}
    compiles = {round(row["compile_s"], 6) for row in finals.values()} if group else \
        [row["compile_s"] for row in finals.values()]
    env_steps = sum(row["env_steps"] for row in finals.values()) * args.num_seeds
    return {"mode": "grouped" if group else "processes", "cells": len(finals), "num_seeds": args.num_seeds,
            "jobs": args.jobs, "processes": 1 if group else len(finals), "wall_s": round(wall, 1),
            "compile_s": round(sum(compiles), 1), "env_steps_per_s": round(env_steps / wall, 1),
            # One epoch (collect + SGD) of a process: the group's epoch trains every cell, a process's one cell.
            "epoch_s": sorted({round(row["time/epoch_s"], 3) for row in finals.values()}),
            "success": {name: round(row["eval/success"], 3) for name, row in finals.items()},
            "load_before": before, "load_after": load(),
            "grouped_line": next((line for line in proc.stderr.splitlines() if "share one program" in line), None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", nargs="+", default=["1e-4", "3e-4", "1e-3", "3e-3"])
    parser.add_argument("--num-seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time in the --no-group sweep")
    parser.add_argument("--env", default="point-maze-u")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--sgd-steps", type=int, default=8)
    parser.add_argument("--total-env-steps", type=int, default=16_000)
    parser.add_argument("--out", default=None, help="keep the sweeps here (default: a temporary folder)")
    parser.add_argument("--modes", nargs="+", default=["grouped", "processes"], choices=["grouped", "processes"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        results = [sweep(base / mode, args, group=mode == "grouped") for mode in args.modes]
    for result in results:
        print(json.dumps(result))
    if len(results) < 2:
        return
    grouped, processes = results
    print(json.dumps({"throughput_ratio": round(grouped["env_steps_per_s"] / processes["env_steps_per_s"], 2),
                      "compile_ratio": round(processes["compile_s"] / grouped["compile_s"], 2)}))


if __name__ == "__main__":
    main()
