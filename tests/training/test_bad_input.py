"""Bad input fails before any compute, naming the flag, the value and what is allowed: one test per entry of
issue 10's table that tests/training/test_config_errors.py and test_crl_train.py do not already cover
(docs/reliability.md maps every entry to its tests)."""

import dataclasses
import json

import pytest

from depthrl.cli import main as cli_main
from depthrl.errors import ConfigError
from depthrl.training import runner
from depthrl.training.command import resolve_resume, validate
from depthrl.training.command import run as main
from tiny_runs import reference_args, tiny_crl_args, tiny_env


def _with(args, section, **kw):
    return dataclasses.replace(args, **{section: dataclasses.replace(getattr(args, section), **kw)})


def _error(args) -> str:
    with pytest.raises(ConfigError) as err:
        validate(args)
    return str(err.value)


# -- sizes, γ and learning rates (the fields the existing table does not list) ----------------------------
@pytest.mark.parametrize("section,field,value,flag", [
    ("agent", "repr_dim", 0, "--repr-dim"),
    ("agent", "layers_per_block", 0, "--layers-per-block"),
    ("agent", "temperature", 0.0, "--temperature"),
    ("train", "num_eval_envs", 0, "--num-eval-envs"),
    ("train", "eval_every", 0, "--eval-every"),
    ("env", "success_radius", -0.5, "--success-radius"),
    ("env", "episode_length", -3, "--episode-length"),
])
def test_non_positive_size(tmp_path, section, field, value, flag):
    message = _error(_with(tiny_crl_args(tmp_path / "r"), section, **{field: value}))
    assert message.startswith(f"{flag}={value!r} is invalid: must be > 0")


def test_non_positive_keep_checkpoints(tmp_path):
    message = _error(dataclasses.replace(tiny_crl_args(tmp_path / "r"), keep_checkpoints=0))
    assert message.startswith("--keep-checkpoints=0 is invalid")


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5, float("nan")])
def test_discount_outside_the_open_unit_interval(tmp_path, gamma):
    message = _error(_with(tiny_crl_args(tmp_path / "r"), "agent", discount=gamma))
    assert message.startswith(f"--discount={gamma!r} is invalid: must lie strictly between 0 and 1")


def test_sac_discount_and_learning_rate_are_checked_too(tmp_path):
    from depthrl.agents.sac import SACConfig
    from depthrl.training.registry import AGENTS

    args = AGENTS["sac"].args(env=tiny_env(), agent=SACConfig(discount=1.0), run_dir=str(tmp_path / "r"))
    assert _error(args).startswith("--discount=1.0 is invalid")
    assert _error(dataclasses.replace(args, agent=SACConfig(critic_lr=-1.0))).startswith("--critic-lr=-1.0")


@pytest.mark.parametrize("flag", ["critic_lr", "actor_lr", "alpha_lr"])
@pytest.mark.parametrize("lr", [0.0, -3e-4])
def test_learning_rate_not_positive(tmp_path, flag, lr):
    message = _error(_with(tiny_crl_args(tmp_path / "r"), "agent", **{flag: lr}))
    assert message.startswith(f"--{flag.replace('_', '-')}={lr!r} is invalid: must be > 0")


# -- unknown names: the message lists the valid ones ------------------------------------------------------
@pytest.mark.parametrize("field,value,flag,valid", [
    ("energy", "manhattan", "--energy", ["l2", "l2_squared", "dot", "cosine"]),
    ("objective", "triplet", "--objective", ["forward_infonce", "backward_infonce", "symmetric_infonce",
                                             "binary_nce"]),
])
def test_unknown_energy_or_loss_lists_the_valid_ones(tmp_path, field, value, flag, valid):
    message = _error(_with(tiny_crl_args(tmp_path / "r"), "agent", **{field: value}))
    assert message.startswith(f"{flag}={value!r} is invalid")
    assert all(name in message for name in valid), message


