"""DQN (Mnih et al. 2015) at any depth, with a regression or classification critic.

Q(s, ·) is a residual torso + a linear head over the actions: scalars (--critic-loss mse) or logits of a
categorical value per action (hl-gauss, two-hot, c51; Farebrother et al. 2024, Sec. 3).

TD target, with a target network θ⁻ copied from θ every --target-update-period SGD steps and
a* = argmax_a Q_θ(s', a) (double DQN, van Hasselt et al. 2016) or argmax_a Q_θ⁻(s', a) (--no-double-q):
    mse, hl-gauss, two-hot:  y = r + γ (1 − terminated) Q_θ⁻(s', a*), scored by `value_dist.value_loss`
                            (MSE on the scalar, or cross-entropy against the HL-Gauss / two-hot histogram of y);
    c51:                    the target distribution p_θ⁻(s', a*) moved to r + γ (1 − terminated) z and projected
                            on the support (Bellemare et al. 2017), scored by cross-entropy.
Time-limit ends are not terminal: the buffer stores the observation before the auto-reset, so the target
bootstraps through them.

Exploration: ε-greedy with ε decayed linearly from --epsilon-start to --epsilon-end over
--epsilon-decay-steps env steps (per seed); evaluation is greedy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from depthrl.agents.optim import optimizer_step
from depthrl.agents.value_heads import ValueFlags, read_value, scalar_target_loss, value_network
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_open_unit, check_positive
from depthrl.losses import value_dist as vd
from depthrl.networks.diagnostics import torso_diagnostics


@dataclasses.dataclass(frozen=True)
class DQNConfig(ValueFlags):
    """DQN agent (discrete actions)."""

    lr: float = 3e-4
    """Adam learning rate of the Q network."""
    batch_size: int = 128
    """Transitions per SGD step."""
    discount: float = 0.99
    """Discount γ of the TD target."""
    target_update_period: int = 250
    """SGD steps between copies of the online network into the target network."""
    double_q: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    epsilon_start: float = 1.0
    """Exploration ε at the first env step."""
    epsilon_end: float = 0.05
    """Exploration ε after --epsilon-decay-steps env steps (and from then on)."""
    epsilon_decay_steps: int = 20_000
    """Env steps (all envs of one seed together) over which ε decays linearly."""
    max_grad_norm: float = 10.0
    """Clip the gradient to this global norm."""

    def validate(self) -> None:
        self.validate_network()
        self.validate_value()
        check_positive("--lr", self.lr)
        check_positive("--batch-size", self.batch_size)
        check_open_unit("--discount", self.discount)
        check_positive("--target-update-period", self.target_update_period)
        for flag, eps in (("--epsilon-start", self.epsilon_start), ("--epsilon-end", self.epsilon_end)):
            if not 0.0 <= eps <= 1.0:
                raise ConfigError(flag, eps, "must lie in [0, 1]")
        if self.epsilon_end > self.epsilon_start:
            raise ConfigError("--epsilon-end", self.epsilon_end, f"must be <= --epsilon-start={self.epsilon_start}")
        check_positive("--epsilon-decay-steps", self.epsilon_decay_steps)
        check_positive("--max-grad-norm", self.max_grad_norm)


@struct.dataclass
class DQNParams:
    online: Any
    target: Any


@struct.dataclass
class DQNState:
    params: DQNParams
    opt: Any
    sgd_steps: jax.Array


def check_discrete(spec: EnvSpec, agent: str) -> None:
    if spec.discrete_actions < 1:
        raise ConfigError("--env", spec.name, f"{agent} needs a discrete-action env (e.g. cartpole, "
                                              f"minatar-breakout, probe-action-dependent)")


@dataclasses.dataclass(frozen=True)
class DQN:
    """The agent: Q network and optimiser from a config and an env spec. Hashable (static)."""

    config: DQNConfig
    spec: EnvSpec

    def __post_init__(self) -> None:
        check_discrete(self.spec, "dqn")

    @property
    def q_net(self):
        return value_network(self.config, self.spec.discrete_actions)

    def _optimizer(self):
        return optax.chain(optax.clip_by_global_norm(self.config.max_grad_norm), optax.adam(self.config.lr))

    def init(self, key: jax.Array) -> DQNState:
        online = self.q_net.init(key, jnp.zeros((1, self.spec.obs_dim)))
        return DQNState(params=DQNParams(online=online, target=online), opt=self._optimizer().init(online),
                        sgd_steps=jnp.zeros((), jnp.int32))

    # -- acting ---------------------------------------------------------------------------------------
    def q_values(self, net_params: Any, obs: jax.Array) -> jax.Array:
        """obs [..., obs_dim] -> Q [..., num_actions] (the expectation of the categorical ones)."""
        return read_value(self.q_net.apply(net_params, obs), self.config)

    def act(self, params: DQNParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """Greedy action [...] int32 (deterministic), else uniformly random with probability --epsilon-end."""
        greedy = jnp.argmax(self.q_values(params.online, obs), axis=-1).astype(jnp.int32)
        if deterministic:
            return greedy
        return self._epsilon_greedy(greedy, key, jnp.float32(self.config.epsilon_end))

    def epsilon(self, env_steps: jax.Array) -> jax.Array:
        """Linear schedule: [] env steps -> [] ε."""
        c = self.config
        frac = jnp.clip(env_steps.astype(jnp.float32) / c.epsilon_decay_steps, 0.0, 1.0)
        return c.epsilon_start + frac * (c.epsilon_end - c.epsilon_start)

    def explore(self, state: DQNState, obs: jax.Array, key: jax.Array, env_steps: jax.Array) -> jax.Array:
        """Behaviour action [...] int32: ε-greedy with ε from the schedule at `env_steps`."""
        greedy = jnp.argmax(self.q_values(state.params.online, obs), axis=-1).astype(jnp.int32)
        return self._epsilon_greedy(greedy, key, self.epsilon(env_steps))

    def _epsilon_greedy(self, greedy: jax.Array, key: jax.Array, epsilon: jax.Array) -> jax.Array:
        explore_key, action_key = jax.random.split(key)
        random_action = jax.random.randint(action_key, greedy.shape, 0, self.spec.discrete_actions)
        return jnp.where(jax.random.uniform(explore_key, greedy.shape) < epsilon, random_action, greedy)

    # -- learning -------------------------------------------------------------------------------------
    def td_loss(self, online: Any, target: Any, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
        """Mean TD loss over a batch: obs [B, O], action [B], reward [B], next_obs [B, O], terminated [B]."""
        c = self.config
        rows = jnp.arange(batch["action"].shape[0])
        action = batch["action"].astype(jnp.int32).reshape(-1)
        next_target_out = self.q_net.apply(target, batch["next_obs"])  # [B, A] or [B, A, bins]
        next_q_target = read_value(next_target_out, c)
        next_q_select = self.q_values(online, batch["next_obs"]) if c.double_q else next_q_target
        next_action = jnp.argmax(next_q_select, axis=-1)
        discount = c.discount * (1.0 - batch["terminated"])
        out = self.q_net.apply(online, batch["obs"])[rows, action]  # [B] or [B, bins]
        q_taken = read_value(out, c)
        if c.critic_loss == "c51":
            next_probs = jax.nn.softmax(next_target_out[rows, next_action], axis=-1)
            target_probs = vd.c51_project(next_probs, batch["reward"], discount, c.support())
            per_example = vd.cross_entropy(out, target_probs)
            y = batch["reward"] + discount * next_q_target[rows, next_action]
        else:
            y = batch["reward"] + discount * next_q_target[rows, next_action]
            per_example = scalar_target_loss(out, y, c)
        aux = {"critic/q": jnp.mean(q_taken), "critic/td_target": jnp.mean(y),
               "critic/td_abs_error": jnp.mean(jnp.abs(jax.lax.stop_gradient(q_taken) - y))}
        aux["critic/out_of_support"] = vd.out_of_support_fraction(y, c.support(), c.critic_loss)
        return jnp.mean(per_example), aux

    def update(self, state: DQNState, batch: dict[str, jax.Array], key: jax.Array) -> tuple[DQNState, dict]:
        """One SGD step on the online network; the target network is refreshed every period."""
        del key  # DQN's update is deterministic given the batch
        params = state.params
        (loss, aux), grads = jax.value_and_grad(self.td_loss, has_aux=True)(params.online, params.target, batch)
        online, opt = optimizer_step(self._optimizer(), grads, state.opt, params.online)
        sgd_steps = state.sgd_steps + 1
        refresh = sgd_steps % self.config.target_update_period == 0
        target = jax.tree.map(lambda o, t: jnp.where(refresh, o, t), online, params.target)
        metrics = {"critic/loss": loss, "critic/grad_norm": optax.global_norm(grads), **aux}
        return DQNState(params=DQNParams(online=online, target=target), opt=opt, sgd_steps=sgd_steps), metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: DQNState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of the Q torso on a batch."""
        return torso_diagnostics("q", self.config.network(), state.params.online, batch["obs"])
