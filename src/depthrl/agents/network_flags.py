"""The residual-torso flags every agent exposes (`--depth/--width/...`; Wang et al. 2025, Fig. 1).

An agent config subclasses `NetworkFlags` (one network per role, all of one depth) or
`ActorCriticNetworkFlags` (adds `--actor-depth/--critic-depth`), so its command shows the flags without
prefixes and its config.json holds them as top-level keys. `network(depth)` builds the `NetworkConfig` of
one network; `validate_network()` fails at start on a bad flag, naming it.
"""

from __future__ import annotations

import dataclasses

from depthrl.errors import check_choice, check_positive
from depthrl.networks.torso import LAYOUTS, MATMUL_PRECISIONS, NetworkConfig, check_depth


@dataclasses.dataclass(frozen=True)
class NetworkFlags:
    """Residual torso flags, the same for every network of the agent."""

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
        """--matmul-precision as a jax.lax.Precision name (None: JAX's default)."""
        return MATMUL_PRECISIONS[self.matmul_precision]

    def network(self, depth: int | None = None) -> NetworkConfig:
        """The torso of one network: these flags at `depth` (None: --depth)."""
        return NetworkConfig(depth=self.depth if depth is None else depth, width=self.width,
                             layers_per_block=self.layers_per_block, norm=self.norm, activation=self.activation,
                             skip=self.skip, layout=self.network_layout, remat=self.remat,
                             matmul_precision=self.matmul_precision)

    def validate_network(self) -> None:
        check_positive("--layers-per-block", self.layers_per_block)
        check_depth("--depth", self.depth, self.layers_per_block)
        check_choice("--network-layout", self.network_layout, LAYOUTS)
        self.network().validate(depth_flag="--depth")


@dataclasses.dataclass(frozen=True)
class ActorCriticNetworkFlags(NetworkFlags):
    """Network flags plus a depth of its own for the actor and for the critic (agents with both).

    An agent redeclares `critic_depth` only to say in `--help` what its critic is.
    """

    actor_depth: int | None = None
    """Actor depth; overrides --depth for the policy."""
    critic_depth: int | None = None
    """Critic depth; overrides --depth for the critic."""

    @property
    def resolved_actor_depth(self) -> int:
        return self.depth if self.actor_depth is None else self.actor_depth

    @property
    def resolved_critic_depth(self) -> int:
        return self.depth if self.critic_depth is None else self.critic_depth

    def validate_network(self) -> None:
        super().validate_network()
        if self.actor_depth is not None:
            check_depth("--actor-depth", self.actor_depth, self.layers_per_block)
        if self.critic_depth is not None:
            check_depth("--critic-depth", self.critic_depth, self.layers_per_block)
