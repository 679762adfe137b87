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
process per seed instead.

A cell whose process is killed (out of memory, preempted node, a Ray worker that died) is retried up to
`--max-retries` times; each attempt decides its command when it starts, so a retry continues the cell's own
run directory from its last checkpoint (`--resume`) instead of starting over.

Resumable: a cell whose run directory holds its final evaluation is skipped; a cell killed mid-run is
continued from its last checkpoint (`--resume`). A rich table shows every cell while the sweep runs.

At the end, scores (per seed: the mean of the last `--last-evals` evaluations of `eval/METRIC`) are
aggregated over seeds, per value of the `--group-by` axes, as rliable does (`depthrl.aggregate`): the IQM
(25% trimmed mean) with its 95% stratified bootstrap CI, the probability of improvement between values of
the first group axis with its CI, and performance profiles. Files: OUT/scores.csv (one row per seed),
OUT/aggregate.csv, OUT/probability_of_improvement.csv, OUT/curves.csv, OUT/aggregate.png,
OUT/performance_profile.png.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from depthrl.errors import ConfigError

# Flags the sweep sets itself for every cell: a grid may not set them.
_RESERVED = {"run_dir", "resume", "overwrite", "progress", "preset", "num_seeds", "kind"}
SEED_AXIS = "seed"


@dataclasses.dataclass(frozen=True)
class Args:
    """Run a grid of `depthrl train` runs (locally or on Ray), resumable, and aggregate it (IQM + 95% CI)."""

    kind: str | None = None
    """Train command of every cell: crl, sac, td3, dqn, ppo, ... (default: the spec's, else crl)."""
    axis: tuple[str, ...] = ()
    """Grid axes as NAME=V1,V2,... (NAME = a train flag without dashes, e.g. depth=4,16 critic-loss=mse,c51)."""
    fixed: tuple[str, ...] = ()
    """Flags shared by every cell as NAME=VALUE (e.g. env=point-maze-u width=64 total-env-steps=1000000)."""
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


# -- the grid ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains: a train command, its grid axes, shared flags, seeds per cell."""

    kind: str = "crl"
    axes: dict[str, tuple] = dataclasses.field(default_factory=dict)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_seeds: int = 1

    def to_json(self) -> dict:
        return {"kind": self.kind, "axes": {k: list(v) for k, v in self.axes.items()}, "fixed": dict(self.fixed),
                "num_seeds": self.num_seeds}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    name: str
    values: dict[str, Any]  # axis name -> value of this cell
    flags: tuple[str, ...]  # the train command's flags (without --run-dir and the sweep's own)
    run_dir: Path
    num_epochs: int  # evaluations stop at this epoch: the cell is finished when metrics reach it
    num_seeds: int
    learned: dict = dataclasses.field(default_factory=dict, compare=False)  # what is trained: kind, env, agent, train


def _norm(name: str) -> str:
    return name.strip().lstrip("-").replace("-", "_")


def _parse_value(text: str) -> Any:
    """A flag value from the command line: JSON where it parses (4, 1e-3, true, null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str], flag: str, many: bool) -> dict[str, Any]:
    """["depth=4,16", ...] -> {"depth": (4, 16)} (many) or ["width=64"] -> {"width": 64}."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(flag, item, "write NAME=VALUE" + (",VALUE..." if many else ""))
        name, text = item.split("=", 1)
        name = _norm(name)
        if not name or not text:
            raise ConfigError(flag, item, "write NAME=VALUE" + (",VALUE..." if many else ""))
        out[name] = tuple(_parse_value(v) for v in text.split(",")) if many else _parse_value(text)
    return out


