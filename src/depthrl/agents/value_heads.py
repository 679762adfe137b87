"""How every agent with a value critic (DQN, PPO, SAC, TD3) trains it, declared once: the critic-loss and
value-support flags (regression or classification, Farebrother et al. 2024), their validation, the
`ValueSupport` they give, and the value network that outputs either.

`ValueFlags` adds `--critic-loss {mse,hl-gauss,two-hot,c51}` and the categorical support to the residual-torso
flags (`depthrl.networks.torso.NetworkFlags`). An agent config subclasses `ValueFlags` so its command shows them
all without prefixes; an agent whose support has a natural default (SAC, TD3: the returns of rewards in
[0, 1]) redeclares `--v-min/--v-max` as optional and overrides `value_range`.

`value_network` builds the `networks.heads.ValueNetwork` of the flags: outputs [..., num_outputs] (scalars,
e.g. one Q per action) or [..., num_outputs, num_bins] (logits of a categorical value per output); `read_value`
turns either into scalars, `scalar_target_loss` scores them against scalar TD targets.
"""

from __future__ import annotations

import dataclasses

import jax

from depthrl.errors import ConfigError, check_choice, check_defaults
from depthrl.losses import value_dist as vd
from depthrl.networks.heads import ValueNetwork
from depthrl.networks.torso import NetworkFlags


@dataclasses.dataclass(frozen=True)
class ValueFlags(NetworkFlags):
    """Network flags plus how the critic is trained: regression (MSE) or classification over a support."""

    critic_loss: str = "hl-gauss"
    """Critic loss: mse (regression), hl-gauss, two-hot or c51 (classification; Farebrother et al. 2024)."""
    num_bins: int = 101
    """Bins of the categorical value support (hl-gauss, two-hot, c51)."""
    v_min: float = -100.0
    """Lowest value of the support: about the lowest discounted return of the env (mse: range of a metric)."""
    v_max: float = 100.0
    """Highest value of the support: about the highest discounted return of the env (mse: range of a metric)."""
    value_transform: str = "none"
    """Bins equal-width in value space (none) or in symlog(value) (symlog: wide value ranges)."""
    sigma_ratio: float = 0.75
    """HL-Gauss σ as a fraction of the bin width (the paper's default 0.75)."""

    @property
    def categorical(self) -> bool:
        return self.critic_loss != "mse"

    def value_range(self) -> tuple[float, float]:
        """(v_min, v_max) of the support: --v-min and --v-max (an agent that lets them be None fills them in)."""
        return self.v_min, self.v_max

    def support(self) -> vd.ValueSupport:
        """The value support: the bins of a classification critic; with mse only the range of the
        `critic/out_of_support` metric (the fraction of targets outside [v_min, v_max]). Raises ConfigError
        naming the flag at fault (`ValueSupport` checks finite bounds, v_min < v_max, num_bins >= 2)."""
        v_min, v_max = self.value_range()
        if self.v_max is None and not v_min < v_max:  # only --v-min was given: it is the one at fault
            raise ConfigError("--v-min", v_min, f"the support needs --v-min < --v-max (got [{v_min}, {v_max}])")
        return vd.ValueSupport(v_min=v_min, v_max=v_max, num_bins=self.num_bins, transform=self.value_transform)

    def validate_value(self, allowed: tuple[str, ...] = vd.CRITIC_LOSSES) -> None:
        """Raise ConfigError on a bad critic-loss or support flag, or one that would do nothing."""
        check_choice("--critic-loss", self.critic_loss, allowed)
        check_choice("--value-transform", self.value_transform, vd.VALUE_TRANSFORMS)
        if not self.categorical:  # a flag that would do nothing is an error, not silently ignored
            check_defaults(self, (("--num-bins", "num_bins"), ("--value-transform", "value_transform")),
                           f"only with a classification --critic-loss ({', '.join(x for x in allowed if x != 'mse')})")
        if self.critic_loss != "hl-gauss":
            check_defaults(self, (("--sigma-ratio", "sigma_ratio"),), "only with --critic-loss hl-gauss")
        if not self.sigma_ratio > 0:
            raise ConfigError("--sigma-ratio", self.sigma_ratio, "must be > 0 (the paper uses 0.75)")
        self.support()


def value_network(flags: ValueFlags, num_outputs: int | None, depth: int | None = None) -> ValueNetwork:
    """The value network of these flags: scalars (mse) or logits over --num-bins; see `ValueNetwork`."""
    return ValueNetwork(flags.network(depth), num_outputs, flags.num_bins if flags.categorical else 0)


def read_value(output: jax.Array, flags: ValueFlags) -> jax.Array:
    """Scalar values from a ValueNetwork's output: [...] (mse: as is) or [..., B] logits -> [...]."""
    return vd.expected_value(output, flags.support()) if flags.categorical else output


def scalar_target_loss(prediction: jax.Array, target: jax.Array, flags: ValueFlags) -> jax.Array:
    """Per-example loss against scalar targets: prediction [...] (mse) or [..., B] logits; target [...]."""
    return vd.value_loss(flags.critic_loss, prediction, target, flags.support(), flags.sigma_ratio)

