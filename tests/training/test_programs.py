"""`runner.programs`: runs that differ only in host-only train flags share their jitted programs, and no traced
program reads those flags (the sharing would otherwise give a run another run's program)."""

import dataclasses

import jax
import pytest

from depthrl.envs.registry import EnvConfig
from depthrl.training import command, runner
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS
from tiny_runs import tiny_crl_args

# Names a traced program must not read: the host-only fields and the properties computed from them.
_HOST = (*TrainConfig.HOST_ONLY, "num_epochs", "epochs_per_eval")


class _Tripwire:
    """A train config that fails when a host-only value is read (inside a trace: the program would depend on it)."""

    def __init__(self, config):
        object.__setattr__(self, "_config", config)

    def __getattr__(self, name):
        if name in _HOST:
            raise AssertionError(f"a traced program read TrainConfig.{name}")
        return getattr(self._config, name)


def _probe_run(kind: str):
    """A tiny dqn or ppo run on a probe env (prefill for dqn, so its start program collects too)."""
    args = AGENTS[kind].args()
    train = dict(num_envs=4, unroll_length=4, buffer_size=64, prefill_steps=16 if kind == "dqn" else 0)
    return dataclasses.replace(args, env=EnvConfig(env="probe-two-step"),
                               agent=dataclasses.replace(args.agent, depth=4, width=8, batch_size=8),
                               train=dataclasses.replace(args.train, **train))


def _trainer(kind: str):
    return command.build(tiny_crl_args("unused") if kind == "crl" else _probe_run(kind))


@pytest.mark.parametrize("kind", ["crl", "dqn", "ppo"])
def test_no_traced_program_reads_a_host_only_flag(kind):
    trainer = _trainer(kind)
    guarded = dataclasses.replace(trainer, config=_Tripwire(trainer.config))
    keys = runner.seed_keys(0, 2)
    state = jax.eval_shape(jax.vmap(guarded.start), keys)
    jax.eval_shape(jax.vmap(guarded.init), keys)
    jax.eval_shape(jax.vmap(guarded.epoch), state)
    jax.eval_shape(jax.vmap(guarded.diagnostics), state, keys)
    jax.eval_shape(jax.vmap(guarded.evaluate), state.agent.params, keys)
    with pytest.raises(AssertionError, match="seed"):  # the tripwire itself works
        guarded.config.seed  # noqa: B018


def test_runs_differing_only_in_host_only_flags_share_their_programs():
    base = command.build(tiny_crl_args("unused"))
    other = command.build(tiny_crl_args("unused", seed=7, total_env_steps=4800, eval_every=400, num_seeds=3))
    assert runner.programs(base) is runner.programs(other)
    wider = command.build(tiny_crl_args("unused", num_envs=8))
    assert runner.programs(wider) is not runner.programs(base)
