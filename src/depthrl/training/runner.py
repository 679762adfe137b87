"""The thin shell around the pure training core: run directory, validation, progress bar, metrics
(JSONL + TensorBoard), checkpoints, resume, plots. All I/O of a training run lives here.

It trains with the pieces of `loop.make_train`: the trainer's `start` (init + prefill) and its `epoch`, one
jitted epoch at a time, with the evaluation cadence, checkpoints, logs and the memory check between epochs.

A run directory holds: config.json (the full resolved config), metrics.jsonl (one JSON object per
evaluation), tb/ (TensorBoard events), checkpoints/ (orbax arrays + checksummed manifest), plots/.

Order of a run: compile the epoch, evaluation, diagnostics and start programs for the state's shapes, side by
side (nothing allocated yet), check their exact memory (`memory_analysis()`) against the device's free memory and the
checkpoint size against free disk, then create or restore the state and train with those same programs.
Checkpoints are written by a background thread (`checkpoint.AsyncCheckpointer`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import math
import shutil
import sys
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from depthrl.errors import ConfigError, DivergenceError
from depthrl.training import checkpoint as ckpt
from depthrl.training import estimate as cost
from depthrl.training.loop import Trainer, TrainState, data_mesh, replicate

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"

__all__ = ["DivergenceError", "train", "read_metrics", "load_config"]  # DivergenceError lives in depthrl.errors


# -- config (de)serialisation: JSON only -------------------------------------------------------------------
def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) frozen dataclass from JSON data; unknown keys are an error."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(CONFIG_FILE, sorted(unknown), f"unknown keys for {cls.__name__}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        while typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        value = _check_json_type(name, value, hint)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) in (tuple,) or (
            isinstance(hint, types.UnionType) and any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
        ):
            value = tuple(value) if value is not None else None
        kwargs[name] = value
    return cls(**kwargs)


def _check_json_type(name: str, value: Any, hint: Any) -> Any:
    """`value` (from JSON) if it fits the field's type hint (an int is accepted for a float), else ConfigError."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return value
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if base is str and isinstance(value, str):
            return value
        if base in (tuple, list) and isinstance(value, list | tuple):
            return value
        if dataclasses.is_dataclass(base) and isinstance(value, dict):
            return value
        if base not in (bool, int, float, str, tuple, list, type(None)) and not dataclasses.is_dataclass(base):
            return value  # a type this check does not know: the config's validate() has the last word
    flag = "--" + name.replace("_", "-")
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(flag, value, f"{CONFIG_FILE} holds a {type(value).__name__} where {expected} is expected")


def load_config(run_dir: Path, cls: type) -> Any:
    """The frozen config `cls` stored in RUN_DIR/config.json (JSON only: nothing in it is executed)."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError("--resume", str(run_dir), f"not a run directory (no {CONFIG_FILE})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError("--resume", str(run_dir), f"its {CONFIG_FILE} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError("--resume", str(run_dir), f"its {CONFIG_FILE} does not hold a JSON object")
    return from_dict(cls, data)


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl rows; a torn last line (a kill mid-write) is dropped."""
    path = run_dir / METRICS_FILE
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def check_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    """Fail (before any compute) if starting a run in `run_dir` would clobber something."""
    if resume:
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("--run-dir", str(run_dir), "exists and is not a directory")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError("--run-dir", str(run_dir),
                              "exists and is not empty: pass --overwrite to replace it, or --resume to continue it")
        if not (run_dir / CONFIG_FILE).is_file():
            # --overwrite deletes the directory: never one that is not a depthrl run (e.g. `--run-dir .`).
            raise ConfigError("--run-dir", str(run_dir),
                              f"is not a depthrl run directory (no {CONFIG_FILE}), so --overwrite will not delete "
                              "it: choose a new or empty --run-dir")


def prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    check_run_dir(run_dir, overwrite, resume)
    if resume:
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write then rename: a kill leaves the old file or the new one, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def json_safe(value: Any) -> Any:
    """Strict JSON for reports: non-finite floats become the strings "nan", "inf", "-inf"."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


def eval_keys(seed: int, num_seeds: int, epoch: int) -> jax.Array:
    """Evaluation keys depend only on (seed, epoch): resuming does not change them."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 1_000_003)
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(base, i), epoch))(jnp.arange(num_seeds))


def progress_headline(row: dict) -> str:
    """The evaluation numbers of the progress bar: success and time at goal for goal envs, episode return and
    length for reward envs (gymnax, probes), whose evaluation reports `eval/return` instead."""
    if "eval/success" in row:
        return f"success {row['eval/success']:.2f} | time@goal {row['eval/time_at_goal']:.2f}"
    return f"return {row.get('eval/return', float('nan')):.3g} | length {row.get('eval/length', float('nan')):.3g}"


