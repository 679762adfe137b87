"""Know the cost before paying it: parameters, FLOPs per SGD step and peak memory of a run, before compiling.

`depthrl estimate <the flags of depthrl train crl>` prints the estimate; `depthrl train` prints the same line
at start. The refusal is exact: `depthrl train` compiles its programs before allocating anything and compares
XLA's buffer assignment (`CompiledMemory`) with the free memory of the device (GPU: the allocator's limit
minus what is in use; CPU: the kernel's MemAvailable; DEPTHRL_MEMORY_LIMIT_BYTES overrides both), unless
`--no-memory-check`. The model below is used where a backend gives no buffer assignment, and by
`depthrl estimate` (which compiles only with `--compile`).

Exact parts (from `jax.eval_shape` of the trainer's init, nothing is compiled or allocated): parameters,
optimiser state, replay buffer, env states. Modelled parts: FLOPs (2 per multiply-add of every Dense,
`networks.diagnostics.flops_per_example`; a backward pass costs two forwards) and the activations kept for
the backward pass of one SGD step:

    no remat:        c · batch · width · (depth + 1) · 4 bytes  per network pass with a backward
    remat (scan):    (num_blocks + 1) · batch · width · 4 per pass  +  one block recomputed: c · 4 · batch · width · 4

with c = 7 floats per example per layer for the scan layout and c = 4 unrolled (XLA fuses the unrolled
norm + activation and keeps fewer intermediates). Both were fitted to the buffer assignment of the compiled
CRL update on CPU (XLA's `memory_analysis()`: arguments + outputs + temporaries); `tests/commands/test_estimate.py`
checks the estimate against it within a factor of 2. Remat is credited for the scan layout only: on CPU
XLA keeps the unrolled layout's activations whatever `--remat` says (measured: d16 w64 b256 unrolled,
17.2 MiB of temporaries with remat vs 18.0 without; scan 2.8 vs 29.0).

Peak of a run = num_seeds × (2 × agent state (the update reads one copy and writes the next) + gradients
+ activations + logits + replay buffer + env states + one collected unroll).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from depthrl.errors import ConfigError

FLOAT_BYTES = 4
# Floats kept per example per layer for the backward pass (fitted on CPU, see the module docstring).
ACTIVATION_FLOATS = {"scan": 7, "unrolled": 4}

# Per SGD step, by agent kind and network (top-level field of the agent's params): (FLOPs as a multiple of
# one forward pass, passes that keep activations for a backward). A network not listed: (3, 1), one
# forward and one backward.
#   CRL critic step: φ = sa_encoder and ψ = g_encoder forward + backward;
#   CRL actor step:  actor forward + backward, sa_encoder forward + backward to the action (no weight
#                    gradients: 2 forwards' worth), g_encoder forward only (ψ is held fixed).
PASSES: dict[str, dict[str, tuple[float, int]]] = {
    "crl": {"actor": (3.0, 1), "sa_encoder": (5.0, 2), "g_encoder": (4.0, 1)},
}
DEFAULT_PASS = (3.0, 1)


@dataclasses.dataclass(frozen=True)
class Network:
    """One residual torso found in the agent's params (plus its head)."""

    name: str
    in_dim: int
    width: int
    depth: int
    num_blocks: int
    layers_per_block: int
    out_dim: int
    layout: str  # "scan" or "unrolled"
    ensemble: int  # copies stacked on leading axes (e.g. twin critics)

    @property
    def flops_per_example(self) -> int:
        """Forward FLOPs of one example (all ensemble members): Dense layers, 2 per multiply-add."""
        macs = self.in_dim * self.width + self.depth * self.width**2 + self.width * self.out_dim
        return 2 * macs * self.ensemble


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Cost of one run. Bytes are per device (what must fit on each) and totals over --num-seeds."""

    num_params: int  # per seed
    flops_per_sgd_step: float  # per seed
    sgd_steps_per_epoch: int
    num_seeds: int
    num_devices: int  # --num-devices: the SGD batch is split across them, everything else is replicated
    batch_size: int
    remat: bool
    layouts: tuple[str, ...]
    params_bytes: int
    optimizer_bytes: int
    gradient_bytes: int
    activation_bytes: int
    activation_bytes_remat: int  # what --remat with the scan layout would give (= activation_bytes when on)
    logits_bytes: int
    buffer_bytes: int
    env_bytes: int
    collect_bytes: int

    @property
    def agent_state_bytes(self) -> int:
        return self.params_bytes + self.optimizer_bytes

    @property
    def update_bytes(self) -> int:
        """Peak of one SGD step (what `memory_analysis()` of the compiled update measures), all seeds."""
        return (2 * self.agent_state_bytes + self.gradient_bytes + self.activation_bytes + self.logits_bytes)

    @property
    def peak_bytes(self) -> int:
        return self.update_bytes + self.buffer_bytes + self.env_bytes + self.collect_bytes

    def remat_flags(self) -> str:
        """The flags that make remat effective (XLA keeps the unrolled layout's activations on CPU)."""
        return "--remat" + (" --network-layout scan" if "unrolled" in self.layouts else "")

    def dominant(self) -> str:
        parts = {"activations": self.activation_bytes + self.logits_bytes, "buffer": self.buffer_bytes,
                 "parameters": 3 * self.agent_state_bytes + self.gradient_bytes,
                 "envs": self.env_bytes + self.collect_bytes}
        return max(parts, key=parts.get)

    def line(self) -> str:
        """The one line `depthrl train` prints at start."""
        remat_note = ""
        if self.activation_bytes_remat < 0.8 * self.activation_bytes:
            remat_note = f" [{self.remat_flags()}: {mib(self.activation_bytes_remat)}]"
        seeds = f" × {self.num_seeds} seeds" if self.num_seeds > 1 else ""
        seeds += f", batch split over {self.num_devices} devices (memory per device)" if self.num_devices > 1 else ""
        return (f"estimate: {self.num_params / 1e6:.3g} M params, {self.flops_per_sgd_step / 1e9:.3g} GFLOP per "
                f"SGD step{seeds}, peak memory ≈ {mib(self.peak_bytes)} (activations "
                f"{mib(self.activation_bytes)}{remat_note}, params + Adam "
                f"{mib(self.agent_state_bytes)}, replay {mib(self.buffer_bytes)}, envs "
                f"{mib(self.env_bytes + self.collect_bytes)})")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(agent_state_bytes=self.agent_state_bytes, update_bytes=self.update_bytes,
                   peak_bytes=self.peak_bytes, dominant=self.dominant())
        return out


def mib(num_bytes: float) -> str:
    if num_bytes >= 2**30:
        return f"{num_bytes / 2**30:.2f} GiB"
    return f"{num_bytes / 2**20:.1f} MiB"


def tree_bytes(tree: Any) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _children(node: Any) -> Mapping[str, Any]:
    if isinstance(node, Mapping):
        return node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    return {}


def _head_out_dim(head: Mapping[str, Any]) -> int:
    """Outputs of a head: the summed output sizes of its Dense kernels (e.g. mean + log_std)."""
    total = 0
    for name, child in _children(head).items():
        if name == "kernel":
            total += child.shape[-1]
        else:
            total += _head_out_dim(child)
    return total


def find_networks(params: Any) -> list[Network]:
    """Every residual torso (a subtree with `stem` and `blocks` or `block_0`) in an agent's params, named by
    the top-level field that holds it."""
    found: list[Network] = []

    def visit(node: Any, top: str | None) -> None:
        children = _children(node)
        if "torso" in children and "stem" in _children(children["torso"]):
            found.append(_network(top or "network", children["torso"], _children(children.get("head", {}))))
            return
        if "stem" in children and ("blocks" in children or "block_0" in children):
            found.append(_network(top or "network", children, {}))
            return
        for name, child in children.items():
            visit(child, top if top is not None else name)

    visit(params, None)
    return found


def _network(name: str, torso: Mapping[str, Any], head: Mapping[str, Any]) -> Network:
    stem = torso["stem"]["kernel"]
    in_dim, width = stem.shape[-2], stem.shape[-1]
    ensemble = math.prod(stem.shape[:-2])
    if "blocks" in torso:
        layers_per_block = sum(1 for k in torso["blocks"] if k.startswith("dense_"))
        num_blocks = torso["blocks"]["dense_0"]["kernel"].shape[-3]
        layout = "scan"
    else:
        num_blocks = sum(1 for k in torso if k.startswith("block_"))
        layers_per_block = sum(1 for k in torso["block_0"] if k.startswith("dense_"))
        layout = "unrolled"
    out_dim = _head_out_dim(head) // max(ensemble, 1) if head else 0
    return Network(name=name, in_dim=in_dim, width=width, depth=num_blocks * layers_per_block,
                   num_blocks=num_blocks, layers_per_block=layers_per_block, out_dim=out_dim, layout=layout,
                   ensemble=ensemble)


def _activation_bytes(net: Network, batch: int, passes: int, remat: bool) -> tuple[int, int]:
    """(activations kept for `passes` backward passes, the largest recomputed block with remat or 0)."""
    floats = ACTIVATION_FLOATS[net.layout]
    per_layer = batch * net.width * FLOAT_BYTES * net.ensemble
    if remat and net.layout == "scan":
        return passes * (net.num_blocks + 1) * per_layer, floats * net.layers_per_block * per_layer
    return passes * floats * (net.depth + 1) * per_layer, 0


def estimate(args: Any, trainer: Any) -> Estimate:
    """The cost of training `trainer` as configured by `args` (a train command's Args). Traces shapes only."""
    cfg = trainer.config
    agent_cfg = trainer.agent.config
    batch = int(getattr(agent_cfg, "batch_size", 1))
    remat = bool(getattr(agent_cfg, "remat", False))
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    networks = find_networks(state.agent.params)
    passes = PASSES.get(args.kind, {})
    flops = 0.0
    acts, acts_remat, recompute, recompute_remat = 0, 0, 0, 0
    for net in networks:
        flop_multiple, backward_passes = passes.get(net.name, DEFAULT_PASS)
        flops += flop_multiple * net.flops_per_example * batch
        kept, block = _activation_bytes(net, batch, backward_passes, remat)
        acts, recompute = acts + kept, max(recompute, block)
        kept_r, block_r = _activation_bytes(dataclasses.replace(net, layout="scan"), batch, backward_passes, True)
        acts_remat, recompute_remat = acts_remat + kept_r, max(recompute_remat, block_r)
        if remat and net.layout == "scan":  # recomputing each block in the backward: one more forward
            flops += net.flops_per_example * batch * backward_passes
    repr_dim = getattr(agent_cfg, "repr_dim", 0) if args.kind == "crl" else 0
    logits_bytes = 4 * batch * batch * FLOAT_BYTES if repr_dim else 0  # logits, softmax, their gradients
    flops += 3 * 2 * batch * batch * repr_dim
    params_bytes = tree_bytes(state.agent.params)
    env_bytes = tree_bytes(getattr(state, "env_state", ()))
    # Everything else the train state holds: the replay buffer (or none for on-policy agents), keys, counters.
    buffer_bytes = tree_bytes(state) - tree_bytes(state.agent) - env_bytes
    spec = trainer.env.spec
    seeds = getattr(cfg, "num_seeds", 1)
    devices = getattr(cfg, "num_devices", 1)  # each holds 1/devices of the batch's activations and logits rows
    num_envs, num_eval_envs = getattr(cfg, "num_envs", 1), getattr(cfg, "num_eval_envs", 1)
    # One collected unroll (obs, action, reward, done, ...) and the acting / evaluation forward passes.
    collect = (getattr(cfg, "unroll_length", 1) * num_envs * (spec.obs_dim + spec.action_dim + 3)
               + 4 * (num_envs + num_eval_envs) * max((n.width for n in networks), default=1)
               + 2 * num_eval_envs * spec.episode_length) * FLOAT_BYTES
    return Estimate(
        num_params=sum(math.prod(x.shape) for x in jax.tree.leaves(state.agent.params)),
        flops_per_sgd_step=flops, sgd_steps_per_epoch=getattr(cfg, "sgd_steps_per_collect", 1), num_seeds=seeds,
        num_devices=devices,
        batch_size=batch, remat=remat, layouts=tuple(sorted({n.layout for n in networks})),
        params_bytes=seeds * params_bytes,
        optimizer_bytes=seeds * (tree_bytes(state.agent) - params_bytes),
        gradient_bytes=seeds * params_bytes,
        activation_bytes=seeds * (acts + recompute) // devices,
        activation_bytes_remat=seeds * (acts_remat + recompute_remat) // devices,
        logits_bytes=seeds * logits_bytes // devices,
        buffer_bytes=seeds * buffer_bytes,
        env_bytes=seeds * env_bytes,
        collect_bytes=seeds * collect,
    )


MEMORY_LIMIT_ENV = "DEPTHRL_MEMORY_LIMIT_BYTES"


def available_memory(num_devices: int = 1) -> tuple[int | None, str]:
    """(free bytes for a run on the first `num_devices` devices, where the number comes from); (None, why) if
    unknown. GPU/TPU: the smallest `bytes_limit − bytes_in_use` of those devices (`memory_stats()`); CPU: the
    kernel's MemAvailable (shared by every CPU device). The environment variable DEPTHRL_MEMORY_LIMIT_BYTES, if
    set, replaces the measurement (to test the check, or to keep a run under a budget)."""
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit is not None:
        try:
            value = int(limit)
        except ValueError:
            value = -1
        if value <= 0:
            raise ConfigError(MEMORY_LIMIT_ENV, limit, "must be a positive whole number of bytes")
        return value, f"the limit {MEMORY_LIMIT_ENV}={value}"
    devices = jax.devices()[:num_devices]
    stats = [device.memory_stats() for device in devices]
    if all(s and "bytes_limit" in s for s in stats):
        free = min(int(s["bytes_limit"] - s.get("bytes_in_use", 0)) for s in stats)
        device = devices[0]
        return free, f"{device.platform} {device.device_kind}" + (" (least free)" if len(devices) > 1 else "")
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "cpu RAM (MemAvailable)"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "cpu RAM (free pages)"
    except (ValueError, OSError, AttributeError):
        return None, "unknown (no memory stats on this platform)"


@dataclasses.dataclass(frozen=True)
class CompiledMemory:
    """Memory of a run from XLA's buffer assignment of its compiled programs (`memory_analysis()`), per device.

    The epoch program's arguments are the train state; the evaluation and diagnostics programs run while the
    state is alive, so they add their outputs and temporaries to it. Bytes are per device: with
    `--num-devices N` XLA reports one device's share (parameters and replay replicated, the batch split).
    """

    state_bytes: int  # the train state (the epoch's arguments)
    epoch_bytes: int  # epoch: arguments + outputs + temporaries − aliased (the donated state is reused)
    eval_bytes: int  # evaluation: state + its outputs and temporaries
    diagnostics_bytes: int  # diagnostics: state + its outputs and temporaries
    buffer_bytes: int  # the replay buffer inside the state (per device)
    snapshot_bytes: int  # host copy a checkpoint takes: on CPU it shares RAM with the "device"
    num_devices: int
    platform: str

    @property
    def peak_bytes(self) -> int:
        """Peak of one device while training."""
        return max(self.epoch_bytes, self.eval_bytes, self.diagnostics_bytes)

    @property
    def needed_bytes(self) -> int:
        """What must be free where `available_memory` measures: per device on an accelerator; on CPU every device
        and the checkpoint's host copy share the RAM."""
        if self.platform == "cpu":
            return self.peak_bytes * self.num_devices + self.snapshot_bytes
        return self.peak_bytes

    def line(self, est: Estimate | None = None) -> str:
        """The line `depthrl train` prints after compiling."""
        where = " per device" if self.num_devices > 1 else ""
        snapshot = f" + checkpoint copy {mib(self.snapshot_bytes)}" if self.platform == "cpu" and self.snapshot_bytes \
            else ""
        ratio = f"; the estimate ({mib(est.peak_bytes)}) is {est.peak_bytes / self.peak_bytes:.2f}×" if est else ""
        return (f"memory (compiled): peak {mib(self.peak_bytes)}{where} (train state {mib(self.state_bytes)}, of it "
                f"replay {mib(self.buffer_bytes)}; epoch temporaries {mib(self.epoch_bytes - self.state_bytes)})"
                f"{snapshot}{ratio}")

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "peak_bytes": self.peak_bytes, "needed_bytes": self.needed_bytes}


