"""Running a sweep's cells: each cell's state on disk, and the executors that run the unfinished ones (local
processes, or Ray tasks on a cluster), retrying a killed cell from its last checkpoint."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from depthrl.errors import ConfigError
from depthrl.sweep.spec import Cell, learned_config


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
    from depthrl.training import registry, runner

    try:
        if json.loads((run_dir / "config.json").read_text()).get("kind") != kind:
            return None
        args = runner.load_config(run_dir, registry.get(kind).args)
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


def group_cells(kind: str, cells: Sequence[Cell]) -> list[list[Cell]]:
    """The cells that train in one program: those whose configs differ only in --seed and the agent's traced
    hyper-parameters (`AgentEntry.hparams`), at least one of which differs in the group (cells that differ only
    in seed keep one process each, e.g. one per GPU). A cell runs alone when its agent declares no traced
    hyper-parameters, it uses --skip-non-finite or --wandb-project, or it diverged before (divergence.json)."""
    from depthrl.training import command, registry

    hparams = registry.get(kind).hparams
    groups: list[list[Cell]] = []
    for cell in cells:
        alone = (not hparams or not cell.learned or cell.shell.get("skip_non_finite")
                 or cell.shell.get("wandb_project") is not None or (cell.run_dir / "divergence.json").exists())
        home = None if alone else next(
            (g for g in groups if g[0].learned and g[0].shell == cell.shell
             and not command.group_conflicts(kind, g[0].learned, cell.learned)
             and not (g[0].run_dir / "divergence.json").exists()), None)
        if home is None:
            groups.append([cell])
        else:
            home.append(cell)
    out = []
    for group in groups:  # a group of seeds only is one process per cell
        if len(group) > 1 and not traced_differences(kind, group):
            out += [[cell] for cell in group]
        else:
            out.append(group)
    return out


def traced_differences(kind: str, cells: Sequence[Cell]) -> list[str]:
    """The traced hyper-parameters (as flags) whose values differ between `cells`."""
    from depthrl.training import registry

    return ["--" + name.replace("_", "-") for name in registry.get(kind).hparams
            if len({json.dumps(c.learned["agent"].get(name)) for c in cells}) > 1]


def group_argv(kind: str, group: Sequence[Cell]) -> list[str]:
    """The `depthrl` arguments of a group of cells: each cell's run directory is prepared (its config.json, as a
    run that has not checkpointed yet) and the first resumes with the others (`--group-with`)."""
    from depthrl.sweep.spec import parse_train_flags
    from depthrl.training import runner

    for cell in group:
        if not (cell.run_dir / runner.CONFIG_FILE).is_file():
            args = parse_train_flags(kind, [*cell.flags, "--run-dir", str(cell.run_dir)])
            cell.run_dir.mkdir(parents=True, exist_ok=True)
            runner.write_json_atomic(cell.run_dir / runner.CONFIG_FILE, runner.to_dict(args))
    plots = [] if group[0].shell.get("plots", True) else ["--no-plots"]  # a resume takes it from the command line
    return ["train", kind, "--resume", str(group[0].run_dir), "--group-with", *(str(c.run_dir) for c in group[1:]),
            *plots, "--no-progress"]


def execute(kind: str, cells: list[Cell], out: Path, executor, report: Callable[[dict[str, dict]], None],
            reuse: Sequence[Path] = (), group: bool = True) -> dict[str, dict]:
    """Run every unfinished cell through `executor` (`submit(argv, log_path) -> Future`). Returns
    cell name -> {status: done|failed|skipped, ...}; `report(states)` is called whenever states change
    and about once a second. A pending cell whose exact run already finished in another sweep under
    `reuse` is linked to it instead of being trained again. With `group`, cells that differ only in traced
    hyper-parameters (and seed) run as one process, one submitted task (`group_cells`)."""
    states: dict[str, dict] = {}
    futures: dict[cf.Future, list[Cell]] = {}
    todo: list[tuple[Cell, str]] = []
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
        todo.append((cell, state))
    resumed = {c.name: state == "partial" for c, state in todo}
    # Started cells group with started ones only: a group starts afresh unless all its runs have a checkpoint.
    groups = ([g for started in (True, False) for g in group_cells(kind, [c for c, _ in todo
                                                                         if resumed[c.name] == started])]
              if group else [[c] for c, _ in todo])
    for members in groups:
        log_path = out / "logs" / f"{members[0].name}.log"
        if len(members) > 1:
            traced = ", ".join(f.lstrip("-") for f in traced_differences(kind, members))
            print(f"[sweep] {len(members)} cells share one program ({traced}): "
                  f"{', '.join(c.name for c in members)}; log {log_path}", file=sys.stderr)
            argv = group_argv(kind, members)
        else:
            argv = cell_argv(kind, members[0], "partial" if resumed[members[0].name] else "pending")
        submitted = time.time()
        futures[executor.submit(argv, log_path)] = members
        for cell in members:
            states[cell.name] = {"status": "pending", "resumed": resumed[cell.name], "log": str(log_path),
                                 "submitted": submitted}
    report(states)
    pending = set(futures)
    while pending:
        finished, pending = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        for future in finished:
            members = futures[future]
            try:
                result = future.result()
            except Exception as err:  # the task itself broke (e.g. a Ray worker died)
                result = {"returncode": -1, "seconds": 0.0, "log_tail": [f"{type(err).__name__}: {err}"]}
            for cell in members:  # a group whose one cell diverged ends with an error, its other cells done
                ok = (result["returncode"] == 0 or len(members) > 1) and cell_state(cell) == "done"
                states[cell.name].update(status="done" if ok else "failed", **result)
        for future in pending:
            for cell in futures[future]:
                state = states[cell.name]
                log = Path(state["log"])  # logs append across sweeps: a cell runs once its log is written anew
                if state["status"] == "pending" and log.exists() and log.stat().st_mtime >= state["submitted"] - 1:
                    state["status"] = "running"
        report(states)
    return states