def summarise(per_seed: dict[str, np.ndarray]) -> dict[str, Any]:
    """name -> [num_seeds] arrays to JSON: mean, std over seeds and the per-seed values."""
    out: dict[str, Any] = {}
    for name, values in per_seed.items():
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        out[name] = float(values.mean())
        if values.size > 1:
            out[f"{name}_std"] = float(values.std())
            out[f"{name}_per_seed"] = [float(v) for v in values]
    return out


@dataclasses.dataclass
class RunOptions:
    """What the shell does around training (not part of what is learned)."""

    run_dir: Path
    overwrite: bool = False
    resume: bool = False
    keep_checkpoints: int = 3
    tensorboard: bool = True
    plots: bool = True
    progress: bool = True
    skip_non_finite: bool = False
    # More writers of the evaluation rows, with TensorBoard's add_scalar(tag, value, step) and flush() (W&B);
    # their owner closes them.
    extra_writers: tuple = ()
    memory_check: bool = True  # refuse a run whose compiled programs need more memory than the device has free
    checkpoint_buffer: bool = True  # checkpoints include the replay buffer (bit-exact resume)


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of a group run (`train_group`): its directory, its config.json, its --seed, and its values of the
    group's traced hyper-parameters (agent config field -> value; `loop.Trainer.bind`)."""

    run_dir: Path
    config_json: dict
    seed: int
    hparams: dict[str, float] = dataclasses.field(default_factory=dict)


def group_keys(keys_of, members: Sequence[Member], num_seeds: int, *args) -> jax.Array:
    """The keys of every row of a group: member m's `keys_of(m.seed, num_seeds, *args)` (`seed_keys`,
    `eval_keys`), stacked in member order, so each row draws what the same seed of a separate run draws."""
    return jnp.concatenate([keys_of(m.seed, num_seeds, *args) for m in members])


def _rows_of(tree: Any, index: int, num_seeds: int) -> Any:
    """Member `index`'s rows (its seeds) of a tree with the group's leading axis (scalars are shared)."""
    return jax.tree.map(lambda x: x[index * num_seeds:(index + 1) * num_seeds] if np.ndim(x) else x, tree)


def train(trainer: Trainer, config_json: dict, options: RunOptions, plot_fn=None,
          estimate: cost.Estimate | None = None) -> list[dict]:
    """Train (or resume) a run; returns the metrics rows. The config must be validated by the caller.
    `estimate`: the analytic cost model's numbers, printed next to the compiled program's."""
    member = Member(options.run_dir, config_json, trainer.config.seed)
    return train_group(trainer, [member], options, plot_fn, estimate)[0]