def _program_bytes(compiled: Any) -> tuple[int, int, int, int] | None:
    """(arguments, outputs, temporaries, aliased) bytes of a compiled program; None where XLA does not say."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # a backend without buffer-assignment statistics
        return None
    if m is None:
        return None
    return (int(m.argument_size_in_bytes), int(m.output_size_in_bytes),
            int(m.temp_size_in_bytes) + int(getattr(m, "generated_code_size_in_bytes", 0)),
            int(m.alias_size_in_bytes))


def compiled_memory(epoch: Any, evaluate: Any, diagnostics: Any, buffer_bytes: int, snapshot_bytes: int,
                    num_devices: int) -> CompiledMemory | None:
    """`CompiledMemory` of a run's compiled epoch, evaluation and diagnostics programs; None if unavailable."""
    programs = [_program_bytes(c) for c in (epoch, evaluate, diagnostics)]
    if any(p is None for p in programs):
        return None
    (state, out, temp, alias), (_, eval_out, eval_temp, _), (_, diag_out, diag_temp, _) = programs
    return CompiledMemory(state_bytes=state, epoch_bytes=state + out + temp - alias,
                          eval_bytes=state + eval_out + eval_temp, diagnostics_bytes=state + diag_out + diag_temp,
                          buffer_bytes=buffer_bytes,  # replicated: whole on every device
                          snapshot_bytes=snapshot_bytes, num_devices=num_devices, platform=jax.devices()[0].platform)


