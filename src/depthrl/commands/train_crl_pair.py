"""Train two CRL agents on one replay buffer: a collector, whose policy gathers every transition, and a
learner, which never acts during training and learns only from the collector's data (Wang et al. 2025,
"exploration vs expressivity": a deep collector feeding a shallow learner and vice versa tells whether
depth helps by collecting better data, by learning more from the same data, or both).

Both agents take one SGD step on the same relabelled batch at every step (independent update keys).
Evaluation and plots are the learner's (its deterministic policy from reset); the collector's training
metrics are logged under `collector/`.

Example: depthrl train crl-pair --env point-maze-u --collector-depth 16 --depth 4 --run-dir runs/pair_c16_l4
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from depthrl.agents.crl_pair import CollectorLearner, PairConfig
from depthrl.training import command

AGENT = CollectorLearner


@dataclasses.dataclass(frozen=True)
class Args(command.RunArgs):
    """Train a CRL learner only on the data a CRL collector (another depth) gathers (one shared buffer)."""

    agent: Annotated[PairConfig, tyro.conf.OmitArgPrefixes] = PairConfig()
    kind: tyro.conf.Suppress[str] = "crl-pair"
    run_dir: str = "runs/crl_pair"


validate_args = command.require_goal_env

main = command.run