def train_group(trainer: Trainer, members: Sequence[Member], options: RunOptions, plot_fn=None,
                estimate: cost.Estimate | None = None) -> list[list[dict]]:
    """Train (or resume) several runs in one program: `trainer.config.num_seeds` seeds of each member on one
    vmapped axis, the members' `hparams` traced (`TrainState.hparams`), one compile. Each member's run directory
    gets what a separate run writes (its config.json, metrics, TensorBoard events, checkpoints of its own rows,
    plots), so it reads, evaluates and resumes like one; `options.run_dir` is unused. Returns each member's
    metrics rows. One member without hyper-parameters is a plain run (`train`): no `hparams` in its state."""
    cfg = trainer.config
    k = cfg.num_seeds
    for m in members:
        check_run_dir(m.run_dir, options.overwrite, options.resume)
    keys = group_keys(seed_keys, members, k)
    names = sorted({name for m in members for name in m.hparams})
    hparams = ({name: jnp.asarray([m.hparams[name] for m in members for _ in range(k)], jnp.float32)
                for name in names} if names else None)
    candidates = ([_resume_candidate(m.run_dir, report_fresh=len(members) == 1) for m in members]
                  if options.resume else None)
    resume_from = _common_checkpoints(candidates, members) if candidates is not None else None
    member_abstract = abstract_state(trainer, keys[:k])  # shapes only: one member's state, as its checkpoints hold
    abstract = _with_hparams(abstract_state(trainer, keys), jax.eval_shape(lambda: hparams))
    traced = ("hparams",) if hparams is not None else ()  # a member's checkpoint holds what a plain run's does
    omitted = ("buffer",) if not options.checkpoint_buffer and hasattr(abstract, "buffer") else ()
    for m in members:
        _check_disk(m.run_dir, member_abstract, omitted, options)

    # Compile the epoch, eval and diagnostics programs ahead of time, before any state exists: their buffer
    # assignment gives the run's exact memory, and the metrics report compile time (`compile_s`) apart from step
    # time (`time/epoch_s`). These compiled programs are the ones that train.
    # The start program (init + prefill; not needed to resume) compiles beside them.
    t_compile = time.time()
    start = None if resume_from is not None else programs(trainer).start.lower(keys)
    epoch_fn, eval_fn, diag_fn, start_fn = compile_concurrently(
        [*lower_programs(trainer, place(abstract, cfg.num_devices), donate=not options.skip_non_finite), start])
    compile_s = time.time() - t_compile
    memory = _check_memory(trainer, abstract, (epoch_fn, eval_fn, diag_fn), options, estimate, omitted)

    for m in members:
        prepare_run_dir(m.run_dir, options.overwrite, options.resume)
        if not options.resume:
            write_json_atomic(m.run_dir / CONFIG_FILE, m.config_json)
    t0 = time.time()
    rows: list[list[dict]] = [[] for _ in members]
    wall_offsets = [0.0] * len(members)
    if resume_from is not None:
        states = []
        for i, (m, chosen) in enumerate(zip(members, resume_from, strict=True)):
            path, member_state = _restore(trainer, keys[i * k:(i + 1) * k], member_abstract, m.run_dir, chosen)
            if len(members) > 1 and ckpt.epoch_of(path) != ckpt.epoch_of(chosen):  # fell back past an unreadable one
                raise ConfigError("--resume", str(m.run_dir), f"its checkpoint {chosen.name} cannot be restored and "
                                  "the other runs of the group are at that epoch: resume it alone, or start it again")
            states.append(member_state)
            rows[i] = [r for r in read_metrics(m.run_dir) if r["epoch"] <= ckpt.epoch_of(path)]  # later: re-made
            wall_offsets[i] = rows[i][-1]["wall_time"] if rows[i] else 0.0
            print(f"resuming {m.run_dir} from checkpoint {path.name}")
        state = states[0] if len(states) == 1 else jax.tree.map(lambda *x: jnp.concatenate(x), *states)
    else:
        state = start_fn(keys)  # init + prefill, as `loop.make_train` starts
    state = replicate(_with_hparams(state, hparams), cfg.num_devices)  # --num-devices: parameters on every device
    if options.resume:
        for m, member_rows in zip(members, rows, strict=True):
            _rewrite_metrics(m.run_dir, member_rows)
    init_s = time.time() - t0  # init and prefill (their compile is in compile_s), or the restore
    timings: dict[str, Any] = {"compile_and_init_s": init_s + compile_s, "compile_s": compile_s, "init_s": init_s}
    if memory is not None:
        timings["memory/compiled_peak_bytes"] = memory.peak_bytes

    start_epoch = int(np.asarray(state.epoch)[0])
    # On resume, TensorBoard drops the events the killed process logged after the checkpoint.
    purge_step = int(np.asarray(state.env_steps)[0]) + 1 if options.resume else None
    tb = [_tensorboard(m.run_dir, options.tensorboard, purge_step) for m in members]
    writers = [[w for w in (writer, *options.extra_writers) if w is not None] for writer in tb]
    savers = [ckpt.AsyncCheckpointer(m.run_dir / "checkpoints", options.keep_checkpoints, f"--resume {m.run_dir}",
                                     last_saved=start_epoch if resume_from is not None else None) for m in members]
    metadata = {"omitted": list(omitted), "bit_exact_resume": not omitted}
    window: list[dict] = []
    stats = ""
    warned: list[set[str]] = [set() for _ in members]  # metrics already warned about (once per run)
    skipped = int(rows[0][-1].get("skipped_updates", 0)) if rows[0] else 0
    noted = False  # the --no-checkpoint-buffer note is printed once, at the first save
    t_starts = [time.time() - offset for offset in wall_offsets]

    def part(tree: Any, index: int) -> Any:  # one member's rows; a plain run's state as it is (no copy)
        return tree if len(members) == 1 else _rows_of(tree, index, k)

    def last_good() -> int:
        return min(s.last_saved if s.last_saved is not None else start_epoch for s in savers)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def wait_quietly() -> None:
        for saver in savers:
            saver.wait_quietly(warn)

    try:
        with _progress(options.progress) as progress:
            task = progress.add_task("train", total=cfg.num_epochs, completed=start_epoch, stats="")
            for epoch in range(start_epoch, cfg.num_epochs):
                for saver in savers:
                    saver.poll()  # a checkpoint write that failed in the background stops the run here
                t_epoch = time.perf_counter()
                candidate, metrics = epoch_fn(state)
                metrics = jax.device_get(metrics)
                metrics["time/epoch_s"] = np.float64(time.perf_counter() - t_epoch)  # collect + SGD, no compile
                report = non_finite_report(metrics, epoch, cfg.sgd_steps_per_collect)
                if report is not None and not options.skip_non_finite:
                    wait_quietly()  # the checkpoint in progress is the last good one once complete
                    index, report["seed"] = divmod(report["seed"], k)
                    run_dir = members[index].run_dir
                    if len(members) > 1:
                        report["where"] += f" of the group (seed {report['seed']} of {run_dir})"
                    _write_divergence(run_dir, report, part(metrics, index), candidate, trainer, diag_fn,
                                      last_good(), _diag_keys(members, k, report["epoch"]), index * k)
                    err = DivergenceError(
                        f"{report['what']} became non-finite at {report['where']}: run stopped. The last good "
                        f"checkpoint is epoch {last_good()}; diagnostics of the offending step in "
                        f"{run_dir / 'divergence.json'}. Lower the learning rates, or pass --skip-non-finite "
                        "to skip such updates.")
                    err.run_dir = run_dir  # which run of a group diverged
                    raise err
                if report is not None:  # --skip-non-finite: drop this epoch's update, keep its data
                    print(f"warning: {report['what']} non-finite at {report['where']}; the epoch's update is "
                          "skipped", file=sys.stderr)
                    candidate = candidate.replace(agent=state.agent)
                    skipped += 1
                else:
                    window.append(metrics)
                state = candidate
                done = epoch + 1
                if done % cfg.epochs_per_eval == 0 or done == cfg.num_epochs:
                    eval_metrics, _, _ = eval_fn(state.agent.params, group_keys(eval_keys, members, k, done))
                    diagnostics = diag_fn(state, _diag_keys(members, k, done))
                    host = jax.device_get((eval_metrics, diagnostics, state.env_steps))
                    for i, m in enumerate(members):
                        row = _evaluate_and_log(part(host, i), part(window, i), done, cfg,
                                                t_starts[i], rows[i], m.run_dir, writers[i], timings, skipped)
                        for message in out_of_support_warnings(row, warned[i]):
                            print(message if len(members) == 1 else f"{message} ({m.run_dir})", file=sys.stderr)
                    window = []
                    if omitted and not noted:
                        noted = True
                        print(f"note: checkpoints leave out the replay buffer (--no-checkpoint-buffer, "
                              f"{cost.mib(ckpt.nbytes(state.buffer) // len(members))} less each): a run resumed "
                              "from one starts with an empty buffer, so it is not bit-exact with an uninterrupted "
                              "run", file=sys.stderr)
                    for i, saver in enumerate(savers):  # host copy here, the write behind
                        saver.save(done, _without(part(state, i), (*omitted, *traced)), metadata)
                    stats = f"steps {row['env_steps']:.3g} | {progress_headline(row)}"
                sps = ((done - start_epoch) * cfg.steps_per_epoch * len(members)
                       / max(time.time() - t_starts[0] - wall_offsets[0], 1e-9))
                progress.update(task, completed=done, stats=f"{stats} | {sps:,.0f} env steps/s")
        for saver in savers:
            saver.wait()  # the last checkpoint is complete before the run reports success
    except KeyboardInterrupt:
        wait_quietly()
        for m in members:
            print(f"\ninterrupted: the last checkpoint (epoch {last_good()}) is kept; continue with "
                  f"--resume {m.run_dir}", file=sys.stderr)
        raise
    except BaseException:
        wait_quietly()  # whatever stopped the run, a checkpoint in progress is completed
        raise
    finally:
        for saver in savers:
            saver.close()
        for writer in tb:
            if writer is not None:
                writer.close()
    if options.plots and plot_fn is not None:
        for i, m in enumerate(members):
            plot_fn(m.run_dir, trainer, _without(part(state, i), traced), rows[i])
    return rows


