"""The thin shell around the pure training core: run directory, validation, progress bar, metrics
(JSONL + TensorBoard), checkpoints, resume, plots. All I/O of a training run lives here.

A run directory holds: config.json (the full resolved config), metrics.jsonl (one JSON object per
evaluation), tb/ (TensorBoard events), checkpoints/ (orbax arrays + checksummed manifest), plots/.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from depthrl.errors import ConfigError
from depthrl.training import checkpoint as ckpt
from depthrl.training.loop import Trainer, TrainState

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


class DivergenceError(RuntimeError):
    """A loss, gradient or parameter became non-finite."""


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
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) in (tuple,) or (
            isinstance(hint, types.UnionType) and any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
        ):
            value = tuple(value) if value is not None else None
        kwargs[name] = value
    return cls(**kwargs)


def load_config(run_dir: Path, cls: type) -> Any:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise ConfigError("--resume", str(run_dir), f"not a run directory (no {CONFIG_FILE})")
    return from_dict(cls, json.loads(path.read_text()))


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


def prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    if resume:
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError("--run-dir", str(run_dir),
                              "exists and is not empty: pass --overwrite to replace it, or --resume to continue it")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


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


def first_non_finite(metrics: dict[str, np.ndarray]) -> str | None:
    for name, value in metrics.items():
        if not np.all(np.isfinite(np.asarray(value))):
            return name
    return None


def _params_finite(params: Any) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


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


def train(trainer: Trainer, config_json: dict, options: RunOptions, plot_fn=None) -> list[dict]:
    """Train (or resume) a run; returns the metrics rows. The config must be validated by the caller."""
    cfg = trainer.config
    run_dir = options.run_dir
    prepare_run_dir(run_dir, options.overwrite, options.resume)
    if not options.resume:
        (run_dir / CONFIG_FILE).write_text(json.dumps(config_json, indent=2))
    keys = seed_keys(cfg.seed, cfg.num_seeds)

    init_fn = jax.jit(jax.vmap(trainer.init))
    # Donating the state halves its memory; --skip-non-finite must keep the previous agent, so it does not.
    epoch_fn = jax.jit(jax.vmap(trainer.epoch), donate_argnums=() if options.skip_non_finite else 0)
    prefill_fn = jax.jit(jax.vmap(trainer.prefill_epoch), donate_argnums=0)
    eval_fn = jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, 0)))
    diag_fn = jax.jit(jax.vmap(trainer.diagnostics))

    t0 = time.time()
    state = init_fn(keys)
    rows: list[dict] = []
    wall_offset = 0.0
    if options.resume:
        path = ckpt.latest_good(run_dir / "checkpoints", warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        if path is None:
            raise ConfigError("--resume", str(run_dir), "has no valid checkpoint to resume from")
        state = ckpt.restore(path, state)
        done_epoch = ckpt.epoch_of(path)
        rows = [r for r in read_metrics(run_dir) if r["epoch"] <= done_epoch]
        wall_offset = rows[-1]["wall_time"] if rows else 0.0
        _rewrite_metrics(run_dir, rows)
        print(f"resuming {run_dir} from checkpoint {path.name}")
    else:
        for _ in range(cfg.prefill_epochs):
            state = prefill_fn(state)
    init_s = time.time() - t0  # init (or restore) and prefill, their compile included
    # Compile the epoch, eval and diagnostics programs ahead of time, so the metrics report compile time
    # (`compile_s`) apart from step time (`time/epoch_s`) and the first epoch does not count its compile.
    t_compile = time.time()
    epoch_fn, eval_fn, diag_fn = _compile_ahead(epoch_fn, eval_fn, diag_fn, state, cfg)
    compile_s = time.time() - t_compile
    timings = {"compile_and_init_s": init_s + compile_s, "compile_s": compile_s, "init_s": init_s}

    writer = _tensorboard(run_dir, options.tensorboard)
    start_epoch = int(np.asarray(state.epoch)[0])
    window: list[dict] = []
    stats = ""
    warned: set[str] = set()  # metrics already warned about (once per run)
    last_good_epoch = start_epoch
    t_start = time.time() - wall_offset
    try:
        with _progress(options.progress) as progress:
            task = progress.add_task("train", total=cfg.num_epochs, completed=start_epoch, stats="")
            for epoch in range(start_epoch, cfg.num_epochs):
                t_epoch = time.perf_counter()
                candidate, metrics = epoch_fn(state)
                metrics = jax.device_get(metrics)
                metrics["time/epoch_s"] = np.float64(time.perf_counter() - t_epoch)  # collect + SGD, no compile
                bad = first_non_finite(metrics)
                if bad is not None and not options.skip_non_finite:
                    _write_divergence(run_dir, epoch + 1, bad, metrics)
                    raise DivergenceError(
                        f"{bad} became non-finite at epoch {epoch + 1} (SGD steps up to "
                        f"{(epoch + 1) * cfg.sgd_steps_per_collect}); the last good checkpoint is epoch "
                        f"{last_good_epoch}; diagnostics in {run_dir / 'divergence.json'}")
                if bad is not None:  # --skip-non-finite: drop this epoch's update, keep its data
                    print(f"warning: {bad} non-finite at epoch {epoch + 1}; update skipped", file=sys.stderr)
                    candidate = candidate.replace(agent=state.agent)
                state = candidate
                window.append(metrics)
                done = epoch + 1
                if done % cfg.epochs_per_eval == 0 or done == cfg.num_epochs:
                    row = _evaluate_and_log(trainer, eval_fn, diag_fn, state, window, done, t_start, rows, run_dir,
                                            writer, timings)
                    for message in out_of_support_warnings(row, warned):
                        print(message, file=sys.stderr)
                    window = []
                    ckpt.save(run_dir / "checkpoints", done, state, keep=options.keep_checkpoints)
                    last_good_epoch = done
                    stats = f"steps {row['env_steps']:.3g} | {progress_headline(row)}"
                sps = (done - start_epoch) * cfg.steps_per_epoch / max(time.time() - t_start - wall_offset, 1e-9)
                progress.update(task, completed=done, stats=f"{stats} | {sps:,.0f} env steps/s")
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last checkpoint (epoch {last_good_epoch}) is kept; continue with "
              f"--resume {run_dir}", file=sys.stderr)
        raise
    finally:
        if writer is not None:
            writer.close()
    if options.plots and plot_fn is not None:
        plot_fn(run_dir, trainer, state, rows)
    return rows


def _compile_ahead(epoch_fn, eval_fn, diag_fn, state: TrainState, cfg):
    """The epoch, eval and diagnostics programs compiled for `state`'s shapes (ahead of their first call)."""
    keys = eval_keys(cfg.seed, cfg.num_seeds, 0)
    return (epoch_fn.lower(state).compile(), eval_fn.lower(state.agent.params, keys).compile(),
            diag_fn.lower(state, keys).compile())


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