def check_compiled_fits(memory: CompiledMemory, available: int | None, where: str, hints: Mapping[str, Any],
                        est: Estimate | None = None) -> None:
    """Raise ConfigError when the compiled run needs more than `available` bytes, naming what to change.
    hints: the run's current values of batch_size, remat, num_envs, buffer_size, num_seeds, num_devices."""
    if available is None or memory.needed_bytes <= available:
        return
    remat = est.remat_flags() if est is not None else "--remat --network-layout scan"
    if est is not None and est.activation_bytes_remat < 0.8 * est.activation_bytes:
        remat += f" (estimated activations {mib(est.activation_bytes)} → {mib(est.activation_bytes_remat)})"
    elif hints.get("remat"):
        remat = ""  # already on
    options = [remat, f"a smaller --batch-size (now {hints.get('batch_size')})",
               f"fewer --num-envs (now {hints.get('num_envs')})",
               f"a smaller --buffer-size (now {hints.get('buffer_size')}: replay {mib(memory.buffer_bytes)})"]
    if hints.get("num_seeds", 1) > 1:
        options.append(f"fewer --num-seeds (now {hints['num_seeds']})")
    if memory.platform != "cpu":
        options.append("more --num-devices (splits the batch)")
    temporaries = memory.peak_bytes - memory.state_bytes
    flag, value = (("--batch-size", hints.get("batch_size")) if temporaries >= memory.state_bytes
                   else ("--buffer-size", hints.get("buffer_size")))
    per_device = " per device" if memory.num_devices > 1 and memory.platform != "cpu" else ""
    snapshot = (f", with the checkpoint's host copy {mib(memory.snapshot_bytes)}"
                if memory.platform == "cpu" and memory.snapshot_bytes else "")
    raise ConfigError(flag, value if value is not None else "(as given)",
                      f"the compiled training program needs {mib(memory.needed_bytes)}{per_device} (train state "
                      f"{mib(memory.state_bytes)}, of it replay {mib(memory.buffer_bytes)}; temporaries "
                      f"{mib(temporaries)}{snapshot}) but {where} has {mib(available)} free; to fit, try "
                      f"{', '.join(o for o in options if o)}; --no-memory-check runs it anyway")


