"""docs/extending.md: its complete example (a user's own goal env and agent, registered from the user's code)
runs as written: `depthrl train gcsl` trains on the registered `open-square` env and writes its run directory;
the user's flags and the env's are checked at start. Registration is undone after the test."""

import json
import re
from pathlib import Path

import pytest

from depthrl import cli
from depthrl.envs import registry as env_registry
from depthrl.training import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture
def example(monkeypatch):
    """The namespace of the doc's python block, executed as a module (not __main__); registries restored."""
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))
    monkeypatch.setattr(env_registry, "GOAL_ENVS", dict(env_registry.GOAL_ENVS))
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace = {"__name__": "my_extension"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_documented_env_and_agent_train_from_the_cli(example, tmp_path, capsys):
    run_dir = tmp_path / "gcsl"
    flags = ["--num-envs", "8", "--unroll-length", "40", "--sgd-steps-per-collect", "4", "--batch-size", "32",
             "--total-env-steps", "640", "--eval-every", "640", "--num-eval-envs", "8", "--buffer-size", "1280",
             "--width", "16", "--no-progress", "--no-plots", "--no-tensorboard", "--no-compile-cache"]
    assert cli.main(["train", "gcsl", *flags, "--run-dir", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "gcsl" and config["env"]["env"] == "open-square" and config["agent"]["width"] == 16
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "eval/success" in r] == [2]
    assert all(0.0 <= r["eval/final_distance"] <= 2 * 2**0.5 for r in rows if "eval/final_distance" in r)
    assert "actor/loss" in rows[-1]
    # a flag of the user's config is checked at start and named; a maze flag is refused for the user's env
    assert cli.main(["train", "gcsl", "--noise", "0", "--run-dir", str(tmp_path / "x")]) == 2
    assert "--noise" in capsys.readouterr().err
    assert cli.main(["train", "crl", "--env", "open-square", "--random-start", "--run-dir", str(tmp_path / "y")]) == 2
    assert "--random-start" in capsys.readouterr().err


def test_register_env_checks_the_contract_and_names(example):
    open_square = example["OpenSquare"]
    with pytest.raises(ValueError, match="already registered"):
        env_registry.register_env("open-square", open_square, episode_length=40)
    with pytest.raises(ValueError, match="already registered"):
        env_registry.register_env("point-maze-u", open_square, episode_length=40)
    import dataclasses

    bad = dataclasses.replace(open_square().spec, obs_dim=5)
    with pytest.raises(ValueError, match="obs_dim=5 must be state_dim"):
        env_registry.register_env("bad-square", lambda: open_square(spec=bad), episode_length=40)
    assert "open-square" in [row[0] for row in env_registry.list_envs()]
