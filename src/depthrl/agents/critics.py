"""What SAC and TD3 share: their flags, twin critics (regression or classification), TD targets with
hindsight rewards, Polyak-averaged target networks, and network diagnostics.

Twin critics (Fujimoto et al. 2018, "clipped double Q"): two critics with independent weights, stored
as one params tree with a leading axis of size 2 and applied with `jax.vmap`, so both run in one
program at any depth. Each is a residual torso on concat(state, action, goal) plus a head:

    --critic-loss mse                     ScalarHead: Q = the output, loss 0.5·(Q − y)²
    --critic-loss hl-gauss | two-hot      CategoricalValueHead: num_bins logits, Q = E[softmax] over the
                                          bin centres; cross-entropy against the histogram of y
    --critic-loss c51                     the same head; cross-entropy against the target critic's
                                          distribution moved by r + γ·z and projected onto the bins

(Farebrother et al. 2024, "Stop Regressing", Sec. 3; losses in `depthrl.losses.value_dist`.)

TD target: y = r + d·(min_i Q̄_i(s', a') + bonus), with Q̄ the target critics, a' from the (target)
policy, d = γ·(1 − terminal) and bonus = −α·log π(a'|s') for SAC, 0 for TD3. For C51 the twin whose
expected value is the smaller one (per example) supplies the distribution, and the bonus moves into
the reward: r + d·(z + bonus) = (r + d·bonus) + d·z.

Rewards (HER): the batch from `Trainer.sample_batch` relabels the goal to a future state of the same
episode; the reward is 1 when next_state's goal coordinates lie within `spec.success_radius` of the goal
(strictly, as the maze's `at_goal`), else 0. The mazes never terminate, so d = γ always. A batch may
instead carry its own `reward` [B] and `terminal` [B] (probe envs, hand-made batches).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from depthrl.agents.network_flags import ActorCriticFlags
from depthrl.agents.value_heads import ValueFlags
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError
from depthrl.losses import value_dist as vd
from depthrl.networks.diagnostics import torso_diagnostics
from depthrl.networks.heads import ValueNetwork
from depthrl.networks.torso import NetworkConfig

NUM_CRITICS = 2  # twin critics: the TD target takes the minimum of the two target critics


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(ActorCriticFlags, ValueFlags):
    """Flags shared by SAC and TD3: networks, critic loss and value support (`ValueFlags`), optimisation."""

    critic_depth: int | None = None
    """Critic depth (both twin critics); overrides --depth for the critic."""
    critic_loss: str = "mse"
    """Critic loss: mse (regression), hl-gauss, two-hot or c51 (classification over --num-bins bins)."""
    v_min: float | None = None
    """Lowest value of the critic's support (None: 0, the lowest return of rewards in [0, 1])."""
    v_max: float | None = None
    """Highest value of the critic's support (None: 1 / (1 − discount), the highest return)."""
    tau: float = 0.005
    """Polyak rate of the target networks: target ← (1 − tau)·target + tau·online."""

    def value_range(self) -> tuple[float, float]:
        """--v-min/--v-max; None: [0, 1/(1 − γ)], which covers every return of rewards in [0, 1]."""
        return (0.0 if self.v_min is None else self.v_min,
                1.0 / (1.0 - self.discount) if self.v_max is None else self.v_max)

    def validate(self) -> None:
        self.validate_network()
        self.validate_optimisation()
        self.validate_value()
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError("--tau", self.tau, "must lie in (0, 1] (1 copies the online networks)")

    def twin_critic(self) -> TwinCritic:
        return TwinCritic(network=self.network(self.resolved_critic_depth), loss=self.critic_loss,
                          support=self.support(), sigma_ratio=self.sigma_ratio)


