"""Train DQN at any depth on a discrete-action env (gymnax classic control / MinAtar, probe envs), with a
regression (mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train dqn --env cartpole --critic-loss hl-gauss --depth 16 --run-dir runs/dqn_cartpole_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import tyro

from depthrl.agents.dqn import DQN, DQNConfig, check_discrete
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.training import command
from depthrl.training.loop import TrainConfig
from depthrl.training.offpolicy_transitions import TransitionTrainer

AGENT = DQN
TRAINER = TransitionTrainer

# CartPole in about a minute on a 2-core CPU (mean greedy return ~500 after ~40k env steps at depth 4).
_CARTPOLE_AGENT = DQNConfig(depth=4, width=64, critic_loss="hl-gauss", v_min=0.0, v_max=100.0,
                            lr=1e-3, batch_size=128, target_update_period=100, epsilon_decay_steps=20_000)
_CARTPOLE_TRAIN = TrainConfig(num_envs=8, unroll_length=16, sgd_steps_per_collect=16, total_env_steps=60_000,
                              buffer_size=20_000, prefill_steps=1_024, eval_every=6_000, num_eval_envs=16)


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train DQN at any depth on a discrete-action env, with an MSE or classification critic."""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = EnvConfig(env="cartpole")
    train: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = _CARTPOLE_TRAIN
    agent: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = _CARTPOLE_AGENT
    kind: tyro.conf.Suppress[str] = "dqn"
    run_dir: str = "runs/dqn"


def validate_args(args: Any) -> None:
    """DQN needs discrete actions (the env is built only to read its spec: no compute)."""
    check_discrete(make_envs(args.env)[0].spec, "dqn")


PRESETS: dict[str, Args] = {
    "cartpole": Args(run_dir="runs/dqn_cartpole"),
    # MinAtar Breakout: the Stop Regressing paper's kind of task (Atari-like, discrete); hours on a CPU.
    "minatar-breakout": Args(
        env=EnvConfig(env="minatar-breakout"),
        agent=DQNConfig(depth=4, width=256, critic_loss="hl-gauss", v_min=0.0, v_max=50.0,
                        lr=3e-4, batch_size=128, target_update_period=1_000, epsilon_decay_steps=250_000),
        train=TrainConfig(num_envs=16, unroll_length=8, sgd_steps_per_collect=8, total_env_steps=5_000_000,
                          buffer_size=100_000, prefill_steps=10_000, eval_every=100_000, num_eval_envs=32),
        run_dir="runs/dqn_minatar_breakout",
    ),
}

main = command.run