def check_fits(est: Estimate, available: int | None, where: str) -> None:
    """Raise ConfigError (naming the flag to change) when the estimated peak exceeds `available` bytes."""
    if available is None or est.peak_bytes <= available:
        return
    remat = (f"{est.remat_flags()} (activations {mib(est.activation_bytes_remat)}), "
             if est.activation_bytes_remat < 0.8 * est.activation_bytes else "")
    suggestions = {
        "activations": ("--batch-size", est.batch_size, remat + "a smaller --batch-size"),
        "buffer": ("--buffer-size", None, "a smaller --buffer-size or fewer --num-envs"),
        "parameters": ("--width", None, "a smaller --width or --depth"),
        "envs": ("--num-envs", None, "fewer --num-envs or --num-eval-envs"),
    }
    flag, value, hint = suggestions[est.dominant()]
    seeds = f", or fewer --num-seeds (now {est.num_seeds})" if est.num_seeds > 1 else ""
    raise ConfigError(flag, value if value is not None else "(as given)",
                      f"the run needs ≈ {mib(est.peak_bytes)} but {where} has {mib(available)} free "
                      f"(largest part: {est.dominant()}); try {hint}{seeds}; --no-memory-check runs it anyway")


def table(est: Estimate) -> list[tuple[str, str]]:
    """(what, how much) rows of the breakdown `depthrl estimate` prints."""
    rows = [("parameters (per seed)", f"{est.num_params:,}"),
            ("FLOPs per SGD step (per seed)", f"{est.flops_per_sgd_step / 1e9:.3f} GFLOP"),
            ("FLOPs per epoch (all seeds)",
             f"{est.flops_per_sgd_step * est.sgd_steps_per_epoch * est.num_seeds / 1e9:.3f} GFLOP"),
            ("network layouts", ", ".join(est.layouts)),
            ("activations kept for backward", mib(est.activation_bytes) + (" (remat)" if est.remat else "")),
            (f"  with {est.remat_flags()}", mib(est.activation_bytes_remat)),
            ("InfoNCE logits and gradients", mib(est.logits_bytes)),
            ("params", mib(est.params_bytes)),
            ("optimiser state (Adam)", mib(est.optimizer_bytes)),
            ("gradients", mib(est.gradient_bytes)),
            ("one SGD step (peak)", mib(est.update_bytes)),
            ("replay buffer", mib(est.buffer_bytes)),
            ("env states + collection", mib(est.env_bytes + est.collect_bytes)),
            ("peak of the run", mib(est.peak_bytes))]
    return rows


def estimate_json(est: Estimate, available: int | None, where: str) -> str:
    return json.dumps({**est.to_json(), "available_bytes": available, "available_source": where,
                       "fits": available is None or est.peak_bytes <= available})
