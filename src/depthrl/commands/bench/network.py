"""Benchmark one SGD step of a residual network: compile time, step time, FLOP/s, utilisation, memory.

The step is forward + backward + Adam update of a residual torso with a scalar head on an MSE regression
to random targets: the shape of a critic update, without any RL. Peak FLOP/s is measured in the same
process on a chain of layer-shaped matmuls ([batch, width] x [width, width]), so ``mfu`` compares the
network against what this machine does on its own building block, not against a datasheet.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
import optax

from depthrl.agents.optim import optimizer_step
from depthrl.errors import ConfigError, check_positive
from depthrl.networks.diagnostics import flops_per_example, param_count
from depthrl.networks.heads import ScalarHead
from depthrl.networks.torso import NetworkConfig, ResidualTorso

PEAK_CHAIN = 16  # matmuls per timed call of the peak probe: amortises the per-call dispatch overhead


@dataclasses.dataclass(frozen=True)
class Args(NetworkConfig):
    """The torso's flags (as `depthrl train` spells them, plus its dtypes) and the benchmark's own."""

    network_layout: str = "scan"
    """How blocks are compiled: unrolled (Python loop), scan (flat compile time) or auto (by depth); scan here."""
    batch_size: int = 256
    """Examples per SGD step."""
    in_dim: int = 31
    """Input features (31 = the paper's Ant observation with its goal)."""
    repeats: int = 20
    """Timed steps; step_ms is their median."""
    warmup: int = 3
    """Untimed steps run first."""
    json: bool = False
    """Print exactly one JSON line instead of a readable summary."""

    def network_config(self) -> NetworkConfig:
        return self.network()

    def validate(self) -> Args:
        super().validate()
        check_positive("--batch-size", self.batch_size)
        check_positive("--in-dim", self.in_dim)
        check_positive("--repeats", self.repeats)
        if self.warmup < 0:
            raise ConfigError("--warmup", self.warmup, "must be >= 0")
        return self


class _Regressor(nn.Module):
    config: NetworkConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return ScalarHead(name="head")(ResidualTorso(self.config, name="torso")(x))


def _time_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall milliseconds of ``repeats`` calls; the min is the least disturbed by other jobs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def measure_peak_gflops(batch_size: int, width: int, dtype: str, repeats: int = 20) -> float:
    """Median GFLOP/s of PEAK_CHAIN chained [batch, width] x [width, width] matmuls in one jitted call."""
    key_x, key_w = jax.random.split(jax.random.key(1))
    x = jax.random.normal(key_x, (batch_size, width), dtype)
    w = (jax.random.normal(key_w, (width, width)) / jnp.sqrt(width)).astype(dtype)  # keeps |h| ~ constant
    chain = jax.jit(lambda h, w: jax.lax.fori_loop(0, PEAK_CHAIN, lambda _, h: h @ w, h))
    jax.block_until_ready(chain(x, w))
    ms, _ = _time_ms(lambda: chain(x, w), repeats)
    return 2 * batch_size * width * width * PEAK_CHAIN / (ms * 1e-3) / 1e9


def _peak_memory(compiled) -> tuple[float | None, str]:
    """Peak memory in MiB and where the number comes from.

    Devices that track allocations (GPU, TPU) report ``peak_bytes_in_use``. On CPU ``memory_stats()`` is
    None, so use XLA's buffer assignment: arguments + outputs + temporaries - donated (aliased) bytes, an
    upper bound on what the step holds live. (Its ``peak_memory_in_bytes`` field leaves temporaries out
    on CPU, so it is not used.)
    """
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20, "device.memory_stats peak_bytes_in_use"
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None, "unavailable"
    total = (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )
    return total / 2**20, "compiled.memory_analysis arguments+outputs+temps-aliased"


def _compile_cache_on() -> bool:
    return bool(jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir)


def run(args: Args) -> dict:
    """Measure and return the result record (no printing)."""
    args.validate()
    config = args.network_config()
    model = _Regressor(config)
    optimizer = optax.adam(3e-4)
    key_init, key_x, key_y = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(key_x, (args.batch_size, args.in_dim))
    y = jax.random.normal(key_y, (args.batch_size,))
    params = model.init(key_init, x[:1])["params"]
    opt_state = optimizer.init(params)
    num_params = param_count(params)  # before the jitted step donates (deletes) these buffers

    def train_step(params, opt_state, x, y):
        def loss_fn(params):
            return jnp.mean(jnp.square(model.apply({"params": params}, x) - y))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, opt_state = optimizer_step(optimizer, grads, opt_state, params)
        return params, opt_state, loss

    start = time.perf_counter()
    compiled = jax.jit(train_step, donate_argnums=(0, 1)).lower(params, opt_state, x, y).compile()
    compile_s = time.perf_counter() - start

    state = (params, opt_state)

    def step():
        nonlocal state
        new_params, new_opt_state, loss = compiled(*state, x, y)
        state = (new_params, new_opt_state)
        return loss

    for _ in range(args.warmup):
        jax.block_until_ready(step())
    step_ms, step_ms_min = _time_ms(step, args.repeats)

    flops = flops_per_example(config, args.in_dim, out_dim=1)
    # Forward + backward ≈ 3 forward passes (the backward computes two matmuls per forward matmul).
    gflops_per_s = 3 * flops * args.batch_size / (step_ms * 1e-3) / 1e9
    peak_gflops_per_s = measure_peak_gflops(args.batch_size, args.width, args.dtype)
    peak_memory_mb, memory_source = _peak_memory(compiled)
    device = jax.devices()[0]
    return {
        **dataclasses.asdict(args),
        "resolved_layout": config.resolved_layout(),
        "num_params": num_params,
        "flops_per_example": flops,
        "compile_s": compile_s,
        "step_ms": step_ms,
        "step_ms_min": step_ms_min,
        "gflops_per_s": gflops_per_s,
        "peak_gflops_per_s": peak_gflops_per_s,
        "mfu": gflops_per_s / peak_gflops_per_s,
        "peak_memory_mb": peak_memory_mb,
        "memory_source": memory_source,
        "device": f"{device.platform}:{device.device_kind}",
        # Other jobs on a shared machine slow every timing; the 1-minute load average says how busy it was.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        # With JAX's persistent compilation cache on, compile_s may be a cache load, not a compile.
        "compile_cache": _compile_cache_on(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
    }


def main(args: Args) -> int:
    result = run(args)  # a ConfigError reaches depthrl.cli, which prints it naming the flag and exits 2
    if args.json:
        print(json.dumps(result))
        return 0
    memory = "n/a" if result["peak_memory_mb"] is None else f"{result['peak_memory_mb']:.1f} MB"
    print(
        f"residual net depth {args.depth} width {args.width} batch {args.batch_size} "
        f"layout {result['resolved_layout']} remat {args.remat} dtype {args.dtype} "
        f"({result['num_params']:,} params) on {result['device']}, jax {result['jax_version']}\n"
        f"  compile   {result['compile_s']:.2f} s\n"
        f"  step      {result['step_ms']:.2f} ms median of {args.repeats}, min {result['step_ms_min']:.2f}\n"
        f"  compute   {result['gflops_per_s']:.1f} GFLOP/s of {result['peak_gflops_per_s']:.1f} peak "
        f"(mfu {result['mfu']:.2f})\n"
        f"  memory    {memory} ({result['memory_source']})"
    )
    return 0
