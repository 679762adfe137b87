"""Soak test: SIGKILL a `depthrl train crl` run several times at random moments, resume it each time, and
check that its metrics equal an uninterrupted run's exactly.

    python scripts/soak.py                 # about 10 minutes on a 2-core CPU (`make soak`)
    python scripts/soak.py --kills 3 --env-steps 24000 --work-dir /tmp/soak   # a quick one

Kill moments are drawn from a seeded RNG, in three kinds:
  random  - at a uniformly random moment between two checkpoints (mid-collection, mid-update, mid-eval);
  write   - as soon as a checkpoint's temporary directory appears (mid-checkpoint-write);
  startup - at a random moment soon after launch (mid-import, mid-compile, mid-restore).
After each kill the script checks what the killed process left: every `epoch_*` checkpoint verifies and
metrics.jsonl parses (a torn last line is counted, not an error). It prints PASS or FAIL with the numbers
and exits 0 or 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The only metrics allowed to differ: they measure time.
TIMINGS = {"wall_time", "compile_and_init_s", "compile_s", "init_s"}


def train_command(args: argparse.Namespace, run_dir: Path, resume: bool) -> list[str]:
    if resume:
        return [*_depthrl(), "train", "crl", "--resume", str(run_dir), "--no-progress", "--no-plots"]
    return [*_depthrl(), "train", "crl", "--env", "point-maze-u", "--depth", str(args.depth), "--width", "32",
            "--repr-dim", "16", "--batch-size", "64", "--num-envs", "16", "--unroll-length", "50",
            "--sgd-steps-per-collect", "8", "--total-env-steps", str(args.env_steps),
            "--eval-every", str(args.eval_every), "--num-eval-envs", "16", "--buffer-size", "40000",
            "--seed", str(args.seed), "--run-dir", str(run_dir), "--no-progress", "--no-plots"]


def _depthrl() -> list[str]:
    return [sys.executable, "-m", "depthrl.cli"]


def read_rows(run_dir: Path) -> tuple[list[dict], int]:
    """(parsed rows, number of unparsable lines) of metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    rows, torn = [], 0
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    return rows, torn


