"""Train contrastive RL (CRL): a goal-conditioned, reward-free agent with an InfoNCE critic, at any depth.

Example: depthrl train crl --env point-maze-u --depth 16 --total-env-steps 2000000 --run-dir runs/u_d16
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from depthrl.agents.crl import CRL, CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.training import command
from depthrl.training.loop import TrainConfig

AGENT = CRL


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train contrastive RL (CRL) at any depth on a goal-conditioned env."""

    agent: Annotated[CRLConfig, tyro.conf.OmitArgPrefixes] = CRLConfig()
    kind: tyro.conf.Suppress[str] = "crl"
    run_dir: str = "runs/crl"
    """Run directory: config.json, metrics.jsonl, tb/, checkpoints/, plots/."""


PRESETS: dict[str, Args] = {
    # The README's main job: CRL on the embedded point-mass U-maze, minutes on a 2-core CPU.
    "quickstart": Args(
        env=EnvConfig(env="point-maze-u"),
        agent=CRLConfig(depth=4, width=64, batch_size=256),
        train=TrainConfig(num_envs=64, unroll_length=50, sgd_steps_per_collect=16, total_env_steps=1_500_000,
                          eval_every=100_000, num_eval_envs=256),
        run_dir="runs/quickstart",
    ),
}

main = command.run
