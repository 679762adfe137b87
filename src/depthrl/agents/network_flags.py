"""The network flags of agent configs (Wang et al. 2025, Fig. 1).

An agent config subclasses `NetworkFlags` (declared once in `depthrl.networks.torso`: one network per role,
all of one depth) or `ActorCriticNetworkFlags` (adds `--actor-depth/--critic-depth`), so its command shows the
flags without prefixes and its config.json holds them as top-level keys. `network(depth)` builds the
`NetworkConfig` of one network; `validate_network()` fails at start on a bad flag, naming it.
"""

from __future__ import annotations

import dataclasses

from depthrl.networks.torso import NetworkFlags, check_depth

__all__ = ["ActorCriticNetworkFlags", "NetworkFlags"]


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