def _tensorboard(run_dir: Path, enabled: bool):
    if not enabled:
        return None
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"))


def _rewrite_metrics(run_dir: Path, rows: list[dict]) -> None:
    tmp = run_dir / (METRICS_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(run_dir / METRICS_FILE)


def _write_divergence(run_dir: Path, epoch: int, name: str, metrics: dict) -> None:
    report = {"epoch": epoch, "non_finite": name,
              "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()}}
    (run_dir / "divergence.json").write_text(json.dumps(report, indent=1, default=str))


def _evaluate_and_log(trainer, eval_fn, diag_fn, state: TrainState, window, epoch, t_start, rows, run_dir, writer,
                      timings: dict[str, float]) -> dict:
    cfg = trainer.config
    eval_metrics, _, _ = eval_fn(state.agent.params, eval_keys(cfg.seed, cfg.num_seeds, epoch))
    eval_metrics = jax.device_get(eval_metrics)
    per_seed = {f"eval/{k}": np.mean(v, axis=-1) for k, v in eval_metrics.items()}
    train_means = {k: np.mean(np.stack([w[k] for w in window]), axis=0) for k in window[0]}
    diagnostics = jax.device_get(diag_fn(state, eval_keys(cfg.seed + 1, cfg.num_seeds, epoch)))
    row = {"epoch": epoch, "env_steps": int(np.asarray(state.env_steps)[0]),
           "sgd_steps": epoch * cfg.sgd_steps_per_collect, "wall_time": time.time() - t_start,
           **timings,
           **summarise(per_seed), **summarise(train_means), **summarise(diagnostics)}
    rows.append(row)
    with open(run_dir / METRICS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
    if writer is not None:
        for k, v in row.items():
            if isinstance(v, float) and math.isfinite(v):
                writer.add_scalar(k, v, row["env_steps"])
        writer.flush()
    return row
