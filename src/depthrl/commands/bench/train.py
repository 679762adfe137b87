"""Benchmark one full training epoch and split its time: collection, sampling + relabelling, SGD updates.

The epoch is the trainer's own jitted, seed-vmapped `Trainer.epoch` (as `depthrl train` runs it, state donated)
after the buffer is prefilled. Its three parts are also jitted separately with the same shapes and timed
interleaved with it, so the split is measured under the same load:

* `collect`: `unroll_length` env steps of `num_envs` envs with the policy, and the buffer insert;
* `sample`: `sgd_steps_per_collect` relabelled batches (`Trainer.sample_batch`: uniform transition, future
  goal at a truncated-geometric offset of the same episode, O(1) per sample);
* `update`: `sgd_steps_per_collect` agent updates scanned over pre-sampled batches.

`--reference` also times the paper code's per-epoch sampling on the same buffer
(`commands.bench.reference.sample_epoch_batches`: a [T, T] probability matrix per env, O(num_envs · T²)).
`--compare-processes` measures the throughput of `--num-seeds K` vmapped in this process against K separate
single-seed processes run at the same time (a barrier starts their timing together).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jaxlib

from depthrl.commands.bench.network import _compile_cache_on
from depthrl.commands.bench.update import bench_agent_config
from depthrl.errors import ConfigError, check_choice, check_positive
from depthrl.networks.torso import NetworkFlags

AGENTS = ("crl", "sac", "td3")


@dataclasses.dataclass(frozen=True)
class Args(NetworkFlags):
    """The agent's network flags (as `depthrl train` spells them) and the benchmark's own."""

    agent: str = "crl"
    """Agent to train: crl, sac or td3 (goal-conditioned agents that share the trajectory buffer)."""
    env: str = "point-maze-u"
    """Registered environment name (`depthrl envs`)."""
    episode_length: int | None = None
    """Steps per episode (None = the env's default); 1000 is the paper's."""
    batch_size: int = 256
    """Transitions per SGD step."""
    num_envs: int = 64
    """Parallel training envs."""
    unroll_length: int = 50
    """Env steps per env per epoch."""
    sgd_steps_per_collect: int = 32
    """SGD steps per epoch."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (all envs together)."""
    num_seeds: int = 1
    """Seeds vmapped in this process."""
    repeats: int = 5
    """Timed rounds (each: one epoch and each of its parts); the medians are reported."""
    reference: bool = False
    """Also time the paper code's O(num_envs · T²) per-epoch sampling on the same buffer."""
    compare_processes: bool = False
    """Also run --num-seeds separate single-seed processes at once and compare their total throughput."""
    compile_only: bool = False
    """Only compile the epoch (compile time, memory); no timing."""
    barrier: str | None = None
    """Internal (--compare-processes): a directory where this process says it is ready and waits for 'go'."""
    json: bool = False
    """Print exactly one JSON line instead of a readable summary."""

    def validate(self) -> Args:
        check_choice("--agent", self.agent, AGENTS)
        check_positive("--repeats", self.repeats)
        if self.compare_processes and self.num_seeds < 2:
            raise ConfigError("--compare-processes", True, "needs --num-seeds >= 2 (K processes against K seeds)")
        if self.compare_processes and self.compile_only:
            raise ConfigError("--compare-processes", True, "not with --compile-only (it compares timings)")
        if self.barrier is not None and not Path(self.barrier).is_dir():
            raise ConfigError("--barrier", self.barrier, "must be an existing directory")
        from depthrl.training import command

        command.validate_config(self.train_args())
        return self

    def train_args(self) -> Any:
        """The `depthrl train AGENT` Args this benchmark trains with."""
        from depthrl.envs.registry import EnvConfig
        from depthrl.training import registry
        from depthrl.training.loop import TrainConfig

        base = registry.get(self.agent).args()
        train = TrainConfig(num_envs=self.num_envs, unroll_length=self.unroll_length,
                            sgd_steps_per_collect=self.sgd_steps_per_collect, buffer_size=self.buffer_size,
                            num_seeds=self.num_seeds, total_env_steps=self.num_envs * self.unroll_length)
        return dataclasses.replace(base, env=EnvConfig(env=self.env, episode_length=self.episode_length),
                                   agent=bench_agent_config(self), train=train,
                                   progress=False, plots=False, tensorboard=False, compile_cache=False)


def _timed_call(fn, *args) -> tuple[Any, tuple[float, float]]:
    """fn(*args) and its (wall, CPU-of-this-process) seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    return out, (time.perf_counter() - start, time.process_time() - cpu_start)


def _compile(fn, *args, donate: tuple[int, ...] = ()) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    return compiled, time.perf_counter() - start


def run(args: Args) -> dict:
    """Measure and return the result record (no printing)."""
    from depthrl.commands.bench.network import _peak_memory
    from depthrl.training import command, runner

    args.validate()
    train_args = args.train_args()
    trainer = command.build(train_args)
    cfg, spec, agent = trainer.config, trainer.env.spec, trainer.agent
    keys = runner.seed_keys(0, cfg.num_seeds)
    state = jax.jit(jax.vmap(trainer.init))(keys)
    # Fill the buffer so that sampling has whole episodes to draw from (random actions, as --prefill-steps).
    prefill = jax.jit(jax.vmap(trainer.prefill_epoch), donate_argnums=0)
    for _ in range(max(2, -(-spec.episode_length // cfg.unroll_length))):
        state = prefill(state)

    epoch_fn, epoch_compile_s = _compile(jax.vmap(trainer.epoch), state, donate=(0,))
    peak_memory_mb, memory_source = _peak_memory(epoch_fn)
    record: dict[str, Any] = {
        "bench": "train", **dataclasses.asdict(args), "episode_length": spec.episode_length,
        "resolved_layout": agent.config.network(agent.config.depth).resolved_layout(),
        "resolved_remat": agent.config.remat, "env_steps_per_epoch": cfg.steps_per_epoch * cfg.num_seeds,
        "epoch_compile_s": epoch_compile_s, "peak_memory_mb": peak_memory_mb, "memory_source": memory_source,
        "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}", "compile_cache": _compile_cache_on(),
        "jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
    }
    if args.compile_only:
        record["load_avg_1m"] = _load()
        return record

    sample_key = jax.random.split(jax.random.PRNGKey(1), cfg.num_seeds)

    def collect(ts, key):  # the epoch's own collection
        return trainer.collect(ts, key)[0]

    def sample(ts, key):
        return jax.vmap(lambda k: trainer.sample_batch(ts, k))(jax.random.split(key, cfg.sgd_steps_per_collect))

    def update(agent_state, batches, key):
        def body(agent_state, inputs):
            batch, step_key = inputs
            return agent.update(agent_state, batch, step_key)

        return jax.lax.scan(body, agent_state, (batches, jax.random.split(key, cfg.sgd_steps_per_collect)))

    collect_fn, _ = _compile(jax.vmap(collect), state, sample_key)
    sample_fn, _ = _compile(jax.vmap(sample), state, sample_key)
    batches = sample_fn(state, sample_key)
    update_fn, _ = _compile(jax.vmap(update), state.agent, batches, sample_key)
    parts: dict[str, list[float]] = {"epoch": [], "collect": [], "sample": [], "update": []}
    reference_fn = None
    if args.reference:
        from depthrl.commands.bench.reference import sample_epoch_batches

        def reference_sample(ts, key):
            return sample_epoch_batches(key, ts.buffer.data, ts.buffer.total_rows, spec.episode_length,
                                        cfg.sgd_steps_per_collect, agent.config.batch_size, agent.config.discount,
                                        spec.goal_indices)

        if cfg.num_envs * spec.episode_length < cfg.sgd_steps_per_collect * agent.config.batch_size:
            raise ConfigError("--reference", True, "the paper's sampling needs --num-envs × episode length >= "
                              "--sgd-steps-per-collect × --batch-size transitions per epoch")
        reference_fn, _ = _compile(jax.vmap(reference_sample), state, sample_key)
        parts["reference_sample"] = []
        if args.agent == "crl":  # the paper's SGD steps on its batches, for an epoch-level comparison
            from depthrl.commands.bench.reference import PaperCRL

            paper = PaperCRL(state_dim=spec.state_dim, goal_dim=spec.goal_dim, action_dim=spec.action_dim,
                             width=args.width, depth=args.depth, repr_dim=agent.config.repr_dim,
                             logsumexp_coef=agent.config.logsumexp_coef)
            paper_state = jax.jit(jax.vmap(paper.init))(sample_key)
            reference_batches = reference_fn(state, sample_key)
            reference_update_fn, record["reference_update_compile_s"] = _compile(
                jax.vmap(paper.sgd_steps), paper_state, reference_batches, sample_key)
            parts["reference_update"] = []

    _wait_at_barrier(args.barrier)
    load_before = _load()
    for round_ in range(args.repeats + 1):  # round 0 warms up
        times = {}
        _, times["collect"] = _timed_call(collect_fn, state, sample_key)
        _, times["sample"] = _timed_call(sample_fn, state, sample_key)
        agent_out, times["update"] = _timed_call(update_fn, state.agent, batches, sample_key)
        del agent_out
        if reference_fn is not None:
            _, times["reference_sample"] = _timed_call(reference_fn, state, sample_key)
        if "reference_update" in parts:
            _, times["reference_update"] = _timed_call(reference_update_fn, paper_state, reference_batches,
                                                       sample_key)
        (state, _), times["epoch"] = _timed_call(epoch_fn, state)
        if round_:
            for name, t in times.items():
                parts[name].append(t)
    ms = {name: 1e3 * statistics.median(wall for wall, _ in t) for name, t in parts.items()}
    cpu_ms = {name: 1e3 * statistics.median(cpu for _, cpu in t) for name, t in parts.items()}
    parts_total = ms["collect"] + ms["sample"] + ms["update"]
    record.update({f"{name}_ms": value for name, value in ms.items()})
    # CPU seconds of this process: on a shared machine far less disturbed by other jobs than wall time.
    record.update({f"{name}_cpu_ms": value for name, value in cpu_ms.items()})
    record.update(
        epoch_ms_min=1e3 * min(wall for wall, _ in parts["epoch"]),
        env_steps_per_s=cfg.steps_per_epoch * cfg.num_seeds / (ms["epoch"] * 1e-3),
        sgd_steps_per_s=cfg.sgd_steps_per_collect * cfg.num_seeds / (ms["epoch"] * 1e-3),
        collect_fraction=ms["collect"] / parts_total, sample_fraction=ms["sample"] / parts_total,
        update_fraction=ms["update"] / parts_total,
        load_avg_1m=(load_before + _load()) / 2 if load_before is not None else None,
    )
    if reference_fn is not None:
        record["reference_sample_fraction"] = ms["reference_sample"] / (parts_total - ms["sample"]
                                                                         + ms["reference_sample"])
    if "reference_update" in parts:
        # The SGD part of an epoch (sampling + updates) against the paper's structure, in CPU time.
        record["speedup_vs_reference_cpu"] = ((cpu_ms["reference_sample"] + cpu_ms["reference_update"])
                                              / (cpu_ms["sample"] + cpu_ms["update"]))
    if args.compare_processes:
        record.update(_compare_processes(args, record))
    return record


def _wait_at_barrier(barrier: str | None, timeout_s: float = 3600.0) -> None:
    """Say this process is ready (compiled) and wait until the parent writes 'go'."""
    if barrier is None:
        return
    Path(barrier, f"ready_{os.getpid()}").touch()
    deadline = time.time() + timeout_s
    while not Path(barrier, "go").exists():
        if time.time() > deadline:
            raise TimeoutError(f"no 'go' in {barrier} after {timeout_s:.0f} s")
        time.sleep(0.05)


def _compare_processes(args: Args, vmapped: dict) -> dict:
    """Run num_seeds single-seed copies of this benchmark at once; their summed env steps/s against the vmapped."""
    k = args.num_seeds
    with tempfile.TemporaryDirectory() as barrier:
        flags = _flags(dataclasses.replace(args, num_seeds=1, compare_processes=False, reference=False, json=True,
                                           barrier=barrier))
        procs = [subprocess.Popen([sys.executable, "-m", "depthrl.cli", "bench", "train", *flags],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(k)]
        while sum(1 for p in Path(barrier).glob("ready_*")) < k and all(p.poll() is None for p in procs):
            time.sleep(0.05)
        Path(barrier, "go").touch()
        outputs = [p.communicate() for p in procs]
    failed = [err for (_, err), p in zip(outputs, procs, strict=True) if p.returncode != 0]
    if failed:
        raise RuntimeError(f"a single-seed process failed: {failed[0][-2000:]}")
    singles = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    total = sum(s["env_steps_per_s"] for s in singles)
    return {"processes_env_steps_per_s": total, "processes_epoch_ms": [s["epoch_ms"] for s in singles],
            "vmapped_over_processes": vmapped["env_steps_per_s"] / total}


def _flags(args: Args) -> list[str]:
    """Command-line flags that reproduce `args` (tyro's spelling: --name value, --flag / --no-flag)."""
    out = []
    for field in dataclasses.fields(args):
        value, flag = getattr(args, field.name), "--" + field.name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, str(value)]
    return out


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def main(args: Args) -> int:
    result = run(args)  # a ConfigError reaches depthrl.cli, which prints it naming the flag and exits 2
    if args.json:
        print(json.dumps(result))
        return 0
    lines = [f"{args.agent} epoch on {args.env} (episode length {result['episode_length']}), depth {args.depth} "
             f"width {args.width} batch {args.batch_size}, {args.num_envs} envs × {args.unroll_length} steps, "
             f"{args.sgd_steps_per_collect} SGD steps, {args.num_seeds} seed(s), layout {result['resolved_layout']} "
             f"remat {result['resolved_remat']} on {result['device']}",
             f"  epoch compile {result['epoch_compile_s']:.2f} s"]
    if not args.compile_only:
        lines += [f"  epoch   {result['epoch_ms']:.1f} ms: {result['env_steps_per_s']:,.0f} env steps/s, "
                  f"{result['sgd_steps_per_s']:.1f} SGD steps/s",
                  f"  split   collect {result['collect_fraction']:.1%}  sample+relabel {result['sample_fraction']:.1%}"
                  f"  update {result['update_fraction']:.1%}  (parts timed separately: {result['collect_ms']:.1f} / "
                  f"{result['sample_ms']:.2f} / {result['update_ms']:.1f} ms)"]
        if args.reference:
            lines.append(f"  paper-structure sampling {result['reference_sample_ms']:.1f} ms per epoch "
                         f"({result['reference_sample_fraction']:.1%} of its epoch)")
        if "speedup_vs_reference_cpu" in result:
            lines.append(f"  sampling + SGD steps: depthrl {result['speedup_vs_reference_cpu']:.2f}× faster than the "
                         "paper's structure (CPU time)")
        if args.compare_processes:
            lines.append(f"  {args.num_seeds} seeds vmapped: {result['vmapped_over_processes']:.2f}× the env steps/s "
                         f"of {args.num_seeds} separate processes ({result['processes_env_steps_per_s']:,.0f})")
    if result["load_avg_1m"] is not None:
        lines.append(f"  load average {result['load_avg_1m']:.1f}")
    print("\n".join(lines))
    return 0