@dataclasses.dataclass(frozen=True)
class TwinCritic:
    """Two critics with one params tree (leading axis NUM_CRITICS) and the TD loss of --critic-loss. Hashable."""

    network: NetworkConfig
    loss: str
    support: vd.ValueSupport
    sigma_ratio: float = 0.75

    @property
    def net(self) -> ValueNetwork:
        """One critic: ``[..., S + A + G] -> [...]`` (mse) or ``[..., num_bins]`` logits."""
        return ValueNetwork(self.network, None, 0 if self.loss == "mse" else self.support.num_bins)

    def init(self, key: jax.Array, in_dim: int) -> Any:
        example = jnp.zeros((1, in_dim), jnp.float32)
        return jax.vmap(lambda k: self.net.init(k, example))(jax.random.split(key, NUM_CRITICS))

    def outputs(self, params: Any, sa_goal: jax.Array) -> jax.Array:
        """concat(state, action, goal) [B, D] -> [2, B] Q values (mse) or [2, B, num_bins] logits."""
        return jax.vmap(self.net.apply, in_axes=(0, None))(params, sa_goal)

    def values(self, outputs: jax.Array) -> jax.Array:
        """`outputs` -> Q values [2, B] (the expectation over the bins for a classification critic)."""
        return outputs if self.loss == "mse" else vd.expected_value(outputs, self.support)

    def q(self, params: Any, sa_goal: jax.Array) -> jax.Array:
        """Q values of both critics: [B, D] -> [2, B]."""
        return self.values(self.outputs(params, sa_goal))

    def td_loss(self, params: Any, sa_goal: jax.Array, target_outputs: jax.Array, reward: jax.Array,
                discount: jax.Array, bonus: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Mean over the batch, summed over the twins, of the critic loss against the TD target.

        sa_goal [B, D]; target_outputs [2, B(, num_bins)]: the target critics at (s', a', g);
        reward, discount (γ·(1 − terminal)), bonus (−α log π(a'|s') or 0): [B].
        """
        target_outputs = jax.lax.stop_gradient(target_outputs)
        target_q = self.values(target_outputs)  # [2, B]
        smaller = jnp.argmin(target_q, axis=0)  # [B]: which twin gives min_i Q̄_i
        next_value = jnp.min(target_q, axis=0)
        y = reward + discount * (next_value + bonus)
        outputs = self.outputs(params, sa_goal)
        if self.loss == "c51":
            next_logits = jnp.take_along_axis(target_outputs, smaller[None, :, None], axis=0)[0]
            target_probs = vd.c51_project(jax.nn.softmax(next_logits, -1), reward + discount * bonus, discount,
                                          self.support)
            per_example = vd.cross_entropy(outputs, target_probs[None])
        else:
            per_example = vd.value_loss(self.loss, outputs, jnp.broadcast_to(y, outputs.shape[:2]), self.support,
                                        self.sigma_ratio)
        q = self.values(outputs)
        aux = {"critic/q": jnp.mean(q), "critic/td_target": jnp.mean(y),
               "critic/td_error": jnp.mean(jnp.abs(q - y[None])),
               "critic/out_of_support": vd.out_of_support_fraction(y, self.support, self.loss),
               "critic/reward": jnp.mean(reward)}
        return jnp.sum(jnp.mean(per_example, axis=-1)), aux


def goal_reward(next_state: jax.Array, goal: jax.Array, spec: EnvSpec) -> jax.Array:
    """HER reward: 1 where next_state's goal coordinates are strictly within spec.success_radius of goal.

    next_state [B, S], goal [B, G] -> [B] float32.
    """
    reached = next_state[:, jnp.asarray(spec.goal_indices, jnp.int32)] - goal
    return (jnp.sqrt(jnp.sum(jnp.square(reached), -1)) < spec.success_radius).astype(jnp.float32)


def reward_and_discount(batch: dict[str, jax.Array], spec: EnvSpec, gamma: float) -> tuple[jax.Array, jax.Array]:
    """(reward [B], γ·(1 − terminal) [B]) of a batch: its own `reward`/`terminal` when given, else the HER
    goal-reaching reward and γ (the mazes never terminate: bootstrap through every time limit)."""
    if "reward" in batch:
        reward = batch["reward"].astype(jnp.float32)
    elif spec.goal_dim == 0:
        raise ValueError(f"{spec.name} has no goal: the batch must carry its own 'reward'")
    else:
        reward = goal_reward(batch["next_state"], batch["goal"], spec)
    terminal = batch.get("terminal", jnp.zeros_like(reward))
    return reward, gamma * (1.0 - terminal.astype(jnp.float32))


def polyak(target: Any, online: Any, tau: float) -> Any:
    """target ← (1 − tau)·target + tau·online, leaf by leaf."""
    return optax.incremental_update(online, target, tau)


def select_tree(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise where(pred, on_true, on_false) with a scalar pred (static shapes for masked updates)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def actor_input(state: jax.Array, goal: jax.Array) -> jax.Array:
    """The policy sees concat(state, goal): [B, S], [B, G] -> [B, S + G]."""
    return jnp.concatenate([state, goal], -1)


def critic_input(state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
    """The critic sees concat(state, action, goal): -> [B, S + A + G]."""
    return jnp.concatenate([state, action, goal], -1)


def diagnostics(config: ActorCriticConfig, actor_params: Any, critic_params: Any, batch: dict[str, jax.Array]) -> dict:
    """Feature rank, dormant units and per-block activation norms of critic 0 and the actor on a batch."""
    critic_in = critic_input(batch["state"], batch["action"], batch["goal"])
    actor_in = actor_input(batch["state"], batch["goal"])
    return {**torso_diagnostics("critic", config.network(config.resolved_critic_depth), first_critic(critic_params),
                                critic_in),
            **torso_diagnostics("actor", config.network(config.resolved_actor_depth), actor_params, actor_in)}


def first_critic(params: Any) -> Any:
    """The params of critic 0 of a twin (for diagnostics)."""
    return jax.tree.map(lambda leaf: leaf[0], params)
