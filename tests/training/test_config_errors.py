"""Every invalid value fails before any compute with a message naming its flag."""

import dataclasses
import json

import pytest

from depthrl.cli import main as cli_main
from depthrl.errors import ConfigError
from depthrl.training import runner
from depthrl.training.command import validate


@pytest.mark.parametrize("section,field,value,flag", [
    ("agent", "depth", 6, "--depth"),
    ("agent", "depth", 0, "--depth"),
    ("agent", "critic_depth", 5, "--critic-depth"),
    ("agent", "actor_depth", 10, "--actor-depth"),
    ("agent", "width", 0, "--width"),
    ("agent", "batch_size", 1, "--batch-size"),
    ("agent", "discount", 1.0, "--discount"),
    ("agent", "critic_lr", 0.0, "--critic-lr"),
    ("agent", "actor_lr", -1e-3, "--actor-lr"),
    ("agent", "energy", "manhattan", "--energy"),
    ("agent", "objective", "triplet", "--objective"),
    ("agent", "norm", "batchnorm", "--norm"),
    ("agent", "activation", "sigmoid", "--activation"),
    ("agent", "network_layout", "loop", "--network-layout"),
    ("agent", "logsumexp_coef", -0.1, "--logsumexp-coef"),
    ("agent", "matmul_precision", "float64", "--matmul-precision"),
    ("train", "num_envs", 0, "--num-envs"),
    ("train", "unroll_length", 1, "--unroll-length"),
    ("train", "sgd_steps_per_collect", 0, "--sgd-steps-per-collect"),
    ("train", "buffer_size", 10, "--buffer-size"),
    ("train", "total_env_steps", -5, "--total-env-steps"),
    ("train", "num_seeds", 0, "--num-seeds"),
    ("train", "prefill_steps", -1, "--prefill-steps"),
    ("env", "env", "cartpole-v9", "--env"),  # unknown (`cartpole` is a registered reward env now)
    ("env", "episode_length", 0, "--episode-length"),
])
def test_invalid_value_names_its_flag(tiny_args, section, field, value, flag):
    args = tiny_args()
    args = dataclasses.replace(args, **{section: dataclasses.replace(getattr(args, section), **{field: value})})
    with pytest.raises(ConfigError) as err:
        validate(args)
    assert flag in str(err.value) and repr(value) in str(err.value)


def test_depth_error_suggests_nearest_valid(tiny_args):
    args = tiny_args()
    with pytest.raises(ConfigError, match="4 or 8"):
        validate(dataclasses.replace(args, agent=dataclasses.replace(args.agent, depth=6)))


@pytest.mark.parametrize("energy", ["l2", "l2_squared", "dot"])
def test_temperature_only_with_the_cosine_energy(tmp_path, capsys, energy):
    """--temperature does nothing to the other energies: giving it with one fails at start, naming the flag."""
    code = cli_main(["train", "crl", "--energy", energy, "--temperature", "0.5", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "--temperature=0.5 is invalid: only with --energy cosine" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert cli_main(["train", "crl-pair", "--energy", energy, "--temperature", "2"]) == 2  # the pair's CRL flags too
    assert "--temperature" in capsys.readouterr().err


def test_temperature_with_the_cosine_energy_is_accepted(tiny_args):
    args = tiny_args()
    validate(dataclasses.replace(args, agent=dataclasses.replace(args.agent, energy="cosine", temperature=0.5)))


def test_cli_reports_bad_flag_without_training(tmp_path, capsys):
    code = cli_main(["train", "crl", "--depth", "6", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "--depth" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # failed before creating anything


def test_cli_unknown_preset(capsys):
    assert cli_main(["train", "crl", "--preset", "nope"]) == 2
    assert "quickstart" in capsys.readouterr().err


def test_cli_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "crl", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--depth", "--critic-depth", "--actor-depth", "--energy", "--objective", "--num-envs",
                 "--unroll-length", "--sgd-steps-per-collect", "--num-seeds", "--run-dir", "--resume",
                 "--overwrite", "--layout", "--stitching", "--preset", "--remat", "--matmul-precision"):
        assert flag in text, flag


def test_matmul_precision_is_recorded_in_config_json(tiny_args):
    args = tiny_args()
    args = dataclasses.replace(args, agent=dataclasses.replace(args.agent, matmul_precision="highest"))
    validate(args)
    stored = json.loads(json.dumps(runner.to_dict(args)))
    assert stored["agent"]["matmul_precision"] == "highest"
    assert runner.from_dict(type(args), stored).agent.matmul_precision == "highest"
    del stored["agent"]["matmul_precision"]  # a config.json written before the flag existed loads as "default"
    assert runner.from_dict(type(args), stored).agent.matmul_precision == "default"
