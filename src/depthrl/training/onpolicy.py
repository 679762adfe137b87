"""The on-policy loop (PPO): one jitted epoch = collect a rollout with the current policy (`acting.rollout`) →
GAE → a scan of minibatch SGD steps over it. Same interface as `Trainer` (init, start, epoch, prefill_epoch,
evaluate, diagnostics, config), so `make_train` and the runner (run directory, metrics, checkpoints, resume,
progress, plots) drive it unchanged.

TrainConfig flags, read the on-policy way:
  --num-envs × --unroll-length   transitions per rollout (no replay: --buffer-size and --prefill-steps
                                 do not apply, and the command rejects them);
  --sgd-steps-per-collect        minibatch SGD steps per rollout. Minibatches of the agent's --batch-size
                                 are taken in order from a fresh shuffle of the rollout, reshuffled after
                                 each pass (floor(rollout / batch_size) minibatches a pass), so any
                                 combination works: no flag has to divide another.
Advantages and value targets are computed once per rollout, with the parameters that collected it
(PPO's π_old), by `losses.policy_gradient.gae`; time-limit ends bootstrap from the observation the
episode reached (`info["final_obs"]`).

Shared with the off-policy `loop.Trainer`: the collection (`acting.rollout`), the evaluation
(`loop.evaluate_agent`) and the initial state (`loop.initial_fields`). The epoch stays its own: what is common
to both epochs is only "split the key, collect, scan the SGD steps, average the metrics" (a few lines), while
each part differs in substance: the off-policy step samples a fresh batch from the replay with its own key,
shards it across devices and records which step first went non-finite (the `nonfinite/` report), and it
splits the epoch key in three; PPO computes GAE once per rollout, slices minibatches from a shuffle of it,
passes the step key to the update whole, splits the epoch key in four and reports the explained variance. A
helper taking those differences as callbacks would be longer than the two scans, and matching PPO's numbers
bit for bit pins each key split as it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from depthrl.envs.base import State
from depthrl.losses import policy_gradient as pg
from depthrl.training import acting
from depthrl.training.loop import TrainConfig, evaluate_agent, initial_fields


@struct.dataclass
class OnPolicyState:
    agent: Any
    env_state: State  # batched over num_envs
    key: jax.Array
    env_steps: jax.Array  # [] int32, per seed
    epoch: jax.Array  # [] int32, epochs (rollouts) done


@dataclasses.dataclass(frozen=True)
class OnPolicyTrainer:
    """Builds the pure init / epoch / eval functions for one (agent, env, config). Hashable."""

    agent: Any  # has init, act, value, log_prob, update(state, minibatch, key), diagnostics
    env: Any
    eval_env: Any
    config: TrainConfig

    def init(self, key: jax.Array) -> OnPolicyState:
        return OnPolicyState(**initial_fields(self.agent, self.env, self.config.num_envs, key))

    def start(self, key: jax.Array) -> OnPolicyState:
        """The state training starts from: `init` (on-policy: nothing to prefill)."""
        return self.init(key)

    def prefill_epoch(self, ts: OnPolicyState) -> OnPolicyState:
        """On-policy: nothing to prefill (--prefill-steps is rejected for PPO, so the runner never calls this)."""
        return ts

    def rollout(self, ts: OnPolicyState, key: jax.Array):
        """Collect unroll_length steps of num_envs envs with the current policy (`acting.rollout`).

        Returns (ts with the new env state and step count, transitions [U, N, ...], episode metrics)."""
        params = ts.agent.params
        env_state, rollout, metrics = acting.rollout(
            self.env, lambda obs, step_key: self.agent.act(params, obs, step_key, deterministic=False), _record,
            ts.env_state, key, self.config.unroll_length)
        ts = ts.replace(env_state=env_state, env_steps=ts.env_steps + self.config.steps_per_epoch)
        return ts, rollout, metrics

    def advantages(self, params: Any, rollout: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """The flat training set of one rollout: obs, action, log_prob (π_old), advantage, target [U·N, ...]."""
        c = self.agent.config
        values = self.agent.value(params, rollout["obs"])  # [U, N]
        next_values = self.agent.value(params, rollout["final_obs"])
        advantage, target = pg.gae(rollout["reward"], values, next_values, rollout["done"], rollout["terminated"],
                                   c.discount, c.gae_lambda)
        data = {"obs": rollout["obs"], "action": rollout["action"],
                "log_prob": self.agent.log_prob(params, rollout["obs"], rollout["action"]),
                "advantage": advantage, "target": target}
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), data)

    def epoch(self, ts: OnPolicyState) -> tuple[OnPolicyState, dict[str, jax.Array]]:
        """Collect one rollout, then run the minibatch SGD steps. Metrics are averaged over the SGD steps."""
        cfg, batch_size = self.config, self.agent.config.batch_size
        key, collect_key, shuffle_key, sgd_key = jax.random.split(ts.key, 4)
        ts, rollout, collect_metrics = self.rollout(ts.replace(key=key), collect_key)
        data = self.advantages(ts.agent.params, rollout)
        size = cfg.steps_per_epoch
        per_pass = size // batch_size  # >= 1: the command checks --batch-size <= rollout
        passes = -(-cfg.sgd_steps_per_collect // per_pass)
        orders = jax.vmap(lambda k: jax.random.permutation(k, size))(jax.random.split(shuffle_key, passes))

        def sgd_step(agent_state, step):
            index, step_key = step
            rows = jax.lax.dynamic_slice(orders[index // per_pass], ((index % per_pass) * batch_size,),
                                         (batch_size,))
            minibatch = jax.tree.map(lambda x: x[rows], data)
            return self.agent.update(agent_state, minibatch, step_key)

        steps = (jnp.arange(cfg.sgd_steps_per_collect), jax.random.split(sgd_key, cfg.sgd_steps_per_collect))
        agent_state, sgd_metrics = jax.lax.scan(sgd_step, ts.agent, steps)
        metrics = {**jax.tree.map(jnp.mean, sgd_metrics), **collect_metrics,
                   "critic/explained_variance": _explained_variance(self.agent.value(ts.agent.params, data["obs"]),
                                                                    data["target"])}
        return ts.replace(agent=agent_state, epoch=ts.epoch + 1), metrics

    def diagnostics(self, ts: OnPolicyState, key: jax.Array) -> dict[str, jax.Array]:
        """Network diagnostics on the observations the envs are in now."""
        del key
        return self.agent.diagnostics(ts.agent, {"obs": ts.env_state.obs})

    def evaluate(self, agent_params: Any, key: jax.Array, return_positions: bool = False):
        """`loop.evaluate_agent` on the eval env: (metrics name -> [num_eval_envs], None, None) for a reward env."""
        return evaluate_agent(self.agent, self.eval_env, self.config.num_eval_envs, agent_params, key,
                              return_positions)


def _record(state: State, action: jax.Array, next_state: State) -> dict[str, jax.Array]:
    """What a PPO rollout keeps of each step (GAE needs the reward, both ends and the pre-reset observation)."""
    return {"obs": state.obs, "action": action, "reward": next_state.reward, "done": next_state.done,
            "terminated": next_state.info["terminated"], "final_obs": next_state.info["final_obs"]}


def _explained_variance(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """1 − Var(target − prediction) / Var(target): 1 for a perfect critic, <= 0 for one no better than a constant."""
    return 1.0 - jnp.var(target - prediction) / jnp.maximum(jnp.var(target), 1e-8)