def _with_hparams(state: Any, hparams: dict | None) -> Any:
    """`state` with a group's traced hyper-parameters (`TrainState.hparams`); a plain run's state as it is."""
    return state if hparams is None else state.replace(hparams=hparams)


def _diag_keys(members: Sequence[Member], num_seeds: int, epoch: int) -> jax.Array:
    """The diagnostics batch keys: a separate run's `eval_keys(seed + 1, ...)` for each member."""
    return group_keys(lambda seed, *args: eval_keys(seed + 1, *args), members, num_seeds, epoch)


def _common_checkpoints(candidates: list[Path | None], members: Sequence[Member]) -> list[Path] | None:
    """The checkpoint each member resumes from: all at the same epoch (the group trains in step), the newest
    epoch every member has intact. None (start every member afresh) if a member has none."""
    if any(c is None for c in candidates):
        if any(c is not None for c in candidates):
            print("a run of the group has no checkpoint yet: restarting every run of the group from the beginning",
                  file=sys.stderr)
        elif len(members) > 1:  # a fresh group: said once here, not once per run (`_resume_candidate`)
            print(f"no run of the group has a checkpoint yet: training all {len(members)} from the beginning",
                  file=sys.stderr)
        return None
    epoch = min(ckpt.epoch_of(c) for c in candidates)
    chosen = []
    for m, found in zip(members, candidates, strict=True):
        if ckpt.epoch_of(found) != epoch:
            found = next((p for p in ckpt.list_checkpoints(m.run_dir / "checkpoints")
                          if ckpt.epoch_of(p) == epoch and ckpt.verify(p) is None), None)
        if found is None:
            print(f"{m.run_dir} has no intact checkpoint of epoch {epoch}, where the other runs of the group are: "
                  "restarting every run of the group from the beginning", file=sys.stderr)
            return None
        chosen.append(found)
    return chosen


