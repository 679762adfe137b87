"""The flags agent configs share, declared once (network flags: Wang et al. 2025, Fig. 1).

An agent config subclasses `NetworkFlags` (declared once in `depthrl.networks.torso`: one network per role,
all of one depth), `ActorCriticNetworkFlags` (adds `--actor-depth/--critic-depth`) or `ActorCriticFlags` (adds
the learning rates, discount and batch size of the off-policy actor-critics: CRL, SAC, TD3), so its command
shows the flags without prefixes and its config.json holds them as top-level keys. `network(depth)` builds the
`NetworkConfig` of one network; `validate_network()` and `validate_optimisation()` fail at start on a bad
flag, naming it.
"""

from __future__ import annotations

import dataclasses

from depthrl.errors import check_open_unit, check_positive
from depthrl.networks.torso import NetworkFlags, check_depth

__all__ = ["ActorCriticFlags", "ActorCriticNetworkFlags", "NetworkFlags"]


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

    def validate_network(self, depth_flag: str = "--depth") -> None:
        super().validate_network(depth_flag)
        if self.actor_depth is not None:
            check_depth("--actor-depth", self.actor_depth, self.layers_per_block)
        if self.critic_depth is not None:
            check_depth("--critic-depth", self.critic_depth, self.layers_per_block)


@dataclasses.dataclass(frozen=True)
class ActorCriticFlags(ActorCriticNetworkFlags):
    """Network flags plus the optimisation flags of the off-policy actor-critics (CRL, SAC, TD3)."""

    critic_lr: float = 3e-4
    """Adam learning rate of the critic (SAC, TD3: both twin critics)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    discount: float = 0.99
    """γ: the TD target's discount (SAC, TD3) and the future goal's geometric offset (horizon ≈ 1 / (1 − γ))."""
    batch_size: int = 256
    """Transitions per SGD step (CRL: also the negatives per positive of InfoNCE)."""

    def validate_optimisation(self) -> None:
        for flag, lr in (("--critic-lr", self.critic_lr), ("--actor-lr", self.actor_lr)):
            check_positive(flag, lr)
        check_open_unit("--discount", self.discount)
        check_positive("--batch-size", self.batch_size)
