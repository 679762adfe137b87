"""Train TD3 with hindsight relabelling (HER) on a goal-conditioned env, at any depth, with a regression
(mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train td3 --env point-maze-u --critic-loss hl-gauss --depth 16 --run-dir runs/td3_u_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from depthrl import presets
from depthrl.agents.td3 import TD3, TD3Config
from depthrl.training import command

AGENT = TD3


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train TD3 + HER at any depth on a goal-conditioned env, with an MSE or classification critic."""

    agent: Annotated[TD3Config, tyro.conf.OmitArgPrefixes] = TD3Config()
    kind: tyro.conf.Suppress[str] = "td3"
    run_dir: str = "runs/td3"


validate_args = command.require_goal_env

PRESETS: dict[str, Args] = {
    # The CRL quick start's env and budget (plus 16k env steps of random prefill), for a like-for-like baseline
    # on a 2-core CPU; the agent settings are those that learn the small room of tests/agents/test_sac_td3.py.
    "quickstart": Args(
        env=presets.QUICKSTART_ENV,
        agent=TD3Config(depth=4, width=64, batch_size=256, critic_loss="mse", tau=0.02, exploration_noise=0.3),
        train=dataclasses.replace(presets.QUICKSTART_TRAIN, prefill_steps=16_000),
        run_dir="runs/td3_quickstart",
    ),
}

main = command.run
