"""Benchmark env steps/s: the jitted, batched step with auto-reset and random actions.

One measurement is `--steps` steps of `--num-envs` envs scanned inside one jit (actions drawn inside the
scan); steps/s counts env steps (num_envs × steps) per second, median over `--repeats` measurements.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import platform
import statistics
import time

import jax

from depthrl.envs.registry import EnvConfig, batched_envs, make_envs


@dataclasses.dataclass(frozen=True)
class Args:
    env: str = "point-maze-u"
    """Registered environment name (`depthrl envs` lists them)."""
    layout: str | None = None
    """Maze for --env point-maze: a built-in name, a file, or ASCII rows separated by '/'."""
    num_envs: int = 1024
    """Number of envs stepped in parallel (vmap)."""
    steps: int = 1000
    """Steps per measurement, scanned inside one jit."""
    repeats: int = 5
    """Number of timed measurements (after one warm-up); the median is reported."""
    batch_reset: bool = True
    """Auto-reset over the whole batch (`batched_envs`: resets only on steps where an episode ends);
    --no-batch-reset vmaps the per-env wrapper of `make_envs` instead (a reset computed every step)."""
    json: bool = False
    """Print one JSON line instead of a text summary."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(args: Args) -> dict:
    """Compile and time the rollout; return the results as a dict."""
    from depthrl.errors import check_positive

    for flag, value in (("--num-envs", args.num_envs), ("--steps", args.steps), ("--repeats", args.repeats)):
        check_positive(flag, value)
    cfg = EnvConfig(env=args.env, layout=args.layout)
    if args.batch_reset:
        env, _ = batched_envs(cfg)
        reset, step = env.reset, env.step
    else:
        env, _ = make_envs(cfg)
        reset, step = jax.vmap(env.reset), jax.vmap(env.step)
    spec = env.spec

    def rollout(state, key):
        def body(carry, _):
            state, key = carry
            key, action_key = jax.random.split(key)
            actions = jax.random.uniform(
                action_key, (args.num_envs, spec.action_dim), minval=spec.action_low, maxval=spec.action_high
            )
            state = step(state, actions)
            return (state, key), state.info["at_goal"].mean()

        (state, key), at_goal = jax.lax.scan(body, (state, key), None, length=args.steps)
        return state, key, at_goal.mean()

    reset_key, run_key = jax.random.split(jax.random.PRNGKey(0))
    state = jax.jit(reset)(jax.random.split(reset_key, args.num_envs))
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, run_key).compile()
    compile_s = time.perf_counter() - start
    state, key, _ = jax.block_until_ready(compiled(state, run_key))  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, key, at_goal = jax.block_until_ready(compiled(state, key))
        times.append(time.perf_counter() - start)
    env_steps = args.num_envs * args.steps
    return {
        "bench": "env",
        "env": args.env,
        "layout": args.layout,
        "num_envs": args.num_envs,
        "batch_reset": args.batch_reset,
        "steps": args.steps,
        "repeats": args.repeats,
        "episode_length": spec.episode_length,
        "compile_s": compile_s,
        "time_s_median": statistics.median(times),
        "steps_per_s": env_steps / statistics.median(times),
        "steps_per_s_best": env_steps / min(times),
        "random_policy_at_goal": float(at_goal),
        "device": f"{jax.devices()[0].platform}: {_cpu_model()}",
        "jax": jax.__version__,
    }


def main(args: Args) -> int:
    result = measure(args)
    if args.json:
        print(jsonlib.dumps(result))
    else:
        print(
            f"{result['env']}  N={result['num_envs']}  steps={result['steps']}  "
            f"{'batch' if result['batch_reset'] else 'per-env'} reset  "
            f"compile {result['compile_s']:.2f} s  "
            f"{result['steps_per_s'] / 1e6:.2f} M steps/s median "
            f"({result['steps_per_s_best'] / 1e6:.2f} best of {result['repeats']})  "
            f"[{result['device']}]"
        )
    return 0
