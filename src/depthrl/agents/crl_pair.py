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
from typing import Any

import jax
from flax import struct

from depthrl.agents.crl import CRL, CRLConfig, CRLState
from depthrl.envs.base import EnvSpec
from depthrl.networks.torso import check_depth


@dataclasses.dataclass(frozen=True)
class PairConfig(CRLConfig):
    """A CRL learner (--depth and every CRL flag) trained on the data of a CRL collector of its own depth."""

    collector_depth: int = 16
    """Depth of the collector's actor and critic (the agent whose stochastic policy gathers all data)."""

    def validate(self) -> None:
        super().validate()
        check_depth("--collector-depth", self.collector_depth, self.layers_per_block)

    def crl(self, depth: int | None = None) -> CRLConfig:
        """The CRLConfig of the learner (depth None) or of an agent of `depth` with the same other flags."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(CRLConfig)}
        if depth is not None:
            fields.update(depth=depth, actor_depth=None, critic_depth=None)
        return CRLConfig(**fields)


@struct.dataclass
class PairParams:
    collector: Any
    learner: Any


@struct.dataclass
class PairState:
    collector: CRLState
    learner: CRLState

    @property
    def params(self) -> PairParams:
        return PairParams(collector=self.collector.params, learner=self.learner.params)


@dataclasses.dataclass(frozen=True)
class CollectorLearner:
    """Two CRL agents behind the agent interface the Trainer uses. Acting: a stochastic action (training
    collection) comes from the collector, a deterministic one (evaluation, plots) from the learner."""

    config: PairConfig
    spec: EnvSpec

    @property
    def collector(self) -> CRL:
        return CRL(self.config.crl(self.config.collector_depth), self.spec)

    @property
    def learner(self) -> CRL:
        return CRL(self.config.crl(), self.spec)

    def init(self, key: jax.Array) -> PairState:
        collector_key, learner_key = jax.random.split(key)
        return PairState(collector=self.collector.init(collector_key), learner=self.learner.init(learner_key))

    def act(self, params: PairParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        if deterministic:
            return self.learner.act(params.learner, obs, key, deterministic=True)
        return self.collector.act(params.collector, obs, key, deterministic=False)

    def q_value(self, params: PairParams, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        return self.learner.q_value(params.learner, state, action, goal)

    def update(self, state: PairState, batch: dict[str, jax.Array], key: jax.Array) -> tuple[PairState, dict]:
        collector_key, learner_key = jax.random.split(key)
        collector, collector_metrics = self.collector.update(state.collector, batch, collector_key)
        learner, metrics = self.learner.update(state.learner, batch, learner_key)
        metrics = {**metrics, **{f"collector/{k}": v for k, v in collector_metrics.items()}}
        return PairState(collector=collector, learner=learner), metrics

    def diagnostics(self, state: PairState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return self.learner.diagnostics(state.learner, batch)
