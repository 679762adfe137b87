"""Train contrastive RL (CRL): a goal-conditioned, reward-free agent with an InfoNCE critic, at any depth.

Example: depthrl train crl --env point-maze-u --depth 16 --total-env-steps 2000000 --run-dir runs/u_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from depthrl import presets
from depthrl.agents.crl import CRL, CRLConfig
from depthrl.training import command

AGENT = CRL


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train contrastive RL (CRL) at any depth on a goal-conditioned env."""

    agent: Annotated[CRLConfig, tyro.conf.OmitArgPrefixes] = CRLConfig()
    kind: tyro.conf.Suppress[str] = "crl"
    run_dir: str = "runs/crl"


# Named presets (`depthrl presets` lists them with the paper's numbers): see depthrl/presets.py.
PRESETS: dict[str, Args] = presets.args_for("crl", Args)

validate_args = command.require_goal_env

main = command.run
