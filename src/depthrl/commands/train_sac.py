"""Train SAC with hindsight relabelling (HER) on a goal-conditioned env, at any depth, with a regression
(mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train sac --env point-maze-u --critic-loss hl-gauss --depth 16 --run-dir runs/sac_u_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from depthrl import presets
from depthrl.agents.sac import SAC, SACConfig
from depthrl.training import command

AGENT = SAC


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train SAC + HER at any depth on a goal-conditioned env, with an MSE or classification critic."""

    agent: Annotated[SACConfig, tyro.conf.OmitArgPrefixes] = SACConfig()
    kind: tyro.conf.Suppress[str] = "sac"
    run_dir: str = "runs/sac"


validate_args = command.require_goal_env

PRESETS: dict[str, Args] = {
    # The CRL quick start's env and budget, for a like-for-like baseline on a 2-core CPU; the agent settings
    # are those that learn the small room of tests/agents/test_sac_td3.py.
    "quickstart": Args(
        env=presets.QUICKSTART_ENV,
        agent=SACConfig(depth=4, width=64, batch_size=256, critic_loss="mse", tau=0.02, init_alpha=0.1),
        train=presets.QUICKSTART_TRAIN,
        run_dir="runs/sac_quickstart",
    ),
}

main = command.run
