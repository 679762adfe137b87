"""The residual torso of "1000 Layer Networks for Self-Supervised RL" (Wang et al., 2025), Sec. 3 / Fig. 1.

    x -> Dense(width) -> norm -> act           (stem)
      -> num_blocks x [ h = h + block(h) ]      (block = layers_per_block x (Dense -> norm -> act))
      -> [..., width]                           (no output Dense: heads add it)

Depth counts the Dense layers inside residual blocks, as the paper does: depth 4 is one block.

Two layouts (``--network-layout``) compute the same function from the same weights:

* ``unrolled``: a Python loop over per-block submodules. Params (torso subtree)::

      {"stem": {kernel, bias}, "stem_norm": {...},
       "block_0": {"dense_0": {kernel, bias}, "norm_0": {...}, ..., "dense_{L-1}", "norm_{L-1}"},
       "block_1": {...}, ...}

* ``scan``: one block definition run by ``nn.scan``; every block leaf is stacked on a leading axis of
  size ``num_blocks``, so trace and compile time do not grow with depth::

      {"stem": ..., "stem_norm": ..., "blocks": {"dense_0": {kernel: [num_blocks, width, width], ...}, ...}}

``stack_block_params`` / ``unstack_block_params`` convert between the two. Norm params are absent with
``norm="none"``. Each block sows the mean per-example L2 norm of its output (the residual stream after
the skip) into the ``intermediates`` collection under ``out_norm``; ``diagnostics.block_activation_norms``
reads it for either layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from depthrl.errors import ConfigError, check_choice, check_positive

NORMS = ("layernorm", "rmsnorm", "none")
ACTIVATIONS = ("swish", "relu", "gelu", "tanh")
LAYOUTS = ("auto", "scan", "unrolled")
DTYPES = ("float32", "bfloat16")
# --matmul-precision -> the `precision` of every Dense (jax.lax.Precision names). default: JAX's default for
# float32 matmuls (TF32 on A100/H100/H200 GPUs, one bfloat16 pass on TPUs, float32 on CPUs), or what
# JAX_DEFAULT_MATMUL_PRECISION / jax.default_matmul_precision set; tf32: Precision.HIGH (TF32 on GPUs, 3
# bfloat16 passes on TPUs); highest: Precision.HIGHEST (float32 on GPUs, 6 passes on TPUs). CPUs ignore it.
MATMUL_PRECISIONS: dict[str, str | None] = {"default": None, "tf32": "tensorfloat32", "highest": "highest"}

# network_layout="auto" unrolls up to this depth and scans above it. Measured on the 2-core CPU dev machine
# (docs/benchmarks.md § 5): unrolled steps are ~10% faster than plain scan, but its compile time grows
# with depth (2× scan's at 16, 37× at 256, > 300 s at 1024) while scan's stays ~1.4 s from 4 to 1024.
AUTO_UNROLL_MAX_DEPTH = 16

# Paper default (its `lecun_uniform`): variance scaling 1/3, fan-in, uniform; zero biases.
kernel_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
bias_init = nn.initializers.zeros_init()

_ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "swish": nn.swish,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
}


def check_depth(flag: str, depth: int, layers_per_block: int) -> None:
    """Raise ConfigError unless ``depth`` is a positive multiple of ``layers_per_block``.

    Never truncate silently (the paper code turns depth 6 into 4 layers); name the nearest valid depths.
    """
    if isinstance(depth, int) and depth > 0 and depth % layers_per_block == 0:
        return
    below = (depth // layers_per_block) * layers_per_block if isinstance(depth, int) else 0
    nearest = f"{below} or {below + layers_per_block}" if below > 0 else f"{layers_per_block}"
    raise ConfigError(
        flag,
        depth,
        f"depth {depth}: must be a positive multiple of --layers-per-block={layers_per_block}; "
        f"nearest valid: {nearest}",
    )


@dataclasses.dataclass(frozen=True)
class NetworkFlags:
    """The residual torso's flags (Wang et al. 2025, Fig. 1), declared once: `NetworkConfig`, every agent config
    and every benchmark subclass this class, so each command shows them under the same names
    (`--depth`, `--network-layout`, ...) and a config.json holds them as top-level keys."""

    depth: int = 4
    """Dense layers inside the residual blocks of every network (a multiple of --layers-per-block)."""
    width: int = 256
    """Units per Dense layer."""
    layers_per_block: int = 4
    """Dense layers per residual block (the paper uses 4)."""
    norm: str = "layernorm"
    """Normalisation after each Dense: layernorm, rmsnorm or none."""
    activation: str = "swish"
    """Activation: swish, relu, gelu or tanh."""
    skip: bool = True
    """Residual skip connection around each block."""
    network_layout: str = "auto"
    """How blocks are compiled: unrolled (Python loop), scan (flat compile time) or auto (by depth)."""
    remat: bool = False
    """Recompute block activations in the backward pass (less memory, ~1/3 more compute)."""
    matmul_precision: str = "default"
    """Precision of float32 matmuls (every network, CRL's energy): default (JAX's: TF32 on A100/H100/H200 GPUs,
    float32 on CPUs), tf32, or highest (full float32 on GPUs: slower). CPUs ignore it."""

    @property
    def precision(self) -> str | None:
        """--matmul-precision as a jax.lax.Precision name (None: JAX's default), the `precision` of every Dense."""
        return MATMUL_PRECISIONS[self.matmul_precision]

    def network(self, depth: int | None = None) -> NetworkConfig:
        """The torso of one network: these flags (and dtypes, where this object has them) at `depth` (None:
        --depth)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(NetworkConfig) if hasattr(self, f.name)}
        return NetworkConfig(**{**fields, "depth": self.depth if depth is None else depth})

    def validate_network(self, depth_flag: str = "--depth") -> None:
        """Raise ConfigError naming the flag of the first invalid field."""
        check_positive("--layers-per-block", self.layers_per_block)
        check_depth(depth_flag, self.depth, self.layers_per_block)
        check_positive("--width", self.width)
        check_choice("--norm", self.norm, NORMS)
        check_choice("--activation", self.activation, ACTIVATIONS)
        check_choice("--network-layout", self.network_layout, LAYOUTS)
        check_choice("--matmul-precision", self.matmul_precision, tuple(MATMUL_PRECISIONS))


@dataclasses.dataclass(frozen=True)
class NetworkConfig(NetworkFlags):
    """Architecture of one residual torso (the paper's Fig. 1): the torso flags plus compute and storage dtypes."""

    dtype: str = "float32"
    """Compute dtype of the torso: float32 | bfloat16."""
    param_dtype: str = "float32"
    """Storage dtype of the parameters: float32 | bfloat16."""

    @property
    def num_blocks(self) -> int:
        return self.depth // self.layers_per_block

    def resolved_layout(self) -> str:
        """The layout actually built: ``auto`` resolved by depth."""
        if self.network_layout != "auto":
            return self.network_layout
        return "unrolled" if self.depth <= AUTO_UNROLL_MAX_DEPTH else "scan"

    def validate(self, depth_flag: str = "--depth") -> NetworkConfig:
        """Raise ConfigError naming the flag of the first invalid field; return self for chaining."""
        self.validate_network(depth_flag)
        check_choice("--dtype", self.dtype, DTYPES)
        check_choice("--param-dtype", self.param_dtype, DTYPES)
        return self


def _norm(config: NetworkConfig, name: str) -> Callable[[jax.Array], jax.Array]:
    kwargs = dict(dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype), name=name)
    if config.norm == "layernorm":
        return nn.LayerNorm(**kwargs)
    if config.norm == "rmsnorm":
        return nn.RMSNorm(**kwargs)
    return lambda h: h


def _dense(config: NetworkConfig, name: str) -> nn.Dense:
    return nn.Dense(
        config.width,
        dtype=jnp.dtype(config.dtype),
        param_dtype=jnp.dtype(config.param_dtype),
        kernel_init=kernel_init,
        bias_init=bias_init,
        precision=config.precision,
        name=name,
    )


class ResidualBlock(nn.Module):
    """layers_per_block x (Dense -> norm -> act), with a skip around the whole block.

    Signature ``(h, _) -> (h, None)`` so that ``nn.scan`` can run it directly (no wrapper level in the tree).
    """

    config: NetworkConfig

    @nn.compact
    def __call__(self, h: jax.Array, _: None = None) -> tuple[jax.Array, None]:
        config = self.config
        act = _ACTIVATION_FNS[config.activation]
        out = h
        for j in range(config.layers_per_block):
            out = act(_norm(config, f"norm_{j}")(_dense(config, f"dense_{j}")(out)))
        out = h + out if config.skip else out
        # Mean per-example L2 norm of the residual stream: the per-block diagnostic (float32 for bf16 nets).
        self.sow("intermediates", "out_norm", jnp.mean(jnp.linalg.norm(out.astype(jnp.float32), axis=-1)))
        return out, None


class ResidualTorso(nn.Module):
    """``x: [..., in_dim] -> [..., width]``: stem, then ``depth / layers_per_block`` residual blocks."""

    config: NetworkConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        config = self.config.validate()  # depth 6 must fail here, never build 4 layers
        act = _ACTIVATION_FNS[config.activation]
        h = act(_norm(config, "stem_norm")(_dense(config, "stem")(x)))
        if config.resolved_layout() == "scan":
            # prevent_cse=False: inside scan the CSE barrier is unnecessary and slows the loop (flax docs).
            # A scanned block is always rematerialised; what it keeps for the backward pass sets speed and memory.
            # Without --remat it keeps its Dense outputs and recomputes only norms and activations (no matmul runs
            # twice); --remat keeps only the block input (least memory, one more forward). Keeping every
            # intermediate instead stacks ~7 [batch, width] arrays per layer through the loop: 2.6x slower
            # forward + backward at depth 16 and 1.8x at 32, with 2x the memory (docs/benchmarks.md).
            policy = None if config.remat else jax.checkpoint_policies.dots_saveable
            block_cls = nn.remat(ResidualBlock, prevent_cse=False, policy=policy)
            blocks = nn.scan(
                block_cls,
                variable_axes={"params": 0, "intermediates": 0},
                split_rngs={"params": True},
                length=config.num_blocks,
            )
            h, _ = blocks(config, name="blocks")(h, None)
        else:
            block_cls = nn.remat(ResidualBlock) if config.remat else ResidualBlock
            for i in range(config.num_blocks):
                h, _ = block_cls(config, name=f"block_{i}")(h)
        return h


Params = Mapping[str, Any]


def stack_block_params(unrolled_params: Params) -> dict[str, Any]:
    """Torso params of the unrolled layout -> the scan layout (``block_i`` stacked into ``blocks``)."""
    unrolled_params = dict(unrolled_params)
    num_blocks = sum(1 for k in unrolled_params if k.startswith("block_"))
    blocks = [unrolled_params.pop(f"block_{i}") for i in range(num_blocks)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *blocks)
    return {**unrolled_params, "blocks": stacked}


def unstack_block_params(scan_params: Params) -> dict[str, Any]:
    """Torso params of the scan layout -> the unrolled layout (``blocks`` split into ``block_i``)."""
    scan_params = dict(scan_params)
    stacked = scan_params.pop("blocks")
    num_blocks = jax.tree.leaves(stacked)[0].shape[0]
    per_block = {f"block_{i}": jax.tree.map(lambda leaf, i=i: leaf[i], stacked) for i in range(num_blocks)}
    return {**scan_params, **per_block}
