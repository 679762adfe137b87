"""Reward-driven envs whose episodes end early (gymnax classic control / MinAtar, the probe envs), and the
wrapper that reports their episode return and length.

Unlike the goal mazes (`EpisodeWrapper`: fixed-length, synchronised episodes, goal metrics) these envs
terminate whenever their dynamics say so. The registry (`depthrl.envs.registry`) dispatches the names in
`ENVS` here; each is built as `EpisodeReturnWrapper(env)`, one unbatched env to vmap.

Contract of the wrapped env: it auto-resets itself on the step that ends an episode (`done = 1`, `obs`
already the next episode's first) and reports `info["truncated"]` (the time limit ended the episode: an
agent bootstraps through it). The wrapper guarantees these `info` keys on every state:

    terminated [] float32  done and not truncated: a terminal state, no bootstrap.
    truncated  [] float32  as the env reports it.
    final_obs  [obs_dim]   the observation the step reached before any auto-reset; the env's own if it
                           reports one (gymnax), else `obs` — only correct for envs that never truncate
                           (the probes), whose terminal observation is never bootstrapped from.
    episode_metrics        {return, length} of the last finished episode (valid where done == 1; zeros
                           before the first), as `EpisodeWrapper` reports goal metrics.
    episode_running        {return, length} of the current episode so far.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from depthrl.envs import stitching
from depthrl.envs.base import Env, EnvSpec, State
from depthrl.envs.gymnax_envs import GYMNAX_ENVS, GymnaxEnv
from depthrl.envs.probes import ActionDependentReward, ObsDependentReward, OneStepReward, TwoStepChain
from depthrl.errors import ConfigError, check_defaults, check_positive

EPISODE_METRICS = ("return", "length")

# Probe envs with known values (depthrl.envs.probes), discrete actions: name -> (constructor, description).
PROBE_ENVS = {
    "probe-one-step": (OneStepReward, "Probe: one step, reward +1 (Q = V = 1)."),
    "probe-two-step": (TwoStepChain, "Probe: two-step chain, reward +1 at the end (V(s0) = γ = 0.99, V(s1) = 1)."),
    "probe-action-dependent": (ActionDependentReward, "Probe: one step, reward +1 for action 0, −1 for action 1."),
    "probe-obs-dependent": (ObsDependentReward, "Probe: one step, obs ±1 drawn at reset, reward = obs."),
}

# Every name dispatched here -> description.
ENVS: dict[str, str] = {
    **{name: entry.description for name, entry in GYMNAX_ENVS.items()},
    **{name: description for name, (_, description) in PROBE_ENVS.items()},
}


@dataclasses.dataclass(frozen=True)
class EpisodeReturnWrapper:
    """Episode return and length of an auto-resetting env (one env or a batch); see the module docstring."""

    env: Env

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec

    def reset(self, key: Any) -> State:
        state = self.env.reset(key)
        zero = jnp.zeros_like(state.reward, dtype=jnp.float32)
        metrics = {name: zero for name in EPISODE_METRICS}
        info = {**state.info, "terminated": zero, "truncated": state.info.get("truncated", zero),
                "final_obs": state.info.get("final_obs", state.obs), "episode_metrics": metrics,
                "episode_running": metrics}
        return state.replace(done=zero, info=info)

    def step(self, state: State, action: Any) -> State:
        inner_info = {k: v for k, v in state.info.items() if k not in ("episode_metrics", "episode_running")}
        inner = self.env.step(state.replace(info=inner_info), action)
        done = inner.done.astype(jnp.float32)
        truncated = inner.info.get("truncated", jnp.zeros_like(done)) * done
        running = state.info["episode_running"]
        now = {"return": running["return"] + inner.reward, "length": running["length"] + 1.0}
        info = {
            **inner.info,
            "terminated": done * (1.0 - truncated),
            "truncated": truncated,
            "final_obs": inner.info.get("final_obs", inner.obs),
            "episode_metrics": {k: jnp.where(done > 0, now[k], state.info["episode_metrics"][k]) for k in now},
            "episode_running": {k: v * (1.0 - done) for k, v in now.items()},
        }
        return inner.replace(done=done, info=info)


def validate_config(cfg: Any) -> None:
    """EnvConfig checks for the envs dispatched here: the maze flags do not apply."""
    check_defaults(cfg, (("--layout", "layout"), ("--success-radius", "success_radius"),
                         ("--random-start", "random_start"), ("--stitching", "stitching"), *stitching.FLAGS),
                   f"only for the point mazes, not --env {cfg.env}")
    check_defaults(cfg, (("--early-termination", "early_termination"), ("--goal-resample", "goal_resample"),
                         ("--eval-env", "eval_env")),
                   f"only for goal envs (point mazes, physics tasks), not --env {cfg.env}: its episodes end as its "
                   "dynamics say")
    if cfg.episode_length is not None:
        if cfg.env in PROBE_ENVS:
            raise ConfigError("--episode-length", cfg.episode_length,
                              f"--env {cfg.env} has a fixed episode length; drop the flag")
        check_positive("--episode-length", cfg.episode_length)


def check_goal_env(env: str, agent: str) -> None:
    """ConfigError naming --env when a goal-conditioned agent (CRL, SAC/TD3 + HER) is given a reward env."""
    if env in ENVS:
        raise ConfigError("--env", env, f"{agent} needs a goal-conditioned env (the point mazes or a physics goal "
                                        f"task, see `depthrl envs`); {env} has rewards but no goals")


def make_env(cfg: Any) -> EpisodeReturnWrapper:
    """One unbatched env for an EnvConfig whose --env is in ENVS (validated by `registry.make_envs`)."""
    if cfg.env in GYMNAX_ENVS:
        return EpisodeReturnWrapper(GymnaxEnv(cfg.env, cfg.episode_length))
    constructor, _ = PROBE_ENVS[cfg.env]
    return EpisodeReturnWrapper(constructor())


def list_envs() -> list[tuple[str, int, int, str]]:
    """(name, obs_dim, number of discrete actions, description) of every env dispatched here."""
    rows = []
    for name, description in ENVS.items():
        if name in GYMNAX_ENVS:
            entry = GYMNAX_ENVS[name]
            rows.append((name, entry.obs_dim, entry.num_actions, description))
        else:
            spec = PROBE_ENVS[name][0]().spec
            rows.append((name, spec.obs_dim, spec.discrete_actions, description))
    return rows