def abstract_state(trainer: Trainer, keys: jax.Array) -> Any:
    """Shapes and dtypes of the initial train state of every seed; nothing is allocated."""
    return programs(trainer).init.eval_shape(keys)


@dataclasses.dataclass(frozen=True)
class Programs:
    """A trainer's jitted, seed-vmapped programs (not yet traced)."""

    init: Any
    start: Any
    epoch: Any
    epoch_donating: Any
    evaluate: Any
    diagnostics: Any


def programs(trainer: Trainer) -> Programs:
    """The jitted programs of `trainer`, the same objects for every trainer equal to it but in the train config's
    host-only fields (`TrainConfig.HOST_ONLY`: seed, budget, evaluation interval, number of seeds), which no traced
    program reads. A trainer (its configs, env and agent) is a frozen, hashable value, so a second run of such a
    configuration in one process (a resume, another seed, most tests) reuses the first one's traces and lowerings
    instead of tracing again: at the tests' sizes, tracing and lowering cost more than the compile (a tiny CRL run
    in a fresh process 10 s, again with another seed 7 s before this, 1 s with it). A trainer that cannot be hashed
    gets programs of its own."""
    cfg = trainer.config
    defaults = type(cfg)()
    key = dataclasses.replace(trainer, config=dataclasses.replace(
        cfg, **{name: getattr(defaults, name) for name in cfg.HOST_ONLY}))
    try:
        return _shared_programs(key)
    except TypeError:  # unhashable
        return _new_programs(key)


def _new_programs(trainer: Trainer) -> Programs:
    epoch = jax.vmap(trainer.epoch)
    return Programs(init=jax.jit(jax.vmap(trainer.init)), start=jax.jit(jax.vmap(trainer.start)),
                    epoch=jax.jit(epoch), epoch_donating=jax.jit(epoch, donate_argnums=0),
                    evaluate=jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, 0))),
                    diagnostics=jax.jit(jax.vmap(trainer.diagnostics)))


_shared_programs = functools.lru_cache(maxsize=8)(_new_programs)


def place(abstract: Any, num_devices: int) -> Any:
    """`abstract` with the sharding `replicate` gives the real state (every device of the data mesh)."""
    if num_devices == 1:
        return abstract
    sharding = NamedSharding(data_mesh(num_devices), PartitionSpec())
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)


def compile_programs(trainer: Trainer, state: Any, donate: bool = True) -> tuple[Any, Any, Any]:
    """The epoch, evaluation and diagnostics programs compiled for `state`'s shapes (abstract or real), side by
    side (`compile_concurrently`). Donating the state to the epoch halves its memory; --skip-non-finite must
    keep the previous agent, so it does not donate."""
    return compile_concurrently(lower_programs(trainer, state, donate))


def lower_programs(trainer: Trainer, state: Any, donate: bool = True) -> tuple[Any, Any, Any]:
    """The epoch, evaluation and diagnostics programs traced and lowered for `state`'s shapes, not compiled."""
    cfg, jitted = trainer.config, programs(trainer)
    keys = eval_keys(cfg.seed, state.env_steps.shape[0], 0)  # one per row: num_seeds, or a group's cells × seeds
    return ((jitted.epoch_donating if donate else jitted.epoch).lower(state),
            jitted.evaluate.lower(state.agent.params, keys), jitted.diagnostics.lower(state, keys))


def compile_concurrently(lowered: typing.Sequence[Any]) -> tuple[Any, ...]:
    """Each lowered program compiled in its own thread (None stays None). XLA compiles outside Python's GIL, so
    the programs compile side by side: where cores are free the wall time is the longest compile's, not the
    sum (an env's physics step compiles into the epoch, the evaluation and the start program alike: on the
    MJX arm each takes one to two minutes of CPU). The executables are the ones a sequential compile makes."""
    with concurrent.futures.ThreadPoolExecutor(max(len(lowered), 1)) as pool:
        futures = [None if program is None else pool.submit(program.compile) for program in lowered]
        return tuple(None if future is None else future.result() for future in futures)


