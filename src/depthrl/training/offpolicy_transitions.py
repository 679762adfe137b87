"""The off-policy loop for envs whose episodes end early (gymnax, probes): DQN's trainer.

`Trainer` (training/loop.py) assumes fixed-length synchronised episodes and relabels goals from the
future of each episode. Here episodes end whenever the env says, so collected steps go to a flat
transition replay (`buffers.transitions`) as {obs, action, reward, next_obs, terminated}, with next_obs
the observation before the auto-reset (so time-limit ends bootstrap) and terminated from the env.

`TransitionTrainer` subclasses `Trainer` and keeps its epoch (collect one unroll → scan of SGD steps),
prefill, jit boundaries and runner interface; it replaces what touches the buffer and the evaluation:
  init, _collect:  exploration by `agent.explore(agent_state, obs, key, env_steps)` (e.g. ε-greedy with
                   a schedule over env steps); prefill with uniform random actions;
  sample_batch:    uniform transitions, `agent.config.batch_size` of them;
  evaluate:        return and length of one deterministic episode per eval env (`training.episodes`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from depthrl.buffers import transitions as tbuf
from depthrl.training.episodes import evaluate_returns
from depthrl.training.loop import Trainer, TrainState, _episode_means


def transition_example(spec) -> dict[str, jax.Array]:
    """One stored transition of an env: shapes and dtypes."""
    obs = jnp.zeros((spec.obs_dim,), jnp.float32)
    action = jnp.zeros((), jnp.int32) if spec.discrete_actions else jnp.zeros((spec.action_dim,), jnp.float32)
    zero = jnp.zeros((), jnp.float32)
    return {"obs": obs, "action": action, "reward": zero, "next_obs": obs, "terminated": zero}


def uniform_actions(spec, key: jax.Array, num_envs: int) -> jax.Array:
    """Uniform random actions: [num_envs] int32 (discrete) or [num_envs, action_dim] in the bounds."""
    if spec.discrete_actions:
        return jax.random.randint(key, (num_envs,), 0, spec.discrete_actions)
    return jax.random.uniform(key, (num_envs, spec.action_dim), minval=spec.action_low, maxval=spec.action_high)


@dataclasses.dataclass(frozen=True)
class TransitionTrainer(Trainer):
    """Trainer over a flat transition replay; same interface as `Trainer` (the runner drives either)."""

    def init(self, key: jax.Array) -> TrainState:
        agent_key, env_key, key = jax.random.split(key, 3)
        env_state = jax.vmap(self.env.reset)(jax.random.split(env_key, self.config.num_envs))
        # --buffer-size rounded up to a multiple of --num-envs, as TrainConfig documents
        capacity = self.config.rows_per_env * self.config.num_envs
        buffer = tbuf.init(transition_example(self.env.spec), capacity)
        return TrainState(agent=self.agent.init(agent_key), env_state=env_state, buffer=buffer, key=key,
                          env_steps=jnp.zeros((), jnp.int32), epoch=jnp.zeros((), jnp.int32))

    def _collect(self, ts: TrainState, key: jax.Array, random_actions: bool):
        spec, num_envs = self.env.spec, self.config.num_envs
        step_fn = jax.vmap(self.env.step)

        def one_step(env_state, step_key):
            if random_actions:
                action = uniform_actions(spec, step_key, num_envs)
            else:
                action = self.agent.explore(ts.agent, env_state.obs, step_key, ts.env_steps)
            next_state = step_fn(env_state, action)
            record = {"obs": env_state.obs, "action": action, "reward": next_state.reward,
                      "next_obs": next_state.info["final_obs"], "terminated": next_state.info["terminated"]}
            return next_state, (record, next_state.done, next_state.info["episode_metrics"])

        keys = jax.random.split(key, self.config.unroll_length)
        env_state, (chunk, done, episode_metrics) = jax.lax.scan(one_step, ts.env_state, keys)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), chunk)  # [U·N, ...]
        ts = ts.replace(env_state=env_state, buffer=tbuf.add(ts.buffer, flat),
                        env_steps=ts.env_steps + self.config.steps_per_epoch)
        return ts, _episode_means(done, episode_metrics)

    def sample_batch(self, ts: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        """batch_size uniform transitions: obs, action, reward, next_obs, terminated [B, ...]."""
        return tbuf.sample(ts.buffer, key, self.agent.config.batch_size)

    def evaluate(self, agent_params: Any, key: jax.Array, return_positions: bool = False):
        """(metrics name -> [num_eval_envs], None, None): return and length of one deterministic episode each."""
        del return_positions  # no maze to draw
        return evaluate_returns(self.eval_env, self.agent.act, agent_params, key, self.config.num_eval_envs), None, None
