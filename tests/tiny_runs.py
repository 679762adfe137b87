"""The tiny runs the tests share: one room, one CRL config, one training budget (defined here only).

Every test that trains CRL on the point-mass uses these shapes, so the suite's compile cache (tests/conftest.py,
shared by the xdist workers) compiles each of their programs once: a second tiny run costs its execution only.
Also: the `depthrl train crl` flags of a run, a child process's environment that shares the compile cache, and
exact comparison of metrics rows.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys

import jax

from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.training.command import run as main  # noqa: F401  (main: the fixtures train with it)
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

# A 3x4 room: start top-left, goal bottom-right (about 3 cells apart).
TINY_ROOM = "######/#R...#/#....#/#...G#/######"
TINY_ENV = dict(env="point-maze", layout=TINY_ROOM, episode_length=50)
# Without LayerNorm: the tiny runs test the shell around the agent (checkpoints, resume, groups, sweeps, tools),
# not what it learns, and LayerNorm is about 40% of the operations of their programs (the suite of these tests:
# 317 -> 257 s of CPU). The tests that check learning, the quick start preset and the agents' unit tests keep the
# default network.
TINY_CRL = dict(depth=4, width=16, repr_dim=8, batch_size=32, norm="none")
# 4 epochs of 16 envs × 25 steps, evaluated and checkpointed every 2 epochs (checkpoints 2 and 4).
TINY_TRAIN = dict(num_envs=16, unroll_length=25, sgd_steps_per_collect=4, total_env_steps=1600, eval_every=800,
                  num_eval_envs=8, buffer_size=4000)
SHELL = dict(progress=False, plots=False, tensorboard=False, compile_cache=False)
SGD_STEPS, EPOCHS_PER_CHECKPOINT = 4, 2

# The reliability reference run: 12 epochs, checkpoints 2, 4, ..., 12 (3 kept).
NUM_EPOCHS = 12
REFERENCE_STEPS = NUM_EPOCHS * 400

# Metrics that measure time, so they differ between any two runs.
TIMINGS = {"wall_time", "compile_and_init_s", "compile_s", "init_s"}


def tiny_env(**overrides) -> EnvConfig:
    return EnvConfig(**{**TINY_ENV, **overrides})


def tiny_crl_args(run_dir, seed: int = 0, **train) -> Args:
    """`depthrl train crl` on the tiny room: TINY_TRAIN with `train` overrides, no progress/plots/tensorboard."""
    return Args(env=tiny_env(), agent=CRLConfig(**TINY_CRL), train=TrainConfig(**{**TINY_TRAIN, "seed": seed, **train}),
                run_dir=str(run_dir), **SHELL)


def reference_args(run_dir) -> Args:
    """The reliability reference run's Args (the `reference` fixture of tests/conftest.py)."""
    return tiny_crl_args(run_dir, total_env_steps=REFERENCE_STEPS)


def is_timing(key: str) -> bool:
    return key in TIMINGS or key.startswith("time/")


def cli_flags(args) -> list[str]:
    """`depthrl train KIND` flags equivalent to `args` (its env, agent and train sections; no shell output)."""
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


# The suite compiles at XLA's optimisation level 0 with XLA CPU's older (non-MLIR) fusion emitters (tests/conftest.py
# sets these flags for the session): the tiny CRL run's epoch program compiles in 4.5-5.4 s instead of 7.1-7.3 s
# at level 0 alone (2-core CPU, load 8), and the whole suite's CPU time drops by about a third. OPTIMISED are the
# compiler options of XLA's defaults, for a program whose run time matters more than its compile time.
# One LLVM module per program (`xla_cpu_parallel_codegen_split_count`): XLA otherwise splits a program's code into
# parts it generates in parallel threads, which on two busy cores only adds each part's overhead (the tiny CRL
# epoch program compiled again and again in one process: 14-24% less CPU per compile; at the default options,
# `OPTIMISED`, no difference).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                "xla_cpu_use_fusion_emitters": False,
                "xla_cpu_parallel_codegen_split_count": 1}  # as a jit's compiler options
FAST_XLA_FLAGS = " ".join(f"--{name}={str(value).lower()}" for name, value in FAST_COMPILE.items())
OPTIMISED = {"xla_backend_optimization_level": 3, "xla_llvm_disable_expensive_passes": False,
             "xla_cpu_use_fusion_emitters": True}


def compile_runs_optimised(monkeypatch) -> None:
    """Runs in this test compile their epoch program with `OPTIMISED` (XLA's defaults) instead of the suite's
    quick options: for a test that trains long enough that the epoch's run time outweighs its compile time. The
    evaluation, diagnostics and start programs run a few times per run and keep the quick options."""
    from depthrl.training import runner

    class Optimised:
        def __init__(self, lowered):
            self.lowered = lowered

        def compile(self):
            return self.lowered.compile(compiler_options=OPTIMISED)

    compile_concurrently = runner.compile_concurrently
    monkeypatch.setattr(runner, "compile_concurrently", lambda lowered: compile_concurrently(
        [Optimised(lowered[0]), *lowered[1:]]))  # runner.lower_programs' first program is the epoch


def subprocess_env() -> dict[str, str]:
    """A child process shares this test session's compile cache (it compiles nothing the session has)."""
    env = dict(os.environ)
    cache = jax.config.jax_compilation_cache_dir
    if cache:
        # The same size cap as this process: a capped cache keeps an atime file per entry and locks the folder,
        # and an uncapped writer (no atime file) would make this process's eviction fail to read one.
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=str(
                       jax.config.jax_persistent_cache_min_compile_time_secs),
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