def _without(state: Any, fields: tuple[str, ...]) -> Any:
    """`state` with `fields` left out (None), as a checkpoint that omits them stores it."""
    return state.replace(**{name: None for name in fields}) if fields else state


def measure_memory(trainer: Trainer, abstract: Any, programs: tuple, omitted: tuple[str, ...] = ()):
    """`estimate.CompiledMemory` of the compiled (epoch, eval, diagnostics) programs of `compile_programs`;
    None where the backend reports no buffer assignment."""
    return cost.compiled_memory(*programs, buffer_bytes=ckpt.nbytes(getattr(abstract, "buffer", ())),
                                snapshot_bytes=ckpt.nbytes(_without(abstract, omitted)),
                                num_devices=trainer.config.num_devices)


def _check_memory(trainer: Trainer, abstract: Any, programs: tuple, options: RunOptions,
                  est: cost.Estimate | None, omitted: tuple[str, ...]) -> cost.CompiledMemory | None:
    """Print the compiled programs' memory; refuse (ConfigError) a run that needs more than is free."""
    cfg = trainer.config
    memory = measure_memory(trainer, abstract, programs, omitted)
    if memory is None:  # no buffer assignment on this backend: the analytic estimate decides
        print("memory: this backend reports no buffer assignment; checking the estimate instead", file=sys.stderr)
        if options.memory_check and est is not None:
            cost.check_fits(est, *cost.available_memory(cfg.num_devices))
        return None
    print(memory.line(est))
    if options.memory_check:
        agent_cfg = getattr(trainer.agent, "config", None)
        hints = {"batch_size": getattr(agent_cfg, "batch_size", None), "remat": getattr(agent_cfg, "remat", False),
                 "num_envs": cfg.num_envs, "buffer_size": getattr(cfg, "buffer_size", None),
                 "num_seeds": cfg.num_seeds}
        cost.check_compiled_fits(memory, *cost.available_memory(cfg.num_devices), hints, est)
    return memory


def _check_disk(run_dir: Path, abstract: Any, omitted: tuple[str, ...], options: RunOptions) -> None:
    """Refuse (ConfigError) a run whose disk cannot hold one checkpoint; warn if it cannot hold
    --keep-checkpoints of them plus the one being written."""
    one = ckpt.disk_needed(ckpt.nbytes(_without(abstract, omitted)))
    free = ckpt.free_disk_bytes(run_dir)
    buffer = ckpt.nbytes(getattr(abstract, "buffer", ())) if not omitted else 0
    leave_out = (f", or pass --no-checkpoint-buffer (the replay buffer is {cost.mib(buffer)} of each checkpoint)"
                 if buffer > one / 4 else "")
    if free < one:
        raise ConfigError("--run-dir", str(run_dir), f"its disk has {cost.mib(free)} free but one checkpoint needs "
                          f"≈ {cost.mib(one)}: free disk space or choose another --run-dir{leave_out}")
    held = (options.keep_checkpoints + 1 - len(ckpt.list_checkpoints(run_dir / "checkpoints"))) * one
    if free < held:
        print(f"warning: the disk of {run_dir} has {cost.mib(free)} free; --keep-checkpoints "
              f"{options.keep_checkpoints} (+ the one being written) need ≈ {cost.mib(held)}: the run stops when a "
              f"checkpoint no longer fits; lower --keep-checkpoints{leave_out}", file=sys.stderr)


