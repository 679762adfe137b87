"""Benchmark one agent SGD step (CRL: critic + actor + α) on random data of an env's shapes.

The step is the agent's own `update(state, batch, key)`, jitted with the agent state donated, `--steps-per-call`
steps scanned per call (as the training epoch scans them), on random batches of the env's shapes: by default
the paper's Ant (29 state dims, 2 goal dims, 8 actions). It reports compile time, step time (median and min
of `--repeats` calls after `--warmup`), SGD steps/s, model GFLOP/s, the matmul peak measured in the same
process (`commands.bench.network.measure_peak_gflops`: chained [batch, width] × [width, width] matmuls), the
model-FLOP utilisation `mfu` and the compiled step's memory (`commands.bench.network._peak_memory`).

Model FLOPs count what the algorithm needs, 2 per multiply-add of every Dense, whatever an implementation
recomputes (remat, a second ψ pass): forward = 1, forward + backward = 3, forward + backward to the input
only (the actor's pass through the critic) = 2 — see MODEL_PASSES — plus the InfoNCE logits matrix.

`--reference` (CRL only) builds the paper code's structure of the same step (`commands.bench.reference`) and
times it in the same process, interleaved call by call with depthrl's, so `speedup_vs_reference` is a
ratio measured under the same load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from typing import Any

import jax
import jaxlib

from depthrl.commands.bench.network import _compile_cache_on, _peak_memory, measure_peak_gflops
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_choice, check_positive
from depthrl.networks.torso import NetworkFlags
from depthrl.training.estimate import find_networks

AGENTS = ("crl", "sac", "td3")

# FLOPs per SGD step of each network as a multiple of its forward pass (see the module docstring).
#   crl: φ forward + backward in the critic (3) and forward + backward to the action in the actor (2); ψ forward
#        + backward (3); actor forward + backward (3).
#   sac: twin critic forward + backward (3), target critics at (s', a') (1), forward + backward to the action
#        in the actor loss (2); actor at s' (1) and forward + backward (3).
#   td3: as sac (the deterministic actor's step is computed every step and kept every --policy-delay steps).
MODEL_PASSES: dict[str, dict[str, float]] = {
    "crl": {"actor": 3.0, "sa_encoder": 5.0, "g_encoder": 3.0},
    "sac": {"actor": 4.0, "critic": 6.0},
    "td3": {"actor": 4.0, "critic": 6.0},
}


@dataclasses.dataclass(frozen=True)
class Args(NetworkFlags):
    """The agent's network flags (as `depthrl train` spells them) and the benchmark's own."""

    depth: int = 16
    """Dense layers inside the residual blocks of every network (a multiple of --layers-per-block)."""
    agent: str = "crl"
    """Agent whose update is timed: crl, sac or td3."""
    batch_size: int = 256
    """Transitions per SGD step."""
    env: str | None = None
    """Take the shapes of this registered env (`depthrl envs`); default: the --obs-dim/--goal-dim/--action-dim."""
    obs_dim: int = 29
    """State dims without the goal (29: the paper's Ant); ignored with --env."""
    goal_dim: int = 2
    """Goal dims (2: the Ant's x, y); ignored with --env."""
    action_dim: int = 8
    """Action dims (8: the Ant); ignored with --env."""
    steps_per_call: int = 4
    """SGD steps scanned inside one jitted call (the training epoch scans them the same way)."""
    repeats: int = 10
    """Timed calls; step_ms is their median divided by --steps-per-call."""
    warmup: int = 2
    """Untimed calls first."""
    reference: bool = False
    """Also time the paper code's structure of the same step, interleaved call by call (crl only)."""
    compile_only: bool = False
    """Compile and report compile time and memory only (no timing): for memory sweeps at large depth."""
    json: bool = False
    """Print exactly one JSON line instead of a readable summary."""

    def validate(self) -> Args:
        check_choice("--agent", self.agent, AGENTS)
        for flag, value in (("--obs-dim", self.obs_dim), ("--goal-dim", self.goal_dim),
                            ("--action-dim", self.action_dim), ("--steps-per-call", self.steps_per_call),
                            ("--repeats", self.repeats)):
            check_positive(flag, value)
        if self.batch_size < 2:
            raise ConfigError("--batch-size", self.batch_size, "must be >= 2 (InfoNCE needs negatives)")
        if self.warmup < 0:
            raise ConfigError("--warmup", self.warmup, "must be >= 0")
        if self.reference and self.agent != "crl":
            raise ConfigError("--reference", True, "the paper's reference structure exists for --agent crl only")
        if self.env is not None:
            from depthrl.envs.registry import EnvConfig

            EnvConfig(env=self.env).validate()
        self.agent_config().validate()
        return self

    def agent_config(self) -> Any:
        """The agent's own config with this benchmark's network and batch settings."""
        return bench_agent_config(self)

    def spec(self) -> EnvSpec:
        if self.env is not None:
            from depthrl.envs.registry import EnvConfig, make_envs

            return make_envs(EnvConfig(env=self.env))[0].spec
        return EnvSpec(name="random", obs_dim=self.obs_dim + self.goal_dim, action_dim=self.action_dim,
                       state_dim=self.obs_dim, goal_indices=tuple(range(self.goal_dim)), episode_length=1000)


def bench_agent_config(args: Any) -> Any:
    """The config of `depthrl train {args.agent}` with a benchmark's network flags (`NetworkFlags`) and
    --batch-size (this module's Args and `bench train`'s)."""
    from depthrl.training import registry

    network = {f.name: getattr(args, f.name) for f in dataclasses.fields(NetworkFlags)}
    return dataclasses.replace(registry.get(args.agent).args().agent, **network, batch_size=args.batch_size)


def random_batches(key: jax.Array, spec: EnvSpec, batch_size: int, num_steps: int) -> dict[str, jax.Array]:
    """field -> [num_steps, batch_size, ...]: states, next states, actions in [-1, 1] and goals."""
    k_state, k_next, k_action, k_goal = jax.random.split(key, 4)
    shape = (num_steps, batch_size)
    return {"state": jax.random.normal(k_state, shape + (spec.state_dim,)),
            "next_state": jax.random.normal(k_next, shape + (spec.state_dim,)),
            "action": jax.random.uniform(k_action, shape + (spec.action_dim,), minval=-1.0, maxval=1.0),
            "goal": jax.random.normal(k_goal, shape + (spec.goal_dim,))}


def model_flops(agent_kind: str, params: Any, batch_size: int, repr_dim: int = 0) -> float:
    """Model FLOPs of one SGD step (MODEL_PASSES × each network's forward FLOPs, plus the InfoNCE logits)."""
    passes = MODEL_PASSES[agent_kind]
    flops = sum(passes.get(net.name, 3.0) * net.flops_per_example * batch_size for net in find_networks(params))
    if agent_kind == "crl":  # logits φ ψᵀ [B, B] from [B, D] × [D, B], forward + backward
        flops += 3 * 2 * batch_size * batch_size * repr_dim
    return flops


def scanned_update(update_fn):
    """(state, batches [K, B, ...], key) -> (state, metrics of the last step): K updates in one lax.scan."""

    def run(state, batches, key):
        num_steps = next(iter(batches.values())).shape[0]

        def body(state, inputs):
            batch, step_key = inputs
            return update_fn(state, batch, step_key)

        state, metrics = jax.lax.scan(body, state, (batches, jax.random.split(key, num_steps)))
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return run


class _Timed:
    """A compiled scanned update with its (donated) state threaded from call to call."""

    def __init__(self, update_fn, state, batches, key):
        self.batches, self.key = batches, key
        start = time.perf_counter()
        self.compiled = jax.jit(scanned_update(update_fn), donate_argnums=0).lower(state, batches, key).compile()
        self.compile_s = time.perf_counter() - start
        self.state = state
        self.times: list[float] = []  # wall seconds per call
        self.cpu_times: list[float] = []  # CPU seconds of this process per call

    def call(self) -> None:
        start, cpu_start = time.perf_counter(), time.process_time()
        self.state, metrics = self.compiled(self.state, self.batches, self.key)
        jax.block_until_ready(metrics)
        self.times.append(time.perf_counter() - start)
        self.cpu_times.append(time.process_time() - cpu_start)

    def clear(self) -> None:
        self.times.clear()
        self.cpu_times.clear()


def run(args: Args) -> dict:
    """Measure and return the result record (no printing)."""
    from depthrl.training import registry

    args.validate()
    spec = args.spec()
    config = args.agent_config()
    agent = registry.get(args.agent).agent(config, spec)
    init_key, data_key, step_key = jax.random.split(jax.random.PRNGKey(0), 3)
    state = jax.jit(agent.init)(init_key)
    batches = random_batches(data_key, spec, args.batch_size, args.steps_per_call)
    flops = model_flops(args.agent, state.params, args.batch_size, getattr(config, "repr_dim", 0))
    num_params = sum(int(x.size) for x in jax.tree.leaves(state.params))
    ours = _Timed(agent.update, state, batches, step_key)
    peak_memory_mb, memory_source = _peak_memory(ours.compiled)
    ref = None
    if args.reference:
        from depthrl.commands.bench.reference import PaperCRL

        paper = PaperCRL(state_dim=spec.state_dim, goal_dim=spec.goal_dim, action_dim=spec.action_dim,
                         width=args.width, depth=args.depth, repr_dim=config.repr_dim)
        ref = _Timed(paper.sgd_step, jax.jit(paper.init)(init_key), batches, step_key)
    device = jax.devices()[0]
    record = {
        "bench": "update", **dataclasses.asdict(args), "env_shapes": [spec.state_dim, spec.goal_dim, spec.action_dim],
        "resolved_layout": config.network(config.depth).resolved_layout(), "resolved_remat": config.remat,
        "num_params": num_params, "model_flops_per_step": flops,
        "compile_s": ours.compile_s, "peak_memory_mb": peak_memory_mb, "memory_source": memory_source,
        "device": f"{device.platform}:{device.device_kind}", "compile_cache": _compile_cache_on(),
        "jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
    }
    if ref is not None:
        ref_memory_mb, _ = _peak_memory(ref.compiled)
        record.update(reference_compile_s=ref.compile_s, reference_peak_memory_mb=ref_memory_mb)
    if args.compile_only:
        record["load_avg_1m"] = _load()
        return record

    for _ in range(args.warmup):
        for timed in (ours, ref):
            if timed is not None:
                timed.call()
    ours.clear()
    if ref is not None:
        ref.clear()
    peaks = []
    load_before = _load()
    for _ in range(args.repeats):  # interleaved: ours, the reference, the matmul peak see the same load
        ours.call()
        if ref is not None:
            ref.call()
        peaks.append(measure_peak_gflops(args.batch_size, args.width, "float32", repeats=3))
    k = args.steps_per_call
    step_ms, step_ms_min = 1e3 * statistics.median(ours.times) / k, 1e3 * min(ours.times) / k
    peak = statistics.median(peaks)
    gflops = flops / (step_ms * 1e-3) / 1e9
    record.update(
        step_ms=step_ms, step_ms_min=step_ms_min, step_cpu_ms=1e3 * statistics.median(ours.cpu_times) / k,
        sgd_steps_per_s=1e3 / step_ms, gflops_per_s=gflops,
        peak_gflops_per_s=peak, peak_gflops_per_s_max=max(peaks), mfu=gflops / peak,
        mfu_best=(flops / (step_ms_min * 1e-3) / 1e9) / max(peaks),
        load_avg_1m=(load_before + _load()) / 2 if load_before is not None else None,
    )
    if ref is not None:
        ref_ms, ref_ms_min = 1e3 * statistics.median(ref.times) / k, 1e3 * min(ref.times) / k
        # Per-round ratio: both calls of a round ran back to back, under (nearly) the same load.
        ratios = [r / o for r, o in zip(ref.times, ours.times, strict=True)]
        record.update(reference_step_ms=ref_ms, reference_step_ms_min=ref_ms_min,
                      reference_gflops_per_s=flops / (ref_ms * 1e-3) / 1e9,
                      speedup_vs_reference=statistics.median(ratios),
                      speedup_vs_reference_min=ref_ms_min / step_ms_min,
                      reference_step_cpu_ms=1e3 * statistics.median(ref.cpu_times) / k,
                      speedup_vs_reference_cpu=statistics.median(ref.cpu_times) / statistics.median(ours.cpu_times))
    return record


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def main(args: Args) -> int:
    result = run(args)  # a ConfigError reaches depthrl.cli, which prints it naming the flag and exits 2
    if args.json:
        print(json.dumps(result))
        return 0
    memory = "n/a" if result["peak_memory_mb"] is None else f"{result['peak_memory_mb']:.1f} MB"
    lines = [f"{args.agent} update, depth {args.depth} width {args.width} batch {args.batch_size}, shapes "
             f"(state, goal, action) = {tuple(result['env_shapes'])}, layout {result['resolved_layout']} remat "
             f"{result['resolved_remat']} ({result['num_params']:,} params) on {result['device']}",
             f"  compile   {result['compile_s']:.2f} s", f"  memory    {memory} ({result['memory_source']})"]
    if not args.compile_only:
        lines += [f"  step      {result['step_ms']:.2f} ms median, min {result['step_ms_min']:.2f} "
                  f"({result['sgd_steps_per_s']:.1f} SGD steps/s)",
                  f"  compute   {result['gflops_per_s']:.1f} GFLOP/s of {result['peak_gflops_per_s']:.1f} peak "
                  f"(mfu {result['mfu']:.2f})"]
        if args.reference:
            lines.append(f"  paper structure: {result['reference_step_ms']:.2f} ms (compile "
                         f"{result['reference_compile_s']:.1f} s): depthrl is {result['speedup_vs_reference']:.2f}× "
                         "faster")
    lines.append(f"  load average {result['load_avg_1m']:.1f}" if result["load_avg_1m"] is not None else "")
    print("\n".join(line for line in lines if line))
    return 0
