"""The off-policy loop for envs whose episodes end early (gymnax, probes): DQN's trainer.

It is `Trainer` (training/loop.py) with a flat transition replay (`buffers.replay.TransitionReplay`) in place
of the trajectory replay: collected steps are stored as {obs, action, reward, next_obs, terminated}, with
next_obs the observation before the auto-reset (so time-limit ends bootstrap), and batches are uniform
transitions. Exploration comes from `agent.explore(agent_state, obs, key, env_steps)` (DQN's ε schedule);
evaluation reports the return and length of one deterministic episode per eval env.
"""

from __future__ import annotations

import dataclasses

from depthrl.buffers.replay import TransitionReplay
from depthrl.training.loop import Trainer


@dataclasses.dataclass(frozen=True)
class TransitionTrainer(Trainer):
    """`Trainer` whose default replay holds flat transitions; nothing else differs."""

    def default_replay(self) -> TransitionReplay:
        """--buffer-size transitions (rounded up to a multiple of --num-envs, as TrainConfig documents)."""
        return TransitionReplay.of(self.env.spec, self.config.rows_per_env * self.config.num_envs,
                                   self.agent.config.batch_size)