def _resume_candidate(run_dir: Path, report_fresh: bool = True) -> Path | None:
    """The newest intact checkpoint to resume from (hashes verified, nothing restored); None if the run was
    killed before its first checkpoint (said on stderr unless `report_fresh` is False: a group says it once).

    Leftovers of a write cut short by a kill are removed; a corrupt checkpoint is reported and skipped;
    if checkpoints exist but none is intact the run stops with an error naming --resume.
    """
    checkpoint_dir = run_dir / "checkpoints"
    leftovers = ckpt.clean_partial(checkpoint_dir)
    if leftovers:
        print(f"removed the partial checkpoint write(s) of a killed run: {', '.join(leftovers)}", file=sys.stderr)
    existing = ckpt.list_checkpoints(checkpoint_dir)
    found = ckpt.latest_good(checkpoint_dir, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    if found is None and existing:
        raise ConfigError("--resume", str(run_dir),
                          f"none of its {len(existing)} checkpoint(s) is intact (see the warnings above): "
                          "restore a backup of RUN_DIR/checkpoints, or start again with --overwrite")
    if found is None and report_fresh:
        print(f"{run_dir} has no checkpoint yet: training from the beginning", file=sys.stderr)
    return found


def restore_state(trainer: Trainer, keys: jax.Array, checkpoint_dir: Path, abstract: Any = None, warn=print,
                  verified: Path | None = None) -> tuple[Path, Any] | None:
    """(path, state) of the newest usable checkpoint, or None. The parts a checkpoint left out
    (--no-checkpoint-buffer: the replay buffer) are those of a fresh state: an empty buffer."""
    abstract = abstract_state(trainer, keys) if abstract is None else abstract
    found = ckpt.restore_latest(checkpoint_dir, _checkpoint_target(abstract), warn=warn, verified=verified)
    if found is None:
        return None
    return found[0], _fill_omitted(trainer, keys, found[0], found[1])


def restore_checkpoint(trainer: Trainer, keys: jax.Array, path: Path) -> Any:
    """The state in checkpoint `path` (verified by the caller), with the parts it left out filled fresh."""
    target = _checkpoint_target(abstract_state(trainer, keys))
    return _fill_omitted(trainer, keys, path, ckpt.restore(path, target(ckpt.read_manifest(path))))


def _checkpoint_target(abstract: Any):
    """The restore target of a checkpoint given its manifest: `abstract` less the fields it omitted."""
    def target(manifest: dict) -> Any:
        return _without(abstract, tuple(str(name) for name in manifest.get("omitted", ())))
    return target


def _fill_omitted(trainer: Trainer, keys: jax.Array, path: Path, state: Any) -> Any:
    omitted = tuple(ckpt.read_manifest(path).get("omitted", ()))
    if not omitted:
        return state
    fresh = jax.jit(lambda k: {name: getattr(jax.vmap(trainer.init)(k), name) for name in omitted})(keys)
    return state.replace(**fresh)


def _restore(trainer: Trainer, keys: jax.Array, abstract: Any, run_dir: Path, verified: Path) -> tuple[Path, Any]:
    found = restore_state(trainer, keys, run_dir / "checkpoints", abstract,
                          warn=lambda m: print(f"warning: {m}", file=sys.stderr), verified=verified)
    if found is None:
        raise ConfigError("--resume", str(run_dir), "none of its checkpoints can be restored (see the warnings "
                          "above): restore a backup of RUN_DIR/checkpoints, or start again with --overwrite")
    omitted = ckpt.read_manifest(found[0]).get("omitted", ())
    if omitted:
        print(f"warning: checkpoint {found[0].name} was saved without the replay buffer (--no-checkpoint-buffer): "
              "the buffer starts empty and refills as the run collects, so this resumed run is not bit-exact with "
              "an uninterrupted one", file=sys.stderr)
    return found


def non_finite_report(metrics: dict[str, np.ndarray], epoch: int, sgd_steps_per_epoch: int) -> dict | None:
    """Pops the epoch's `nonfinite/` keys from `metrics` (host arrays, leading seed axis) and returns None if
    every metric and parameter stayed finite, else which quantities went non-finite, where, in words."""
    flags = {k.removeprefix("nonfinite/"): np.atleast_1d(metrics.pop(k)) for k in list(metrics)
             if k.startswith("nonfinite/")}
    # int64: the "no step" filler below does not fit the epoch's int32 steps (it wrapped to -1, so a finite seed
    # before the diverged one was named, with no quantity).
    steps = flags.pop("step", np.array([-1])).astype(np.int64)
    bad_means = [k for k, v in metrics.items() if not np.all(np.isfinite(np.asarray(v, dtype=np.float64)))]
    if np.all(steps < 0) and not bad_means:
        return None
    if np.any(steps >= 0):  # inside the SGD steps: the first step (over seeds) and what was non-finite there
        seed = int(np.argmin(np.where(steps >= 0, steps, np.iinfo(np.int64).max)))
        names = [name for name, at_step in flags.items() if at_step[seed]]
        sgd_step = epoch * sgd_steps_per_epoch + int(steps[seed]) + 1
        where = f"SGD step {sgd_step} (step {int(steps[seed]) + 1} of {sgd_steps_per_epoch} in epoch {epoch + 1})"
    else:  # outside them (collection)
        sgd_step = None
        bad_per_seed = [~np.isfinite(np.atleast_1d(np.asarray(metrics[k], dtype=np.float64))) for k in bad_means]
        seed = int(np.argmax(np.any(np.stack(bad_per_seed), axis=0)))
        names = bad_means
        where = f"the collection of epoch {epoch + 1}"
    num_seeds = len(steps)
    if num_seeds > 1:
        where += f", seed {seed} of {num_seeds}"
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return {"what": what, "quantities": names, "where": where, "epoch": epoch + 1, "sgd_step": sgd_step,
            "seed": seed}


# A categorical critic clips TD targets outside [v_min, v_max]: above this fraction the run warns.
OUT_OF_SUPPORT_WARNING = 0.1


def out_of_support_warnings(row: dict, warned: set[str], threshold: float = OUT_OF_SUPPORT_WARNING) -> list[str]:
    """Warnings for the metrics named `*/out_of_support` (fraction of TD targets outside the value support)
    above `threshold` in a metrics row; each metric warns once (its name is added to `warned`)."""
    messages = []
    for name, value in row.items():
        if name.endswith("/out_of_support") and name not in warned and isinstance(value, float) and value > threshold:
            warned.add(name)
            messages.append(f"warning: {name} = {value:.0%} of the TD targets fall outside the critic's value support "
                            f"(more than {threshold:.0%}): they are clipped to [v_min, v_max], so the critic cannot "
                            "represent them; widen the support with --v-min / --v-max")
    return messages


def _tensorboard(run_dir: Path, enabled: bool, purge_step: int | None = None):
    if not enabled:
        return None
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


def _rewrite_metrics(run_dir: Path, rows: list[dict]) -> None:
    tmp = run_dir / (METRICS_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(run_dir / METRICS_FILE)


def _write_divergence(run_dir: Path, report: dict, metrics: dict, diverged: TrainState, trainer: Trainer, diag_fn,
                      last_good_epoch: int, diag_keys: jax.Array, first_row: int = 0) -> None:
    """divergence.json: what went non-finite where, the epoch's metrics, the norm of every parameter array
    of the diverged state (which layer blew up) and the network diagnostics of that state. `report["seed"]` is
    the seed within the run; its row of the diverged (group) state is `first_row` + seed."""
    row = first_row + report["seed"]
    norms, non_finite = {}, []
    try:  # a trainer whose state lacks .params/.env_steps still gets a report; it must never hide the divergence
        params = jax.device_get(getattr(diverged.agent, "params", diverged.agent))
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            leaf = np.asarray(leaf)[row]
            name = jax.tree_util.keystr(path)
            norms[name] = float(np.linalg.norm(leaf.astype(np.float64).ravel()))
            if not np.all(np.isfinite(leaf)):
                non_finite.append(name)
        env_steps = int(np.asarray(diverged.env_steps)[row])
    except Exception as err:
        norms, env_steps = {"error": f"{type(err).__name__}: {err}"}, None
    try:
        diagnostics = jax.device_get(diag_fn(diverged, diag_keys))
        diagnostics = {k: np.asarray(v)[row] for k, v in diagnostics.items()}
    except Exception as err:
        diagnostics = {"error": f"{type(err).__name__}: {err}"}
    data = {**{k: v for k, v in report.items() if k != "what"}, "env_steps": env_steps,
            "last_good_checkpoint_epoch": last_good_epoch,
            "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "non_finite_params": non_finite, "param_norms": norms, "diagnostics": diagnostics}
    (run_dir / "divergence.json").write_text(json.dumps(json_safe(data), indent=1))


def _evaluate_and_log(host: tuple, window: list[dict], epoch: int, cfg: Any, t_start: float, rows: list[dict],
                      run_dir: Path, writers: list, timings: dict[str, float], skipped_updates: int = 0) -> dict:
    """Append one run's evaluation row to its metrics.jsonl and writers. host: (eval metrics name ->
    [num_seeds, num_eval_envs], diagnostics name -> [num_seeds], env steps [num_seeds]) on the host; window:
    the training metrics of the epochs since the last evaluation (name -> [num_seeds])."""
    eval_metrics, diagnostics, env_steps = host
    per_seed = {f"eval/{k}": np.mean(v, axis=-1) for k, v in eval_metrics.items()}
    train_means = {k: np.mean(np.stack([w[k] for w in window]), axis=0) for k in (window[0] if window else {})}
    row = {"epoch": epoch, "env_steps": int(np.asarray(env_steps)[0]),
           "sgd_steps": epoch * cfg.sgd_steps_per_collect, "wall_time": time.time() - t_start,
           **timings, "skipped_updates": skipped_updates,
           **summarise(per_seed), **summarise(train_means), **summarise(diagnostics)}
    rows.append(row)
    with open(run_dir / METRICS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
    for writer in writers:  # TensorBoard, W&B: every finite scalar of the row at its env-step count
        for k, v in row.items():
            if isinstance(v, float) and math.isfinite(v):
                writer.add_scalar(k, v, row["env_steps"])
        writer.flush()
    return row