def load_spec(path: str | None) -> SweepSpec:
    if path is None:
        return SweepSpec()
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ConfigError("--spec", path, f"cannot be read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError("--spec", path, f"is not valid JSON ({err})") from None
    if not isinstance(data, dict) or set(data) - {"kind", "axes", "fixed", "num_seeds"}:
        raise ConfigError("--spec", path, "must be a JSON object with keys among kind, axes, fixed, num_seeds")
    axes = data.get("axes", {})
    fixed = data.get("fixed", {})
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError("--spec", path, "axes must map each flag name to a non-empty list of values")
    if not isinstance(fixed, dict):
        raise ConfigError("--spec", path, "fixed must map flag names to values")
    return SweepSpec(kind=data.get("kind", "crl"), axes={_norm(k): tuple(v) for k, v in axes.items()},
                     fixed={_norm(k): v for k, v in fixed.items()}, num_seeds=int(data.get("num_seeds", 1)))


def spec_from_args(args: Args) -> SweepSpec:
    base = load_spec(args.spec)
    axes = {**base.axes, **parse_assignments(args.axis, "--axis", many=True)}
    fixed = {**base.fixed, **parse_assignments(args.fixed, "--fixed", many=False)}
    fixed = {k: v for k, v in fixed.items() if k not in axes}  # an axis given on the command line wins
    return SweepSpec(kind=args.kind or base.kind, axes=axes, fixed=fixed,
                     num_seeds=args.num_seeds if args.num_seeds is not None else base.num_seeds)


def flag_args(name: str, value: Any) -> list[str]:
    """The command-line words of one train flag: --depth 4, --skip / --no-skip, --actor-depth None."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag] if value else ["--no-" + name.replace("_", "-")]
    if value is None:
        return [flag, "None"]
    if isinstance(value, list | tuple):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]


def _safe(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(value).lower() if isinstance(value, bool) else str(value))


def bundle_label(bundle: dict[str, Any]) -> str:
    """The axis value shown for a bundle of flags: its "name", else its flags (e.g. "depth=4,width=128")."""
    return str(bundle["name"]) if "name" in bundle else ",".join(f"{k}={v}" for k, v in bundle.items()) or "default"


def cell_name(values: dict[str, Any]) -> str:
    return "__".join(f"{k}={_safe(v)}" for k, v in values.items()) or "cell"


def expand(spec: SweepSpec, out: Path, parse: Callable[[str, list[str]], Any] | None = None) -> list[Cell]:
    """Every cell of the grid, validated (flags parsed by the train command, its config checked) before any
    compute. `parse(kind, flags) -> Args` defaults to the train command's own tyro parser."""
    if spec.num_seeds < 1:
        raise ConfigError("--num-seeds", spec.num_seeds, "must be >= 1")
    for name in [*spec.axes, *spec.fixed]:
        if name in _RESERVED:
            raise ConfigError("--axis" if name in spec.axes else "--fixed", name,
                              "is set by the sweep itself (use --out, --num-seeds, --kind)")
    parse = parse or parse_train_flags
    names = list(spec.axes)
    cells = []
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        values = {n: bundle_label(v) if isinstance(v, dict) else v for n, v in zip(names, combo, strict=True)}
        chosen: dict[str, Any] = {}
        for n, v in zip(names, combo, strict=True):  # a bundle sets several flags at once
            chosen.update({k: x for k, x in v.items() if k != "name"} if isinstance(v, dict) else {n: v})
        for name in chosen:
            if name in _RESERVED:
                raise ConfigError("--axis", name, "is set by the sweep itself (use --out, --num-seeds, --kind)")
        flags = [w for k, v in {**spec.fixed, **chosen}.items() for w in flag_args(k, v)]
        flags += ["--num-seeds", str(spec.num_seeds)]
        name = cell_name(values)
        train_args = parse(spec.kind, flags)
        cells.append(Cell(name=name, values=values, flags=tuple(flags), run_dir=out / "cells" / name,
                          num_epochs=train_args.train.num_epochs, num_seeds=spec.num_seeds,
                          learned=learned_config(dataclasses.asdict(train_args))))
    if len({c.name for c in cells}) != len(cells):
        raise ConfigError("--axis", list(spec.axes), "two cells get the same directory name: make the values distinct")
    return cells


def parse_train_flags(kind: str, flags: list[str]) -> Any:
    """`depthrl train KIND FLAGS` parsed and validated (config only: no run directory, no compute)."""
    import contextlib
    import io

    import tyro

    from depthrl.training import command

    module = command.command_module(kind)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = tyro.cli(module.Args, args=flags, prog=f"depthrl train {kind}")
    except SystemExit:
        message = " ".join(stderr.getvalue().split())[-400:]
        raise ConfigError("--axis/--fixed", " ".join(flags),
                          f"not accepted by `depthrl train {kind}`: {message}") from None
    command.validate_config(args)
    return args


# -- cell state and execution -----------------------------------------------------------------------------
def read_rows(run_dir: Path) -> list[dict]:
    from depthrl.training.runner import read_metrics

    return read_metrics(run_dir)


def cell_state(cell: Cell) -> str:
    """`done` (final evaluation logged), `partial` (a run was started: resume it) or `pending`."""
    rows = read_rows(cell.run_dir)
    if rows and rows[-1].get("epoch") == cell.num_epochs:
        return "done"
    if (cell.run_dir / "config.json").is_file():
        return "partial"
    return "pending"


def learned_config(config: dict) -> dict:
    """The part of a run's config.json that decides what is learned (not where it is written or shown)."""
    return {k: config.get(k) for k in ("kind", "env", "agent", "train")}


def find_equivalent(cell: Cell, roots: Sequence[Path]) -> Path | None:
    """A finished run directory under ROOT/cells/* with exactly this cell's training config (same kind, env,
    agent, train flags, seeds): the same run, so its results are this cell's (runs are deterministic)."""
    for root in roots:
        for run_dir in sorted(Path(root).glob("cells/*")):
            if run_dir.resolve() == cell.run_dir.resolve() or not (run_dir / "config.json").is_file():
                continue
            stored = _stored_learned(run_dir, cell.learned.get("kind"))
            rows = read_rows(run_dir)
            if stored == cell.learned and rows and rows[-1].get("epoch") == cell.num_epochs:
                return run_dir.resolve()
    return None


def _stored_learned(run_dir: Path, kind: str | None) -> dict | None:
    """learned_config of a run directory's config.json read through its command's Args, so fields added since
    it was written take their defaults (None if it is unreadable or of another command)."""
    from depthrl.training import command, runner

    try:
        if json.loads((run_dir / "config.json").read_text()).get("kind") != kind:
            return None
        args = runner.load_config(run_dir, command.command_module(kind).Args)
    except (OSError, ValueError, TypeError, AttributeError):  # ConfigError is a ValueError
        return None
    return learned_config(dataclasses.asdict(args))


def cell_argv(kind: str, cell: Cell, state: str) -> list[str]:
    """The `depthrl` arguments that (re)start a cell."""
    if state == "partial":  # the run's own config.json holds the flags
        return ["train", kind, "--resume", str(cell.run_dir), "--no-progress"]
    return ["train", kind, *cell.flags, "--run-dir", str(cell.run_dir), "--no-progress"]


def attempt_argv(argv: list[str]) -> list[str]:
    """The arguments an attempt of a cell runs, decided when it starts: a fresh start (`--run-dir DIR`) whose
    directory already holds a run (an earlier attempt of this cell was killed) resumes it instead."""
    if "--run-dir" not in argv:
        return argv
    run_dir = Path(argv[argv.index("--run-dir") + 1])
    from depthrl.training.runner import CONFIG_FILE

    if (run_dir / CONFIG_FILE).is_file():
        return ["train", argv[1], "--resume", str(run_dir), "--no-progress"]
    return argv


class CellKilled(RuntimeError):
    """A cell's process ended by a signal: the attempt may be retried (it resumes from its checkpoint)."""


def run_cell(argv: list[str], log_path: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m depthrl.cli ARGV` to completion, its output into `log_path`. This is the task every
    executor runs (a thread locally, a Ray task on a cluster): the interpreter is the one running it. The
    command is decided here (`attempt_argv`), so a retried task resumes its run. The log's header line
    records the process id and the CUDA_VISIBLE_DEVICES the cell sees. Raises CellKilled if the process was
    killed by a signal (the executor retries it)."""
    t0 = time.time()
    argv = attempt_argv(argv)
    env = {**os.environ, **(env or {})}
    devices = env.get("CUDA_VISIBLE_DEVICES")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "depthrl.cli", *argv], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        log.write(f"$ depthrl {' '.join(argv)}  [pid {proc.pid}, CUDA_VISIBLE_DEVICES={devices}]\n")
        log.flush()
        returncode = proc.wait()
    tail = Path(log_path).read_text().splitlines()[-5:]
    if returncode < 0:
        raise CellKilled(f"killed by signal {-returncode} (log {log_path}); rerunning the sweep resumes it")
    return {"returncode": returncode, "seconds": time.time() - t0, "log_tail": tail, "devices": devices}


def run_cell_retrying(argv: list[str], log_path: str, env: dict[str, str] | None, max_retries: int) -> dict:
    """`run_cell`, started again (resuming) up to `max_retries` times while its process is killed."""
    for attempt in range(max_retries + 1):
        try:
            return run_cell(argv, log_path, env)
        except CellKilled:
            if attempt == max_retries:
                raise
    raise AssertionError("unreachable")


def _single_thread_env() -> dict[str, str]:
    """Parallel cells on a small CPU: one XLA thread each gives more throughput than threads fighting."""
    if "XLA_FLAGS" in os.environ:
        return {}
    return {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


class LocalExecutor:
    """Cells as subprocesses, `jobs` at a time; a killed cell is retried up to `max_retries` times."""

    def __init__(self, jobs: int, max_retries: int = 2):
        self.pool = cf.ThreadPoolExecutor(max_workers=jobs)
        self.env = _single_thread_env() if jobs > 1 else {}
        self.max_retries = max_retries

    def submit(self, argv: list[str], log_path: Path) -> cf.Future:
        return self.pool.submit(run_cell_retrying, argv, str(log_path), self.env, self.max_retries)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class RayExecutor:
    """Cells as Ray tasks (the same `run_cell`) on an existing cluster, or a local instance for `local`.
    On several machines OUT must be on a file system every node sees (the workers write the run dirs).
    Ray retries a task whose process was killed or whose worker or node died (`max_retries`); the retried
    task resumes the cell's run directory."""

    def __init__(self, address: str, cpus_per_cell: float, gpus_per_cell: float = 0.0, max_retries: int = 2):
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray-address", address,
                              "needs Ray: pip install 'depthrl[sweep]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_cell > gpus and address == "local":  # every cell would wait forever for a GPU
            self.close()
            raise ConfigError("--gpus-per-cell", gpus_per_cell, f"the local Ray instance has {gpus:g} GPUs")
        if gpus_per_cell > gpus:  # a cluster may still add GPU nodes (autoscaler)
            print(f"[sweep] warning: the Ray cluster at {address} has {gpus:g} GPUs now; each cell needs "
                  f"{gpus_per_cell:g} (--gpus-per-cell): the cells wait until GPU nodes join", file=sys.stderr)
        self.remote = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=max_retries,
                                 retry_exceptions=[CellKilled])(run_cell)

    def submit(self, argv: list[str], log_path: Path) -> cf.Future:
        return self.remote.remote(argv, str(log_path), None).future()

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def execute(kind: str, cells: list[Cell], out: Path, executor, report: Callable[[dict[str, dict]], None],
            reuse: Sequence[Path] = ()) -> dict[str, dict]:
    """Run every unfinished cell through `executor` (`submit(argv, log_path) -> Future`). Returns
    cell name -> {status: done|failed|skipped, ...}; `report(states)` is called whenever states change
    and about once a second. A pending cell whose exact run already finished in another sweep under
    `reuse` is linked to it instead of being trained again."""
    states: dict[str, dict] = {}
    futures: dict[cf.Future, Cell] = {}
    for cell in cells:
        state = cell_state(cell)
        if state != "pending" and cell.learned and _stored_learned(cell.run_dir, kind) != cell.learned:
            states[cell.name] = {"status": "failed", "returncode": -1, "seconds": 0.0, "log_tail": [
                f"{cell.run_dir} holds a run of another config than this cell's: move it away, or give the "
                "sweep another --out"]}
            continue
        if state == "done":
            states[cell.name] = {"status": "skipped", "note": "finished earlier"}
            continue
        same = find_equivalent(cell, reuse) if state == "pending" and reuse else None
        if same is not None and not cell.run_dir.exists():
            cell.run_dir.parent.mkdir(parents=True, exist_ok=True)
            cell.run_dir.symlink_to(same, target_is_directory=True)
            states[cell.name] = {"status": "skipped", "note": f"the same run finished in {same}"}
            continue
        log_path = out / "logs" / f"{cell.name}.log"
        submitted = time.time()
        futures[executor.submit(cell_argv(kind, cell, state), log_path)] = cell
        states[cell.name] = {"status": "pending", "resumed": state == "partial", "log": str(log_path),
                             "submitted": submitted}
    report(states)
    pending = set(futures)
    while pending:
        finished, pending = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        for future in finished:
            cell = futures[future]
            try:
                result = future.result()
            except Exception as err:  # the task itself broke (e.g. a Ray worker died)
                result = {"returncode": -1, "seconds": 0.0, "log_tail": [f"{type(err).__name__}: {err}"]}
            ok = result["returncode"] == 0 and cell_state(cell) == "done"
            states[cell.name].update(status="done" if ok else "failed", **result)
        for future in pending:
            cell = futures[future]
            state = states[cell.name]
            log = Path(state["log"])  # logs append across sweeps: a cell runs once its log is written anew
            if state["status"] == "pending" and log.exists() and log.stat().st_mtime >= state["submitted"] - 1:
                state["status"] = "running"
        report(states)
    return states


# -- the live table ---------------------------------------------------------------------------------------
_STYLE = {"pending": "dim", "running": "yellow", "done": "green", "skipped": "green", "failed": "bold red"}


def progress_table(cells: list[Cell], states: dict[str, dict], metric: str):
    from rich.table import Table

    table = Table(title=f"sweep: {len(cells)} cells", expand=False)
    for column in ("cell", "state", "epoch", "env steps", f"eval/{metric}", "time"):
        table.add_column(column)
    for cell in cells:
        state = states.get(cell.name, {"status": "pending"})
        rows = read_rows(cell.run_dir) if state["status"] != "pending" else []
        last = rows[-1] if rows else {}
        status = state["status"] + (" (resumed)" if state.get("resumed") else "")
        value = last.get(f"eval/{metric}")
        table.add_row(cell.name, f"[{_STYLE[state['status']]}]{status}[/]",
                      f"{last.get('epoch', 0)}/{cell.num_epochs}", f"{last.get('env_steps', 0):,}",
                      f"{value:.3f}" if isinstance(value, float) else "-",
                      f"{last.get('wall_time', 0):.0f} s" if last else "-")
    return table


class Reporter:
    """The rich live table on a terminal; plain lines (one per change of state) elsewhere."""

    def __init__(self, cells: list[Cell], metric: str, live: bool):
        from rich.console import Console

        self.cells, self.metric = cells, metric
        self.console = Console()
        self.live = None
        if live and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(progress_table(cells, {}, metric), console=self.console, refresh_per_second=1)
            self.live.start()
        self.seen: dict[str, str] = {}

    def __call__(self, states: dict[str, dict]) -> None:
        if self.live is not None:
            self.live.update(progress_table(self.cells, states, self.metric))
            return
        for name, state in states.items():
            if self.seen.get(name) != state["status"]:
                self.seen[name] = state["status"]
                extra = f" ({state['note']})" if state.get("note") else ""
                extra += f" in {state['seconds']:.0f} s" if "seconds" in state else ""
                print(f"[sweep] {name}: {state['status']}{extra}", flush=True)

    def close(self, states: dict[str, dict]) -> None:
        if self.live is not None:
            self.live.update(progress_table(self.cells, states, self.metric))
            self.live.stop()
        else:
            self.console.print(progress_table(self.cells, states, self.metric))


# -- aggregation ------------------------------------------------------------------------------------------
def seed_scores(rows: list[dict], metric: str, last_evals: int) -> list[float]:
    """Per seed: the mean of its last `last_evals` evaluations of eval/METRIC ([] if none was logged)."""
    evals = [r for r in rows if f"eval/{metric}" in r][-last_evals:]
    if not evals:
        return []
    per_row = [r.get(f"eval/{metric}_per_seed", [r[f"eval/{metric}"]]) for r in evals]
    return [float(sum(col) / len(col)) for col in zip(*per_row, strict=True)]


def run_records(cells: list[Cell], metric: str, last_evals: int) -> list[dict]:
    """One record per (cell, seed): the cell's axis values, seed index and score."""
    records = []
    for cell in cells:
        for i, score in enumerate(seed_scores(read_rows(cell.run_dir), metric, last_evals)):
            records.append({**cell.values, "cell": cell.name, "seed_index": i, "score": score})
    return records


def group_scores(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str]) -> dict[tuple, dict]:
    """{values of `group_by`: {values of `strata_by` (the task): [scores of its runs]}}, in the records' order."""
    groups: dict[tuple, dict[tuple, list[float]]] = {}
    for r in records:
        key = tuple(r[g] for g in group_by)
        groups.setdefault(key, {}).setdefault(tuple(r[s] for s in strata_by), []).append(r["score"])
    return groups


def aggregate_records(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                      num_resamples: int = 2000) -> list[dict]:
    """Per group (values of `group_by`): IQM + 95% stratified bootstrap CI of the scores, strata = the values
    of `strata_by` (e.g. env), runs within a stratum = seeds and cells that differ only by seed."""
    from depthrl import aggregate

    out = []
    for key, strata in group_scores(records, group_by, strata_by).items():
        stats = aggregate.summary({str(k): v for k, v in strata.items()}, num_resamples=num_resamples)
        out.append({**dict(zip(group_by, key, strict=True)), "strata": len(strata), **stats})
    return out


def improvement_records(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                        baseline: str | None = None, num_resamples: int = 2000) -> list[dict]:
    """Probability of improvement P(X > Y) with its 95% CI between groups that differ only in the first group
    axis: every value X of it against `baseline` (compared as text), or without one every value against each
    earlier one (in the axis order), within each combination of the other group axes. A pair is compared on
    the strata (tasks) both have. Columns: the other axes, AXIS (X), vs_AXIS (Y), strata, runs of X and Y,
    prob_improvement and its _low / _high."""
    from depthrl import aggregate

    if not group_by:
        return []
    first, rest = group_by[0], list(group_by[1:])
    by_rest: dict[tuple, dict[Any, dict]] = {}
    for key, strata in group_scores(records, group_by, strata_by).items():
        by_rest.setdefault(key[1:], {})[key[0]] = strata
    out = []
    for rest_key, values in by_rest.items():
        order = list(values)
        if baseline is None:
            pairs = [(x, y) for j, x in enumerate(order) for y in order[:j]]
        else:
            pairs = [(x, y) for y in order if str(y) == baseline for x in order if x != y]
        for x, y in pairs:
            common = [s for s in values[x] if s in values[y]]
            if not common:
                continue
            xs, ys = [values[x][s] for s in common], [values[y][s] for s in common]
            est = aggregate.probability_of_improvement(xs, ys, num_resamples=num_resamples)
            out.append({**dict(zip(rest, rest_key, strict=True)), first: x, f"vs_{first}": y, "strata": len(common),
                        "runs": sum(map(len, xs)), "vs_runs": sum(map(len, ys)), "prob_improvement": est.value,
                        "prob_improvement_low": est.low, "prob_improvement_high": est.high})
    return out


def curve_records(cells: list[Cell], metric: str, group_by: Sequence[str], num_resamples: int = 500) -> list[dict]:
    """Per group and env-step count: IQM (+ 95% CI) over every seed of the group's cells."""
    from depthrl import aggregate

    points: dict[tuple, dict[int, list[float]]] = {}
    for cell in cells:
        key = tuple(cell.values[g] for g in group_by)
        for r in read_rows(cell.run_dir):
            if f"eval/{metric}" in r:
                values = r.get(f"eval/{metric}_per_seed", [r[f"eval/{metric}"]])
                points.setdefault(key, {}).setdefault(int(r["env_steps"]), []).extend(values)
    out = []
    for key, by_step in points.items():
        for steps, values in sorted(by_step.items()):
            est = aggregate.stratified_bootstrap([values], num_resamples=num_resamples)
            out.append({**dict(zip(group_by, key, strict=True)), "env_steps": steps, "runs": len(values),
                        "iqm": est.value, "iqm_low": est.low, "iqm_high": est.high})
    return out


def improvement_line(row: dict) -> str:
    """One row of `improvement_records` as text: P(depth=16 > depth=4) at width=64: 0.78 [95% CI 0.33, 1.00]."""
    keys = list(row)[:-6]  # the other group axes..., AXIS, vs_AXIS (then strata, runs and the numbers)
    axis, where = keys[-2], ", ".join(f"{k}={row[k]}" for k in keys[:-2])
    return (f"P({axis}={row[axis]} > {axis}={row['vs_' + axis]}){' at ' + where if where else ''}: "
            f"{row['prob_improvement']:.2f} [95% CI {row['prob_improvement_low']:.2f}, "
            f"{row['prob_improvement_high']:.2f}]")


def write_csv(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    return path


def _label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all"


def plot_aggregate(path: Path, table: list[dict], curves: list[dict], group_by: Sequence[str], metric: str,
                   title: str = "") -> Path:
    """Left: final IQM ± 95% CI against the first group axis (one colour per value of the others).
    Right: IQM learning curves with their CI bands, one per group; with two or more group axes and more than
    six groups, one panel per value of the first axis, each curve in the colour of its line on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x_axis, rest = (group_by[0], list(group_by[1:])) if group_by else (None, [])
    xs = list(dict.fromkeys(r[x_axis] for r in table)) if x_axis else ["all"]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    lines: dict[tuple, list[dict]] = {}
    for r in table:
        lines.setdefault(tuple(r[k] for k in rest), []).append(r)
    colour = {key: f"C{i % 10}" for i, key in enumerate(lines)}  # a line's colour, the same in every facet
    by_group: dict[tuple, list[dict]] = {}
    for r in curves:
        by_group.setdefault(tuple(r[k] for k in group_by), []).append(r)
    faceted = bool(rest) and len(by_group) > 6
    facets = list(xs) if faceted else [None]
    fig = plt.figure(figsize=(6 + 4.2 * len(facets) if faceted else 12, 4.2))
    grid = fig.add_gridspec(1, 1 + len(facets), width_ratios=[1.4 if faceted else 1] + [1] * len(facets))
    ax = fig.add_subplot(grid[0, 0])
    for i, (key, rows) in enumerate(lines.items()):
        rows = sorted(rows, key=lambda r: xs.index(r[x_axis]) if x_axis else 0)
        pos = np.array([r[x_axis] if numeric else xs.index(r[x_axis]) for r in rows] if x_axis else [0], float)
        if not numeric and len(lines) > 1:  # side by side, so the error bars do not overlap
            pos = pos + (i - (len(lines) - 1) / 2) * 0.8 / len(lines)
        value = np.array([r["iqm"] for r in rows])
        err = np.array([[r["iqm"] - r["iqm_low"] for r in rows], [r["iqm_high"] - r["iqm"] for r in rows]])
        ax.errorbar(pos, value, yerr=np.clip(err, 0, None), marker="o", capsize=4, ls="-" if numeric else "none",
                    color=colour[key], label=_label(dict(zip(rest, key, strict=True))) if rest else None)
    if numeric and x_axis:
        ax.set_xscale("log", base=2) if all(x > 0 for x in xs) and max(xs) / min(xs) >= 8 else None
        ax.set_xticks(xs, [str(x) for x in xs])
    else:
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(x_axis or "")
    ax.set_ylabel(f"IQM eval/{metric} (95% CI)")
    ax.grid(alpha=0.3)
    if rest:
        ax.legend(fontsize=8)
    low = min((r["iqm_low"] for r in curves), default=0.0)
    high = max((r["iqm_high"] for r in curves), default=1.0)
    for j, facet in enumerate(facets):
        ax = fig.add_subplot(grid[0, 1 + j])
        for key, rows in by_group.items():
            if faceted and key[0] != facet:
                continue
            steps = np.array([r["env_steps"] for r in rows], float)
            names, shown = (rest, key[1:]) if faceted else (group_by, key)
            (line,) = ax.plot(steps, [r["iqm"] for r in rows], color=colour[key[1:]] if faceted else None,
                              label=_label(dict(zip(names, shown, strict=True))))
            ax.fill_between(steps, [r["iqm_low"] for r in rows], [r["iqm_high"] for r in rows], alpha=0.15,
                            color=line.get_color())  # the band in its line's colour
        ax.set_xlabel("env steps (per seed)")
        if faceted:
            ax.set_title(f"{x_axis}={facet}", fontsize=10)
            ax.set_ylim(low - 0.02 * (high - low), high + 0.02 * (high - low))
        if j == 0:
            ax.set_ylabel(f"IQM eval/{metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"IQM of eval/{metric} over seeds (95% stratified bootstrap CI)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_performance_profile(path: Path, records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                             metric: str, num_resamples: int = 2000, title: str = "") -> Path:
    """Performance profiles (rliable): per group, the fraction of runs whose score exceeds each threshold τ
    (averaged over the strata), with its 95% stratified bootstrap band; a curve further up and right is
    better everywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from depthrl import aggregate

    scores = np.array([r["score"] for r in records], float)
    span = float(scores.max() - scores.min()) or 1.0
    thresholds = np.linspace(scores.min() - 0.02 * span, scores.max() + 0.02 * span, 201)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (key, strata) in enumerate(group_scores(records, group_by, strata_by).items()):
        frac, low, high = aggregate.performance_profile(list(strata.values()), thresholds, num_resamples)
        colour, style = f"C{i % 10}", ("-", "--", ":", "-.")[i // 10 % 4]
        ax.plot(thresholds, frac, color=colour, ls=style, label=_label(dict(zip(group_by, key, strict=True))))
        ax.fill_between(thresholds, low, high, color=colour, alpha=0.12, step=None)
    ax.set_xlabel(f"score τ (eval/{metric})")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"Performance profiles of eval/{metric} (95% stratified bootstrap bands)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclasses.dataclass(frozen=True)
class SweepResult:
    cells: list[Cell]
    states: dict[str, dict]
    records: list[dict]  # per (cell, seed) scores
    table: list[dict]  # aggregate rows
    curves: list[dict]
    files: list[Path]
    improvement: list[dict] = dataclasses.field(default_factory=list)  # probability-of-improvement rows

    @property
    def failed(self) -> list[str]:
        return [n for n, s in self.states.items() if s["status"] == "failed"]


def summarize(spec: SweepSpec, cells: list[Cell], out: Path, metric: str = "time_at_goal", last_evals: int = 1,
              group_by: Sequence[str] | None = None, num_resamples: int = 2000, title: str = "",
              states: dict[str, dict] | None = None, baseline: str | None = None) -> SweepResult:
    """Scores, aggregate table, probability of improvement, curves, CSVs and plots of a sweep's finished cells."""
    group_by = default_group_by(spec, group_by)
    strata_by = [a for a in spec.axes if a not in group_by and a != SEED_AXIS]
    records = run_records(cells, metric, last_evals)
    if not records:
        return SweepResult(cells, states or {}, [], [], [], [])
    table = aggregate_records(records, group_by, strata_by, num_resamples)
    improvement = improvement_records(records, group_by, strata_by, baseline, num_resamples)
    curves = curve_records(cells, metric, group_by)
    files = [write_csv(out / "scores.csv", records), write_csv(out / "aggregate.csv", table)]
    if improvement:
        files.append(write_csv(out / "probability_of_improvement.csv", improvement))
    files += [write_csv(out / "curves.csv", curves),
              plot_aggregate(out / "aggregate.png", table, curves, group_by, metric, title),
              plot_performance_profile(out / "performance_profile.png", records, group_by, strata_by, metric,
                                       num_resamples, title and f"{title}: performance profiles")]
    return SweepResult(cells, states or {}, records, table, curves, files, improvement)


def default_group_by(spec: SweepSpec, group_by: Sequence[str] | None) -> list[str]:
    """The compared axes: those given, else every axis but seed."""
    return list(group_by) if group_by is not None else [a for a in spec.axes if a != SEED_AXIS]


def run_sweep(spec: SweepSpec, out: Path, jobs: int = 1, ray_address: str | None = None, cpus_per_cell: float = 1.0,
              metric: str = "time_at_goal", last_evals: int = 1, group_by: Sequence[str] | None = None,
              num_resamples: int = 2000, progress: bool = True, title: str = "", executor=None,
              reuse: Sequence[Path] = (), baseline: str | None = None, gpus_per_cell: float = 0.0,
              max_retries: int = 2) -> SweepResult:
    """Validate, run the unfinished cells, aggregate. The Python entry point of `depthrl sweep` (the
    experiment scripts call it)."""
    check_options(jobs, cpus_per_cell, last_evals, num_resamples, group_by, spec)
    check_baseline(baseline, group_by, spec)
    check_executor_options(ray_address, gpus_per_cell, max_retries)
    out = Path(out)
    cells = expand(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    from depthrl.training.runner import write_json_atomic

    write_json_atomic(out / "sweep.json", {**spec.to_json(), "cells": [
        {"name": c.name, "values": c.values, "flags": list(c.flags)} for c in cells]})
    own_executor = executor is None
    if executor is None:
        executor = (RayExecutor(ray_address, cpus_per_cell, gpus_per_cell, max_retries) if ray_address
                    else LocalExecutor(jobs, max_retries))
    reporter = Reporter(cells, metric, live=progress)
    states: dict[str, dict] = {}
    try:
        states = execute(spec.kind, cells, out, executor, reporter, reuse)
    finally:
        reporter.close(states)
        if own_executor:
            executor.close()
    result = summarize(spec, cells, out, metric, last_evals, group_by, num_resamples, title, states, baseline)
    for name in result.failed:
        state = result.states[name]
        print(f"[sweep] {name} failed (exit {state['returncode']}); log {state.get('log')}:", file=sys.stderr)
        for line in state.get("log_tail", []):
            print(f"    {line}", file=sys.stderr)
    return result


def check_options(jobs: int, cpus_per_cell: float, last_evals: int, num_resamples: int,
                  group_by: Sequence[str] | None, spec: SweepSpec) -> None:
    if jobs < 1:
        raise ConfigError("--jobs", jobs, "must be >= 1")
    if cpus_per_cell <= 0:
        raise ConfigError("--cpus-per-cell", cpus_per_cell, "must be > 0")
    if last_evals < 1:
        raise ConfigError("--last-evals", last_evals, "must be >= 1")
    if num_resamples < 100:
        raise ConfigError("--bootstrap-resamples", num_resamples, "must be >= 100 for a usable 95% interval")
    for name in group_by or ():
        if name not in spec.axes:
            raise ConfigError("--group-by", name, f"not an axis of the sweep ({', '.join(spec.axes) or 'none'})")


def check_baseline(baseline: str | None, group_by: Sequence[str] | None, spec: SweepSpec) -> None:
    """--baseline must be a value (as text; a bundle's label) of the first group axis."""
    if baseline is None:
        return
    axes = default_group_by(spec, group_by)
    if not axes:
        raise ConfigError("--baseline", baseline, "needs an axis to compare along (the sweep has no group axis)")
    values = [bundle_label(v) if isinstance(v, dict) else str(v) for v in spec.axes[axes[0]]]
    if baseline not in values:
        raise ConfigError("--baseline", baseline, f"not a value of the first group axis {axes[0]} "
                                                   f"({', '.join(values)})")


def check_executor_options(ray_address: str | None, gpus_per_cell: float, max_retries: int) -> None:
    if gpus_per_cell < 0:
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "must be >= 0")
    if gpus_per_cell > 1 and gpus_per_cell != int(gpus_per_cell):
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "above 1 must be a whole number (Ray's rule)")
    if gpus_per_cell > 0 and not ray_address:
        raise ConfigError("--gpus-per-cell", gpus_per_cell, "needs --ray-address (local cells share the "
                          "machine's devices; use --ray-address local to give each its own GPU)")
    if max_retries < 0:
        raise ConfigError("--max-retries", max_retries, "must be >= 0")


def main(args: Args) -> int:
    spec = spec_from_args(args)
    out = Path(args.out)
    group_by = None if args.group_by is None else [_norm(g) for g in args.group_by]
    if args.dry_run:
        check_options(args.jobs, args.cpus_per_cell, args.last_evals, args.bootstrap_resamples, group_by, spec)
        check_baseline(args.baseline, group_by, spec)
        check_executor_options(args.ray_address, args.gpus_per_cell, args.max_retries)
        for cell in expand(spec, out):
            print(f"{cell.name}: {cell_state(cell)}  depthrl train {spec.kind} {' '.join(cell.flags)}")
        return 0
    result = run_sweep(spec, out, jobs=args.jobs, ray_address=args.ray_address, cpus_per_cell=args.cpus_per_cell,
                       metric=args.metric, last_evals=args.last_evals, group_by=group_by,
                       num_resamples=args.bootstrap_resamples, progress=args.progress, baseline=args.baseline,
                       gpus_per_cell=args.gpus_per_cell, max_retries=args.max_retries)
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
