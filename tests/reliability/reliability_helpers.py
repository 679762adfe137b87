"""The tiny CRL run every reliability test shares (same shapes as tests/training's `tiny_args`, so the
session compile cache serves both), its command line, and exact comparison of metrics rows."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path

import jax

from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

TINY_ROOM = "######/#R...#/#....#/#...G#/######"
ENV = dict(env="point-maze", layout=TINY_ROOM, episode_length=50)
AGENT = dict(depth=4, width=16, repr_dim=8, batch_size=32)
# 12 epochs of 400 env steps, evaluated and checkpointed every 2 epochs: checkpoints 2, 4, ..., 12 (3 kept).
TRAIN = dict(num_envs=16, unroll_length=25, sgd_steps_per_collect=4, total_env_steps=4800, eval_every=800,
             num_eval_envs=8, buffer_size=4000)
NUM_EPOCHS, EPOCHS_PER_CHECKPOINT, SGD_STEPS = 12, 2, 4
# Metrics that measure time, so they differ between any two runs.
TIMINGS = {"wall_time", "compile_and_init_s", "compile_s", "init_s"}


def is_timing(key: str) -> bool:
    return key in TIMINGS or key.startswith("time/")


def tiny_args(run_dir: Path, **train) -> Args:
    return Args(env=EnvConfig(**ENV), agent=CRLConfig(**AGENT), train=TrainConfig(**{**TRAIN, **train}),
                run_dir=str(run_dir), progress=False, plots=False, tensorboard=False, compile_cache=False)


def cli_flags(args: Args) -> list[str]:
    """`depthrl train crl` flags equivalent to `args`."""
    flags = []
    for section in ("env", "agent", "train"):
        config = getattr(args, section)
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if value != field.default:
                flags += ["--" + field.name.replace("_", "-"), str(value)]
    return [*flags, "--run-dir", args.run_dir, "--no-progress", "--no-plots", "--no-tensorboard",
            "--no-compile-cache"]


def depthrl_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "depthrl.cli", *argv]


def subprocess_env() -> dict[str, str]:
    """A child process shares this test session's compile cache (it compiles nothing the session has)."""
    env = dict(os.environ)
    cache = jax.config.jax_compilation_cache_dir
    if cache:
        # The same size cap as this process: a capped cache keeps an atime file per entry and locks the folder,
        # and an uncapped writer (no atime file) would make this process's eviction fail to read one.
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
                   JAX_COMPILATION_CACHE_MAX_SIZE=str(jax.config.jax_compilation_cache_max_size))
    return env


def differences(reference: list[dict], rows: list[dict]) -> list[str]:
    """Every (epoch, metric) whose value differs, bit for bit; empty when the runs agree exactly."""
    if [r["epoch"] for r in reference] != [r["epoch"] for r in rows]:
        return [f"epochs {[r['epoch'] for r in reference]} != {[r['epoch'] for r in rows]}"]
    out = []
    for ref, row in zip(reference, rows, strict=True):
        for key in sorted(k for k in set(ref) | set(row) if not is_timing(k)):
            a, b = ref.get(key), row.get(key)
            nan_both = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
            if a != b and not nan_both:
                out.append(f"epoch {ref['epoch']} {key}: {a!r} != {b!r}")
    return out