def checkpoint_names(run_dir: Path) -> list[str]:
    directory = run_dir / "checkpoints"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def wait_for(predicate, proc: subprocess.Popen, timeout: float, poll: float = 0.002) -> bool:
    """Poll until predicate() holds (True) or the process exits / the timeout passes (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def run_to_end(cmd: list[str], env: dict, log) -> float:
    t0 = time.time()
    result = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {result.returncode} (log: {log.name})")
    return time.time() - t0


def kill_once(cmd: list[str], env: dict, log, run_dir: Path, kind: str, rng: random.Random, interval: float,
              startup: float, advance: int) -> dict:
    """Launch, kill (SIGKILL) at a moment of the given kind, and report what happened. `write` and `random`
    kills first let the run write `advance` new checkpoints (so kills spread over the whole run)."""
    before = set(checkpoint_names(run_dir))
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    prefix = ".tmp_epoch_" if kind == "write" else "epoch_"
    seen: set[str] = set()

    def advanced(count: int) -> bool:
        seen.update(n for n in checkpoint_names(run_dir) if n.startswith(prefix) and n not in before)
        return len(seen) >= count

    first_new = None  # seconds from launch to this process's first new checkpoint (or its write)
    if kind in ("write", "random"):
        if wait_for(lambda: advanced(1), proc, timeout=3 * startup + 20 * interval):
            first_new = time.time() - t0
            if wait_for(lambda: advanced(advance), proc, timeout=3 * startup + 20 * advance * interval):
                if kind == "random":
                    time.sleep(rng.uniform(0.0, interval))
    else:  # startup: before this process writes anything new
        time.sleep(rng.uniform(0.0, 0.9 * startup))
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    names = checkpoint_names(run_dir)
    _, torn = read_rows(run_dir)
    return {"kind": kind, "at_s": round(time.time() - t0, 2), "killed": not finished, "first_new_s": first_new,
            "tmp_left": [n for n in names if n.startswith(".tmp_")],
            "checkpoints": [n for n in names if n.startswith("epoch_")], "torn_lines": torn}


def verify_checkpoints(run_dir: Path) -> list[str]:
    from depthrl.training import checkpoint as ckpt

    problems = []
    for path in ckpt.list_checkpoints(run_dir / "checkpoints"):
        problem = ckpt.verify(path)
        if problem is not None:
            problems.append(f"{path.name}: {problem}")
    return problems


def compare(reference: list[dict], resumed: list[dict]) -> tuple[int, int, list[str]]:
    """(rows compared, values compared, differences)."""
    differences, values = [], 0
    if [r["epoch"] for r in reference] != [r["epoch"] for r in resumed]:
        differences.append(f"epochs differ: {[r['epoch'] for r in reference]} vs {[r['epoch'] for r in resumed]}")
        return 0, 0, differences
    for ref, got in zip(reference, resumed, strict=True):
        for key in sorted(k for k in set(ref) | set(got) if k not in TIMINGS and not k.startswith("time/")):
            values += 1
            a, b = ref.get(key), got.get(key)
            same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
            if not same:
                differences.append(f"epoch {ref['epoch']} {key}: {a!r} != {b!r}")
    return len(reference), values, differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs before the run may finish")
    parser.add_argument("--env-steps", type=int, default=160_000, help="training budget of the soaked run")
    parser.add_argument("--eval-every", type=int, default=3_200, help="env steps between checkpoints")
    parser.add_argument("--depth", type=int, default=8, help="network depth (multiple of 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run and of the kill moments")
    parser.add_argument("--work-dir", default=None, help="where the runs go (default: a new temporary folder)")
    args = parser.parse_args()
    if args.kills < 1 or args.env_steps < 8 * args.eval_every or args.depth % 4:
        parser.error("need --kills >= 1, --env-steps >= 8 x --eval-every, --depth a multiple of 4")

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="depthrl_soak_"))
    for name in ("reference", "killed"):
        shutil.rmtree(work / name, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}  # a private compile cache, shared by both runs
    rng = random.Random(args.seed)
    log = open(work / "soak.log", "w")
    t_start = time.time()

    print(f"soak: reference run ({args.env_steps:,} env steps, checkpoint every {args.eval_every:,}) ...", flush=True)
    ref_dir, run_dir = work / "reference", work / "killed"
    ref_s = run_to_end(train_command(args, ref_dir, resume=False), env, log)
    reference, _ = read_rows(ref_dir)
    span = reference[-1]["wall_time"] - reference[0]["wall_time"]
    interval = span / max(len(reference) - 1, 1)  # between checkpoints
    startup = ref_s - span  # launch to first checkpoint; with a cold compile cache, an overestimate
    print(f"soak: reference took {ref_s:.0f} s ({len(reference)} checkpoints, {interval:.2f} s apart)", flush=True)

    kinds = ["write", "random", "startup"]
    events = []
    for i in range(args.kills):
        kind = kinds[i % 3] if i < 3 else rng.choice(kinds)
        resume = (run_dir / "config.json").exists()
        done = max([int(n.removeprefix("epoch_")) for n in checkpoint_names(run_dir) if n.startswith("epoch_")],
                   default=0)
        remaining = sum(r["epoch"] > done for r in reference)  # checkpoints still to write
        # Expected progress per kill: an equal share of what remains, so kills land all over the run.
        advance = rng.randint(1, max(1, min(remaining - 2, 2 * remaining // (args.kills - i + 1))))
        event = kill_once(train_command(args, run_dir, resume), env, log, run_dir, kind, rng, interval, startup,
                          advance)
        if event["first_new_s"] is not None and resume:  # a warm-cache resume: the startup to draw kills in
            startup = min(startup, event["first_new_s"])
        bad = verify_checkpoints(run_dir)
        if bad:
            event["corrupt_complete_checkpoints"] = bad
        events.append(event)
        print(f"soak: kill {i + 1}/{args.kills}: {json.dumps(event)}", flush=True)
    finish_s = run_to_end(train_command(args, run_dir, resume=True), env, log)
    resumed, torn = read_rows(run_dir)
    rows, values, differences = compare(reference, resumed)
    leftovers = [n for n in checkpoint_names(run_dir) if n.startswith(".tmp_")]

    killed = sum(e["killed"] for e in events)
    problems = list(differences)
    problems += [f"kill {i + 1}: complete checkpoint corrupt: {e['corrupt_complete_checkpoints']}"
                 for i, e in enumerate(events) if "corrupt_complete_checkpoints" in e]
    if killed == 0:
        problems.append("no process was actually killed (the run finished first): lower --eval-every")
    if torn:
        problems.append(f"metrics.jsonl of the finished run has {torn} unparsable line(s)")
    if leftovers:
        problems.append(f"partial checkpoint writes left after the final resume: {leftovers}")
    by_kind = ", ".join(f"{k}={sum(e['kind'] == k and e['killed'] for e in events)}" for k in kinds)
    summary = (f"{killed} SIGKILLs ({by_kind}"
               f"; {sum(bool(e['tmp_left']) for e in events)} left a .tmp_* checkpoint, "
               f"{sum(e['torn_lines'] > 0 for e in events)} a torn metrics line), final resume {finish_s:.0f} s; "
               f"{rows} rows x metrics = {values} values compared with the uninterrupted reference, "
               f"{len(differences)} differ; total {time.time() - t_start:.0f} s; work dir {work}")
    if resumed:
        last = resumed[-1]
        summary += (f"\nsoak: final eval success {last['eval/success']:.3f}, "
                    f"time_at_goal {last['eval/time_at_goal']:.3f}, critic/loss {last['critic/loss']:.6f} "
                    f"at {last['env_steps']:,} env steps")
    if problems:
        print("soak: FAIL: " + summary)
        for problem in problems[:20]:
            print(f"  {problem}")
        return 1
    print("soak: PASS: " + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
