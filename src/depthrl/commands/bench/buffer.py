"""Benchmark the trajectory buffer's sampling + relabelling with early-terminated episodes.

The buffer is filled with `--num-envs` envs × `--rows-per-env` rows of the Ant's shapes (29 state + 8 action
floats) whose episodes end at the time limit `--episode-length` or earlier, each step with probability
`--terminate-prob`. One measurement samples `--batches` relabelled batches of `--batch-size` inside one jit
(as an epoch's SGD steps do); the result is the median wall and process CPU time over `--repeats` (with the
1-minute load average) and the compiled program's temporary bytes (XLA's buffer assignment), which stay
flat in the episode length: no T × T matrix.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import os
import statistics
import time

import jax
import jax.numpy as jnp

from depthrl.buffers import trajectory as buf
from depthrl.commands.bench.env import _cpu_model
from depthrl.errors import ConfigError, check_positive


@dataclasses.dataclass(frozen=True)
class Args:
    episode_length: tuple[int, ...] = (100, 1000)
    """Time limits (steps) to measure, one JSON line each."""
    terminate_prob: float = 0.002
    """Probability that a step terminates its episode early (0 = fixed-length episodes)."""
    num_envs: int = 512
    """Envs (buffer columns), as the paper's 512."""
    rows_per_env: int = 2000
    """Rows (steps) kept per env."""
    batch_size: int = 512
    """Samples per batch."""
    batches: int = 32
    """Batches sampled per measurement (inside one jit)."""
    repeats: int = 5
    """Timed measurements after one warm-up; the median is reported."""
    gamma: float = 0.99
    """Discount of the geometric goal offset."""
    json: bool = False
    """Print JSON lines instead of a text summary."""


def filled_buffer(key: jax.Array, args: Args, episode_length: int) -> buf.BufferState:
    """A full buffer (rows_per_env + one unroll written) with random terminations and the time limit."""
    state = buf.init(buf.transition_example(29, 8), args.rows_per_env, args.num_envs)
    steps = args.rows_per_env + 50
    terminate = jax.random.uniform(key, (steps, args.num_envs)) < args.terminate_prob

    def step(since_start, terminated):
        done = terminated | (since_start + 1 >= episode_length)
        return jnp.where(done, 0, since_start + 1), done

    _, done = jax.lax.scan(step, jnp.zeros(args.num_envs, jnp.int32), terminate)
    chunk = {k: jnp.ones((steps, args.num_envs) + v.shape, v.dtype) for k, v in buf.transition_example(29, 8).items()}
    add, size = jax.jit(buf.add), 50
    for start in range(0, steps, size):
        state = add(state, {k: v[start:start + size] for k, v in chunk.items()}, done[start:start + size])
    return state


def measure(args: Args, episode_length: int) -> dict:
    key = jax.random.PRNGKey(0)
    state = filled_buffer(key, args, episode_length)

    def sample(state, key):
        def one(key):
            current, _, future, offsets = buf.sample_with_future(state, key, args.batch_size, args.gamma)
            return current["state"].sum() + future["state"].sum(), offsets.mean()

        return jax.vmap(one)(jax.random.split(key, args.batches))

    start = time.perf_counter()
    compiled = jax.jit(sample).lower(state, key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(state, key))
    times, cpu_times = [], []
    for i in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        _, offsets = jax.block_until_ready(compiled(state, jax.random.fold_in(key, i)))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    median = statistics.median(times)
    episodes = int(state.total_rows) * args.num_envs - int(state.num_continuing.sum())
    return {
        "bench": "buffer", "episode_length": episode_length, "terminate_prob": args.terminate_prob,
        "num_envs": args.num_envs, "rows_per_env": args.rows_per_env, "batch_size": args.batch_size,
        "batches": args.batches, "episodes_ended": episodes,
        "rows_per_ended_episode": int(state.total_rows) * args.num_envs / max(episodes, 1),
        "mean_offset": float(offsets.mean()), "compile_s": compile_s, "time_ms_median": 1e3 * median,
        "cpu_ms_median": 1e3 * statistics.median(cpu_times), "load_1min": os.getloadavg()[0],
        "us_per_sample": 1e6 * median / (args.batches * args.batch_size),
        "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
        "device": f"{jax.devices()[0].platform}: {_cpu_model()}", "jax": jax.__version__,
    }


def main(args: Args) -> int:
    for flag, value in (("--num-envs", args.num_envs), ("--rows-per-env", args.rows_per_env),
                        ("--batch-size", args.batch_size), ("--batches", args.batches), ("--repeats", args.repeats)):
        check_positive(flag, value)
    if not 0.0 <= args.terminate_prob < 1.0:
        raise ConfigError("--terminate-prob", args.terminate_prob, "must lie in [0, 1)")
    for length in args.episode_length:
        check_positive("--episode-length", length)
    for length in args.episode_length:
        result = measure(args, length)
        if args.json:
            print(jsonlib.dumps(result), flush=True)
        else:
            print(f"T={length}  p_terminate={args.terminate_prob}  "
                  f"{result['rows_per_ended_episode']:.0f} rows per ended episode  "
                  f"{result['time_ms_median']:.2f} ms per {args.batches} × {args.batch_size} samples "
                  f"({result['us_per_sample']:.3f} µs/sample)  temp {result['temp_bytes'] / 2**20:.2f} MiB  "
                  f"[{result['device']}]", flush=True)
    return 0
