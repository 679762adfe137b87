"""The jitted core of training: pure functions of a `TrainState` (PureJaxRL style).

One epoch = collect `unroll_length` steps in `num_envs` envs (`acting.rollout`) → add them to the replay
(`buffers.replay`) → run `sgd_steps_per_collect` SGD steps (scan), each sampling (and, for trajectories,
relabelling) its batch inside the jit. The epoch is one jit boundary; a leading seed axis is vmapped so
several seeds train in one process. `make_train(trainer)` is the whole training as one pure function of a
key; the CLI runner (`training.runner`) drives the same `start` and `epoch` with evaluations, checkpoints
and logs between epochs.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from depthrl.buffers.replay import Replay, TrajectoryReplay, TransitionReplay
from depthrl.envs.base import EnvSpec, State
from depthrl.errors import ConfigError, check_positive
from depthrl.training import acting


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How much data, how it is collected and how often the agent is evaluated."""

    num_envs: int = 64
    """Parallel training envs."""
    unroll_length: int = 50
    """Env steps per env per collection (one epoch collects num_envs × unroll_length steps)."""
    sgd_steps_per_collect: int = 32
    """SGD steps after each collection (the update-to-data ratio)."""
    total_env_steps: int = 2_000_000
    """Training budget in env steps (all envs together, per seed); rounded up to whole epochs."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (all envs together); rounded up to a multiple of --num-envs."""
    prefill_steps: int = 0
    """Env steps (all envs together) collected with uniform random actions before learning starts."""
    eval_every: int = 100_000
    """Evaluate, log and checkpoint every this many env steps (rounded up to whole epochs)."""
    num_eval_envs: int = 64
    """Episodes per evaluation (deterministic policy, separate eval envs)."""
    num_seeds: int = 1
    """Independent seeds trained together in one process (vmapped); metrics report mean and spread."""
    seed: int = 0
    """Base PRNG seed; seed i of --num-seeds uses a key folded from it."""
    num_devices: int = 1
    """Devices to split each SGD batch across (data parallelism, parameters replicated); 1 = one device."""

    def validate(self) -> None:
        for flag, v in (("--num-envs", self.num_envs), ("--sgd-steps-per-collect", self.sgd_steps_per_collect),
                        ("--total-env-steps", self.total_env_steps), ("--buffer-size", self.buffer_size),
                        ("--eval-every", self.eval_every), ("--num-eval-envs", self.num_eval_envs),
                        ("--num-seeds", self.num_seeds)):
            check_positive(flag, v)
        check_num_devices(self.num_devices)
        if self.unroll_length < 2:
            raise ConfigError("--unroll-length", self.unroll_length, "must be >= 2")
        if self.prefill_steps < 0:
            raise ConfigError("--prefill-steps", self.prefill_steps, "must be >= 0")
        if self.rows_per_env < self.unroll_length:
            raise ConfigError("--buffer-size", self.buffer_size,
                              f"must hold at least one unroll: >= --num-envs × --unroll-length = "
                              f"{self.num_envs * self.unroll_length}")

    # Read only by the host loop (the runner, make_train's epoch count), never inside a traced program: two runs that
    # differ only in these share their programs (`runner.programs`; tests/training/test_programs.py checks it).
    HOST_ONLY: typing.ClassVar[tuple[str, ...]] = ("total_env_steps", "eval_every", "num_seeds", "seed")

    @property
    def steps_per_epoch(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def rows_per_env(self) -> int:
        return -(-self.buffer_size // self.num_envs)

    @property
    def prefill_epochs(self) -> int:
        return -(-self.prefill_steps // self.steps_per_epoch)

    @property
    def num_epochs(self) -> int:
        """Learning epochs (after prefill)."""
        return max(1, -(-(self.total_env_steps - self.prefill_epochs * self.steps_per_epoch)
                        // self.steps_per_epoch))

    @property
    def epochs_per_eval(self) -> int:
        return max(1, -(-self.eval_every // self.steps_per_epoch))


def check_num_devices(num_devices: int) -> None:
    """ConfigError unless 1 <= num_devices <= the devices JAX sees."""
    check_positive("--num-devices", num_devices)
    if num_devices > 1 and num_devices > jax.device_count():
        device = jax.devices()[0]
        raise ConfigError("--num-devices", num_devices,
                          f"only {jax.device_count()} {device.platform} device(s) visible; on CPU start with "
                          f"XLA_FLAGS=--xla_force_host_platform_device_count={num_devices} to split it")


def data_mesh(num_devices: int) -> jax.sharding.Mesh:
    """A 1-D mesh named "data" over the first `num_devices` devices."""
    return jax.sharding.Mesh(np.asarray(jax.devices()[:num_devices]), ("data",))


def replicate(tree: Any, num_devices: int) -> Any:
    """Place `tree` (a train state) on every device of the data mesh; a no-op for one device. The jitted epoch
    keeps parameters replicated and splits only the SGD batch (`Trainer.shard_batch`)."""
    if num_devices == 1:
        return tree
    return jax.device_put(tree, NamedSharding(data_mesh(num_devices), PartitionSpec()))


@struct.dataclass
class TrainState:
    agent: Any
    env_state: State  # batched over num_envs
    buffer: Any  # the replay's state (`buffers.replay`)
    key: jax.Array
    env_steps: jax.Array  # [] int32, per seed
    epoch: jax.Array  # [] int32, learning epochs done (prefill excluded)
    # A group run's traced hyper-parameters (agent config field -> [] f32, per row of the vmapped axis: each
    # row's cell's value); None in a plain run, whose values are compiled in (`Trainer.bind`).
    hparams: Any = None


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _first_non_finite(finite: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """finite: name -> [sgd_steps] bool. Returns `nonfinite/step`: index of the first SGD step of the epoch
    with a non-finite metric or parameter (-1 if none), and `nonfinite/NAME`: whether NAME was non-finite
    at that step ("params" = any parameter)."""
    bad = ~jnp.stack(list(finite.values()))  # [names, steps]
    any_bad = jnp.any(bad, axis=0)
    step = jnp.where(jnp.any(any_bad), jnp.argmax(any_bad), -1)
    at_step = bad[:, jnp.maximum(step, 0)] & (step >= 0)
    return {"nonfinite/step": step, **{f"nonfinite/{name}": at_step[i] for i, name in enumerate(finite)}}


def initial_fields(agent: Any, env: Any, num_envs: int, key: jax.Array) -> dict[str, Any]:
    """The fields every loop's state starts with (`TrainState`, `onpolicy.OnPolicyState`): the agent's init,
    `num_envs` reset envs, the key left for training and zero env-step and epoch counters. Every loop splits
    the key the same way here."""
    agent_key, env_key, key = jax.random.split(key, 3)
    return dict(agent=agent.init(agent_key), env_state=acting.reset_envs(env, env_key, num_envs), key=key,
                env_steps=jnp.zeros((), jnp.int32), epoch=jnp.zeros((), jnp.int32))


def evaluate_agent(agent: Any, env: Any, num_envs: int, params: Any, key: jax.Array, return_positions: bool = False):
    """The evaluation of every loop: `num_envs` deterministic episodes from reset (`acting.evaluate`).

    Returns (metrics: name -> [num_envs] of each env's first episode, positions [T, num_envs, 2] of a goal env
    when `return_positions` else None, the goals [num_envs, goal_dim] of a goal env else None).
    """
    spec = env.spec
    goal_env = bool(spec.goal_indices)
    trace = (lambda state: state.obs[:, :2]) if return_positions and goal_env else None
    metrics, positions, reset = acting.evaluate(env, agent.act, params, key, num_envs, trace)
    return metrics, positions, (reset.obs[:, spec.state_dim:] if goal_env else None)


def trajectory_replay(spec: EnvSpec, config: TrainConfig, agent_config: Any) -> TrajectoryReplay:
    """Whole episodes with hindsight goals (CRL, SAC, TD3): --buffer-size rows over --num-envs; the agent's
    batch size, and its discount as the relabelling horizon."""
    return TrajectoryReplay.of(spec, config.num_envs, config.rows_per_env, agent_config.batch_size,
                               agent_config.discount)


def transition_replay(spec: EnvSpec, config: TrainConfig, agent_config: Any) -> TransitionReplay:
    """Flat transitions for envs whose episodes end early (DQN on gymnax and probe envs): --buffer-size
    transitions, rounded up to a multiple of --num-envs; uniform batches of the agent's batch size. next_obs is
    the observation before the auto-reset, so a time-limit end bootstraps."""
    return TransitionReplay.of(spec, config.rows_per_env * config.num_envs, agent_config.batch_size)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The off-policy loop: builds the pure init / epoch / eval functions for one (agent, env, config, replay).
    Hashable.

    One epoch collects one unroll (`acting.rollout`; actions from `agent.explore(agent_state, obs, key,
    env_steps)` where the agent defines it (e.g. DQN's ε schedule), else its stochastic `act`), appends it to
    the replay and runs `sgd_steps_per_collect` SGD steps, each on a batch the replay samples inside the jit.
    """

    agent: Any  # has init(key), act(params, obs, key, deterministic), update(state, batch, key), diagnostics
    env: Any
    eval_env: Any
    config: TrainConfig
    replay: Callable[[EnvSpec, TrainConfig, Any], Replay] = trajectory_replay
    """How the loop stores and samples: replay(env spec, this config, the agent's config) -> a
    `buffers.replay.Replay` (`trajectory_replay`: CRL, SAC, TD3; `transition_replay`: DQN)."""

    @property
    def buffer(self) -> Replay:
        """The replay this loop stores into and samples from (sized from the current config)."""
        return self.replay(self.env.spec, self.config, self.agent.config)

    def bind(self, ts: TrainState) -> Trainer:
        """This loop with the agent config's fields in `ts.hparams` set to their (traced) values, so one compiled
        program trains cells that differ only in them; itself when `ts.hparams` is None (a plain run). The agent
        (a dataclass with a `config` field) and the default replay (its `discount`) are rebuilt from the config."""
        if not ts.hparams:
            return self
        config = dataclasses.replace(self.agent.config, **ts.hparams)
        return dataclasses.replace(self, agent=dataclasses.replace(self.agent, config=config))

    def init(self, key: jax.Array) -> TrainState:
        return TrainState(buffer=self.buffer.init(), **initial_fields(self.agent, self.env, self.config.num_envs, key))

    def start(self, key: jax.Array) -> TrainState:
        """The state training starts from: `init`, then --prefill-steps of random actions (whole epochs)."""
        return jax.lax.fori_loop(0, self.config.prefill_epochs, lambda _, ts: self.prefill_epoch(ts), self.init(key))

    def collect(self, ts: TrainState, key: jax.Array, random_actions: bool = False):
        """One unroll of --unroll-length steps in the --num-envs envs (`acting.rollout`), appended to the replay:
        actions from `agent.explore` where the agent has it, else its stochastic `act` (uniform with
        `random_actions`, as the prefill). Returns (ts with env state, replay and step count advanced, the
        collection's episode metrics); ts.key is not used (`key` is)."""
        spec, num_envs = self.env.spec, self.config.num_envs
        if random_actions:
            policy = lambda obs, step_key: acting.uniform_actions(spec, step_key, num_envs)  # noqa: E731
        elif hasattr(self.agent, "explore"):
            policy = lambda obs, step_key: self.agent.explore(ts.agent, obs, step_key, ts.env_steps)  # noqa: E731
        else:
            policy = lambda obs, step_key: self.agent.act(ts.agent.params, obs, step_key, deterministic=False)  # noqa: E731
        env_state, steps, metrics = acting.rollout(self.env, policy, self.buffer.record, ts.env_state, key,
                                                   self.config.unroll_length)
        ts = ts.replace(env_state=env_state, buffer=self.buffer.add(ts.buffer, steps),
                        env_steps=ts.env_steps + self.config.steps_per_epoch)
        return ts, metrics

    def prefill_epoch(self, ts: TrainState) -> TrainState:
        key, collect_key = jax.random.split(ts.key)
        ts, _ = self.collect(ts.replace(key=key), collect_key, random_actions=True)
        return ts

    def epoch(self, ts: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        """Collect one unroll, then run the SGD steps. Returns metrics averaged over the SGD steps, plus
        `params/global_norm` (of the agent's params after the epoch) and the divergence report under
        `nonfinite/` (see `_first_non_finite`; the runner reads and removes those keys)."""
        if ts.hparams:  # a group run: the plain epoch of the loop bound to this row's hyper-parameters
            new_ts, metrics = self.bind(ts).epoch(ts.replace(hparams=None))
            return new_ts.replace(hparams=ts.hparams), metrics
        cfg = self.config
        key, collect_key, sgd_key = jax.random.split(ts.key, 3)
        ts, collect_metrics = self.collect(ts.replace(key=key), collect_key, random_actions=False)

        def sgd_step(agent_state, step_key):
            sample_key, update_key = jax.random.split(step_key)
            batch = self.shard_batch(self.sample_batch(ts, sample_key))
            agent_state, metrics = self.agent.update(agent_state, batch, update_key)
            # One pass over the params per step (cheap next to the update) tells which step went bad.
            finite = {name: jnp.all(jnp.isfinite(value)) for name, value in metrics.items()}
            finite["params"] = _all_finite(agent_state.params)
            return agent_state, (metrics, finite)

        agent_state, (sgd_metrics, finite) = jax.lax.scan(sgd_step, ts.agent,
                                                          jax.random.split(sgd_key, cfg.sgd_steps_per_collect))
        metrics = {**jax.tree.map(jnp.mean, sgd_metrics), **collect_metrics,
                   "params/global_norm": optax.global_norm(agent_state.params), **_first_non_finite(finite)}
        return ts.replace(agent=agent_state, epoch=ts.epoch + 1), metrics

    def shard_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Split the batch axis across --num-devices (a no-op on one device). With the parameters replicated, XLA's
        SPMD partitioner runs each device's share of the forward and backward passes and all-reduces the
        gradients (and gathers φ, ψ for the InfoNCE logits), so the update equals the one-device update up to
        float reassociation."""
        if self.config.num_devices == 1:
            return batch
        sharding = NamedSharding(data_mesh(self.config.num_devices), PartitionSpec("data"))
        return jax.lax.with_sharding_constraint(batch, sharding)

    def sample_batch(self, ts: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        """One training batch from the replay (see the replay's `sample`)."""
        return self.buffer.sample(ts.buffer, key)

    def diagnostics(self, ts: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        bound = self.bind(ts)  # the batch is relabelled with this row's discount
        return bound.agent.diagnostics(ts.agent, bound.sample_batch(ts, key))

    def evaluate(self, agent_params: Any, key: jax.Array, return_positions: bool = False):
        """`evaluate_agent` on the eval env: (metrics name -> [num_eval_envs], positions or None, goals or None)."""
        return evaluate_agent(self.agent, self.eval_env, self.config.num_eval_envs, agent_params, key,
                              return_positions)


def make_train(trainer: Any) -> Callable[[jax.Array], tuple[Any, dict[str, jax.Array]]]:
    """The whole training of `trainer` (any loop: `Trainer`, `OnPolicyTrainer`) as a pure function of a key
    (PureJaxRL's `make_train(config) -> train(key)`).

    `train(key)` runs `trainer.start(key)` (init + prefill), then `num_epochs` epochs (`trainer.epoch`, a scan),
    and returns (the final state, the metrics of every epoch: name -> [num_epochs, ...]). It is jittable and
    vmappable over keys; `depthrl train` runs the same `start` and `epoch` (runner.py), one jitted epoch at a
    time with evaluations, checkpoints and logs between them, so seed i of a run is
    `jax.vmap(train)(runner.seed_keys(seed, num_seeds))[i]`: the same random draws and operations, equal up to
    float rounding (XLA compiles an epoch inside this one program with other fusions than the runner's program
    of one epoch, which can move the last bit of a float).
    """

    def train(key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        return jax.lax.scan(lambda state, _: trainer.epoch(state), trainer.start(key), None,
                            length=trainer.config.num_epochs)

    return train
