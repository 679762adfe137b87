"""Train PPO at any depth on a discrete-action env (gymnax classic control / MinAtar, probe envs), with a
value head trained by regression (mse) or classification (hl-gauss, two-hot).

Example: depthrl train ppo --env cartpole --critic-loss hl-gauss --depth 16 --run-dir runs/ppo_cartpole_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import tyro

from depthrl.agents.dqn import check_discrete
from depthrl.agents.ppo import PPO, PPOConfig
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.errors import ConfigError
from depthrl.training import command
from depthrl.training.loop import TrainConfig
from depthrl.training.onpolicy import OnPolicyTrainer

AGENT = PPO
TRAINER = OnPolicyTrainer

_CARTPOLE_AGENT = PPOConfig(depth=4, width=64, critic_loss="hl-gauss", v_min=0.0, v_max=100.0,
                            lr=1e-3, batch_size=256)
_CARTPOLE_TRAIN = TrainConfig(num_envs=16, unroll_length=64, sgd_steps_per_collect=16, total_env_steps=200_000,
                              eval_every=20_000, num_eval_envs=16)


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train PPO at any depth on a discrete-action env, with an MSE or classification value head."""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = EnvConfig(env="cartpole")
    train: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = _CARTPOLE_TRAIN
    agent: Annotated[PPOConfig, tyro.conf.OmitArgPrefixes] = _CARTPOLE_AGENT
    kind: tyro.conf.Suppress[str] = "ppo"
    run_dir: str = "runs/ppo"


def validate_args(args: Any) -> None:
    """On-policy: no replay, minibatches from one rollout, discrete actions."""
    defaults = TrainConfig()
    for flag, name in (("--buffer-size", "buffer_size"), ("--prefill-steps", "prefill_steps")):
        if getattr(args.train, name) != getattr(defaults, name):
            raise ConfigError(flag, getattr(args.train, name), "PPO is on-policy and keeps no replay: drop the flag")
    rollout = args.train.num_envs * args.train.unroll_length
    if args.agent.batch_size > rollout:
        raise ConfigError("--batch-size", args.agent.batch_size,
                          f"must be <= one rollout, --num-envs × --unroll-length = {rollout}")
    check_discrete(make_envs(args.env)[0].spec, "ppo")


PRESETS: dict[str, Args] = {
    "cartpole": Args(run_dir="runs/ppo_cartpole"),
}

main = command.run
