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
from pathlib import Path

import jax
import numpy as np
import pytest

from depthrl.errors import ConfigError
from depthrl.training import command, runner
from depthrl.training import runs as run_dirs
from depthrl.training.command import validate
from tiny_runs import main, subprocess_env, tiny_crl_args

# One xdist worker runs this module (make test: --dist loadgroup), so its module fixture (a two-device
# subprocess) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("two_devices")

# The child: the tiny run with --num-devices 2 (path and tests/ folder as arguments), then its compiled epoch's
# text (loaded from the compile cache it shares with this session) and the batch-divides check.
TWO_DEVICES = textwrap.dedent(r'''
    import dataclasses, json, sys
    import jax
    from depthrl.errors import ConfigError
    from depthrl.training import command, runner
    sys.path.insert(0, sys.argv[2])
    from depthrl.training.loop import replicate
    from tiny_runs import tiny_crl_args

    assert jax.device_count() == 2, jax.devices()
    args = tiny_crl_args(sys.argv[1], total_env_steps=800, eval_every=800, num_devices=2)
    assert command.run(args) == 0
    trainer = command.build(args)
    abstract = runner.place(runner.abstract_state(trainer, runner.seed_keys(0, 1)), 2)
    epoch = runner.compile_programs(trainer, abstract)[0]
    out = {"all_reduce_in_epoch": "all-reduce" in epoch.as_text(),
           "state_devices": sorted({len(s.device_set) for s in jax.tree.leaves(epoch.input_shardings[0])})}
    try:
        command.validate(dataclasses.replace(args, agent=dataclasses.replace(args.agent, batch_size=31)))
        out["odd_batch_error"] = None
    except ConfigError as err:
        out["odd_batch_error"] = str(err)
    print("RESULT " + json.dumps(out))
''')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run (2 epochs, seed 0) on one device here and on two in a child process:
    (one-device run dir, two-device run dir, the child's results)."""
    base = tmp_path_factory.mktemp("sharding")
    one, two = base / "one", base / "two"
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()  # + the suite's
    env = {**subprocess_env(), "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    child = subprocess.Popen([sys.executable, "-c", TWO_DEVICES, str(two), str(Path(__file__).parents[1])],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert main(tiny_crl_args(one, total_env_steps=800, eval_every=800)) == 0  # meanwhile, on one device
    stdout, stderr = child.communicate(timeout=900)
    assert child.returncode == 0, stderr[-3000:]
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return one, two, json.loads(line.removeprefix("RESULT "))


def test_sharded_run_equals_the_one_device_run(runs):
    """Same seed: the two-device run's parameters after 2 epochs (its checkpoint) and its logged losses equal
    the one-device run's, up to the float reassociation of the gradient all-reduce."""
    one, two, _ = runs
    _, trainer, state = run_dirs.load_run(one)
    sharded = runner.restore_checkpoint(trainer, runner.seed_keys(0, 1), two / "checkpoints" / "epoch_00000002")
    diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)),
                         state.agent.params, sharded.agent.params)
    assert max(jax.tree.leaves(diffs)) < 1e-4, diffs
    assert int(np.asarray(sharded.epoch)[0]) == 2
    row_one, row_two = runner.read_metrics(one)[-1], runner.read_metrics(two)[-1]
    for name in ("critic/loss", "actor/loss"):
        a, b = row_one[name], row_two[name]
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (name, a, b)
    assert row_one["env_steps"] == row_two["env_steps"] == 800 and 0.0 <= row_two["eval/success"] <= 1.0
    assert row_two["memory/compiled_peak_bytes"] > 0  # the memory check ran on the two-device programs


def test_the_two_device_epoch_is_data_parallel(runs, tmp_path):
    assert runs[2]["all_reduce_in_epoch"]  # the gradients are all-reduced across the two devices
    assert runs[2]["state_devices"] == [2]  # and the whole train state (parameters too) lives on both
    args = tiny_crl_args(tmp_path / "unused")
    trainer = command.build(args)
    epoch = runner.compile_programs(trainer, runner.abstract_state(trainer, runner.seed_keys(0, 1)))[0]
    assert "all-reduce" not in epoch.as_text()  # one device: nothing to reduce (loaded from the compile cache)


def test_batch_must_divide_across_devices(runs):
    message = runs[2]["odd_batch_error"]
    assert message is not None and "--num-devices" in message and "--batch-size=31" in message


def test_more_devices_than_visible_is_a_config_error(tiny_args):
    import jax

    args = tiny_args()
    too_many = jax.device_count() + 1
    args = dataclasses.replace(args, train=dataclasses.replace(args.train, num_devices=too_many))
    with pytest.raises(ConfigError) as err:
        validate(args)
    assert err.value.flag == "--num-devices" and "xla_force_host_platform_device_count" in str(err.value)
