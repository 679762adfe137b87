"""--num-devices: the SGD batch split across devices (parameters replicated) gives the one-device results.

JAX fixes its device count when it starts, so the two-device checks run in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=2 (two CPU "devices" on this machine).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from depthrl.errors import ConfigError
from depthrl.training.command import validate

# One xdist worker runs this module (make test: --dist loadgroup), so its module fixture (a two-device
# subprocess, ~40 s) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("two_devices")

TWO_DEVICES = textwrap.dedent(r'''
    import dataclasses, json, pathlib, sys
    import jax, numpy as np
    from depthrl.agents.crl import CRLConfig
    from depthrl.envs.registry import EnvConfig
    from depthrl.errors import ConfigError
    from depthrl.training import command, runner
    from depthrl.training.loop import TrainConfig, replicate
    from depthrl.training.registry import AGENTS
    Args = AGENTS["crl"].args

    assert jax.device_count() == 2, jax.devices()
    out = {}

    def make(num_devices, run_dir, batch_size=32):
        return Args(env=EnvConfig(env="point-maze", layout="######/#R...#/#....#/#...G#/######", episode_length=50),
                    agent=CRLConfig(depth=4, width=16, repr_dim=8, batch_size=batch_size),
                    train=TrainConfig(num_envs=16, unroll_length=25, sgd_steps_per_collect=4, total_env_steps=800,
                                      eval_every=800, num_eval_envs=8, buffer_size=4000, num_devices=num_devices),
                    run_dir=run_dir, progress=False, plots=False, tensorboard=False, compile_cache=False)

    # 1. The jitted epoch itself: two epochs on one device and on two, from the same state (the run's first two).
    states, metrics, hlo = {}, {}, {}
    for n in (1, 2):
        trainer = command.build(make(n, "unused"))
        state = replicate(jax.jit(jax.vmap(trainer.init))(runner.seed_keys(0, 1)), n)
        epoch = jax.jit(jax.vmap(trainer.epoch)).lower(state).compile()
        hlo[n], metrics[n] = epoch.as_text(), []
        for _ in range(2):
            state, m = epoch(state)
            metrics[n].append(jax.device_get(m))
        states[n] = jax.device_get(state.agent.params)
        out[f"param_devices_{n}"] = len(jax.tree.leaves(state.agent.params)[0].sharding.device_set)
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)), states[1], states[2])
    out["max_param_rel_diff"] = max(jax.tree.leaves(diffs))
    out["critic_loss"] = [float(metrics[n][-1]["critic/loss"][0]) for n in (1, 2)]
    out["actor_loss"] = [float(metrics[n][-1]["actor/loss"][0]) for n in (1, 2)]
    out["one_device_mean_critic_loss"] = float(np.mean([m["critic/loss"][0] for m in metrics[1]]))
    out["all_reduce_in_two_device_epoch"] = "all-reduce" in hlo[2]
    out["all_reduce_in_one_device_epoch"] = "all-reduce" in hlo[1]
    print("EPOCH " + json.dumps(out), flush=True)

    # 2. The whole run (runner: replicate, checkpoints, evaluation) with --num-devices 2: its two epochs are
    #    the ones above, so its logged critic loss (the mean over the epochs) is the one-device mean.
    args = make(2, f"{sys.argv[1]}/run")
    assert command.run(args) == 0
    row = runner.read_metrics(pathlib.Path(args.run_dir))[-1]
    out["run_critic_loss"] = row["critic/loss"]
    out["run_compiled_peak_bytes"] = row["memory/compiled_peak_bytes"]  # compiled for the replicated state
    out["run_success"] = row["eval/success"]

    # 3. Validation: the batch must divide across the devices.
    try:
        command.validate(make(2, f"{sys.argv[1]}/odd", batch_size=31))
        out["odd_batch_error"] = None
    except ConfigError as err:
        out["odd_batch_error"] = str(err)
    print("RESULT " + json.dumps(out))
''')


@pytest.fixture(scope="module")
def two_device_result(tmp_path_factory):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(tmp_path_factory.mktemp("sharding"))],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_sharded_epoch_equals_one_device_epoch(two_device_result):
    r = two_device_result
    assert r["param_devices_1"] == 1 and r["param_devices_2"] == 2  # parameters replicated on both devices
    assert r["all_reduce_in_two_device_epoch"] and not r["all_reduce_in_one_device_epoch"]  # really data-parallel
    assert r["max_param_rel_diff"] < 1e-4, r["max_param_rel_diff"]
    for name in ("critic_loss", "actor_loss"):
        one, two = r[name]
        assert abs(one - two) <= 1e-4 * max(1.0, abs(one)), (name, one, two)


def test_sharded_run_equals_one_device_epochs(two_device_result):
    one, two = two_device_result["one_device_mean_critic_loss"], two_device_result["run_critic_loss"]
    assert abs(one - two) <= 1e-4 * max(1.0, abs(one)), (one, two)
    assert 0.0 <= two_device_result["run_success"] <= 1.0
    assert two_device_result["run_compiled_peak_bytes"] > 0  # the memory check ran on the two-device programs


def test_batch_must_divide_across_devices(two_device_result):
    message = two_device_result["odd_batch_error"]
    assert message is not None and "--num-devices" in message and "--batch-size=31" in message


def test_more_devices_than_visible_is_a_config_error(tiny_args):
    import jax

    args = tiny_args()
    too_many = jax.device_count() + 1
    args = dataclasses.replace(args, train=dataclasses.replace(args.train, num_devices=too_many))
    with pytest.raises(ConfigError) as err:
        validate(args)
    assert err.value.flag == "--num-devices" and "xla_force_host_platform_device_count" in str(err.value)