def test_unknown_critic_loss_lists_the_valid_ones(tmp_path, capsys):
    assert cli_main(["train", "sac", "--critic-loss", "huber", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--critic-loss='huber'" in err and all(n in err for n in ("mse", "hl-gauss", "two-hot", "c51"))
    assert not (tmp_path / "r").exists()


def test_unknown_env_lists_the_valid_ones(tmp_path, capsys):
    assert cli_main(["train", "crl", "--env", "ant-maze-nope", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--env='ant-maze-nope' is invalid" in err and "point-maze-u" in err and "point-maze-big" in err
    assert not (tmp_path / "r").exists()


def test_unknown_agent_lists_the_valid_ones(capsys):
    assert cli_main(["train", "a2c"]) == 2
    err = capsys.readouterr().err
    assert all(kind in err for kind in ("crl", "sac", "td3")), err


def test_run_of_an_unknown_agent_lists_the_valid_ones(reference_copy):
    config = json.loads((reference_copy / "config.json").read_text())
    (reference_copy / "config.json").write_text(json.dumps({**config, "kind": "a2c"}))
    with pytest.raises(ConfigError, match=r"'a2c'.*known: .*crl"):
        resolve_resume(dataclasses.replace(reference_args(reference_copy), resume=str(reference_copy)))


# -- malformed layouts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout,what", [
    ("#####/#R.X#/#..G#/#####", "unknown character 'X' at row 1, column 3"),
    ("#####/#R..#/#.G#/#####", "row 2 (from 0) has 4 columns but row 0 has 5"),
    ("#####/#...#/#..G#/#####", "no reset cell"),
    ("#####/#R..#/#...#/#####", "no goal cell"),
    ("#######/#R.#..#/#..#.G#/#######", "unreachable"),
    ("/ /", "empty"),
    ("no-such-maze", "not a built-in layout"),
])
def test_malformed_layout(tmp_path, layout, what):
    message = _error(_with(tiny_crl_args(tmp_path / "r"), "env", layout=layout))
    assert message.startswith(f"--layout={layout!r} is invalid") and what in message, message


# -- --resume and the run directory --------------------------------------------------------------------------
def test_resume_with_a_conflicting_train_flag(reference, capsys):
    _, run_dir, _ = reference
    assert cli_main(["train", "crl", "--resume", str(run_dir), "--num-envs", "32"]) == 2
    err = capsys.readouterr().err
    assert "--num-envs=32 is invalid: conflicts with the resumed run's config (16)" in err


def test_resume_takes_the_runs_config_and_the_shell_flags_given(reference):
    from depthrl.training.registry import AGENTS
    Args = AGENTS["crl"].args

    args, run_dir, _ = reference
    given = Args(resume=str(run_dir), skip_non_finite=True, keep_checkpoints=5, memory_check=False, plots=False,
                 checkpoint_buffer=False)
    resolved = resolve_resume(given)
    assert (resolved.agent, resolved.env, resolved.train) == (args.agent, args.env, args.train)
    assert (resolved.skip_non_finite, resolved.keep_checkpoints, resolved.memory_check) == (True, 5, False)
    assert resolved.checkpoint_buffer is False and resolve_resume(Args(resume=str(run_dir))).checkpoint_buffer
    assert resolved.run_dir == str(run_dir) and resolved.compile_cache is False  # not given: the run's


def test_resume_and_overwrite_together(reference, tmp_path):
    _, run_dir, _ = reference
    with pytest.raises(ConfigError, match="--overwrite=True is invalid: not with --resume"):
        main(dataclasses.replace(tiny_crl_args(tmp_path / "x"), resume=str(run_dir), overwrite=True))


def test_resume_of_another_agents_run(reference):
    from depthrl.training import command
    from depthrl.training.registry import AGENTS

    _, run_dir, _ = reference
    with pytest.raises(ConfigError, match=r"holds a `depthrl train crl` run; resume it with that command"):
        command.run(AGENTS["sac"].args(resume=str(run_dir)))


@pytest.mark.parametrize("content,what", [
    ('{"env": {"env": "point-maze", ', "is not valid JSON"),
    ("[1, 2]", "does not hold a JSON object"),
])
def test_resume_dir_with_an_unreadable_config(tmp_path, content, what):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=f"--resume=.*{what}"):
        main(dataclasses.replace(tiny_crl_args(tmp_path / "x"), resume=str(tmp_path)))


def test_resume_dir_whose_config_has_a_wrongly_typed_field(reference_copy):
    config = json.loads((reference_copy / "config.json").read_text())
    config["agent"]["depth"] = "deep"
    (reference_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"--depth='deep' is invalid: config.json holds a str where int is expected"):
        main(dataclasses.replace(reference_args(reference_copy), resume=str(reference_copy)))


def test_resume_dir_whose_config_fails_validation(reference_copy):
    config = json.loads((reference_copy / "config.json").read_text())
    config["agent"]["depth"] = 6
    (reference_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"--depth=6 is invalid"):
        main(dataclasses.replace(reference_args(reference_copy), resume=str(reference_copy)))


def test_overwrite_never_deletes_a_directory_that_is_not_a_run(tmp_path, capsys):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert cli_main(["train", "crl", "--run-dir", str(precious), "--overwrite"]) == 2
    assert "is not a depthrl run directory (no config.json), so --overwrite will not delete it" in \
        capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "exists and is not a directory" in _error(tiny_crl_args(tmp_path / "file"))


def test_run_dir_check_comes_before_any_compute(reference, monkeypatch):
    """An existing run directory without --overwrite fails in validate(): nothing is built or compiled."""
    from depthrl.training import command

    args, run_dir, _ = reference
    monkeypatch.setattr(command, "build", lambda args: pytest.fail("built before the run-dir check"))
    with pytest.raises(ConfigError, match="--run-dir=.* exists and is not empty: pass --overwrite"):
        main(dataclasses.replace(args, run_dir=str(run_dir)))
    assert runner.read_metrics(run_dir)  # untouched
