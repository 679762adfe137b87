"""The agent registry: one entry per agent, preset names unique across agents, every listed preset runnable
as `depthrl train --preset NAME` (parsed and validated here, nothing trained)."""

import dataclasses

import pytest

from depthrl import cli
from depthrl.commands import presets as presets_cli
from depthrl.commands import train
from depthrl.errors import ConfigError
from depthrl.training import command, registry


def test_every_train_subcommand_is_a_registry_entry_and_its_args_record_its_name():
    subcommands = [s for g, s in cli.COMMANDS if g == "train"]
    assert sorted(subcommands) == sorted(registry.AGENTS)
    for name, entry in registry.AGENTS.items():
        args = entry.args()
        assert args.kind == name and isinstance(args.agent, entry.config)
        assert isinstance(args, registry.RunArgs)


def test_preset_names_are_unique_across_agents():
    names = [p.name for p in registry.all_presets()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert {"quickstart", "sac-quickstart", "td3-quickstart", "dqn-cartpole", "ppo-cartpole"} <= set(names)


@pytest.fixture
def captured(monkeypatch):
    """`depthrl train ...` parsed by the CLI, validated (config only), and not run: the Args it would train."""
    seen = []

    def fake_main(args):
        command.validate_config(args)
        seen.append(args)
        return 0

    monkeypatch.setattr(train, "main", fake_main)
    return seen


def test_every_listed_preset_runs_from_train_preset_name(captured, tmp_path):
    listed = presets_cli.entries()
    assert len(listed) == len(registry.all_presets())
    for entry in listed:
        assert cli.main(["train", "--preset", entry.name, "--run-dir", str(tmp_path / entry.name)]) == 0, entry.name
        args = captured[-1]
        assert args.kind == entry.kind and args.preset == entry.name
        assert (args.env, args.agent, args.train) == (entry.args.env, entry.args.agent, entry.args.train)


def test_the_readme_quick_start_and_agent_preset_forms(captured, tmp_path, capsys):
    assert cli.main(["train", "crl", "--preset", "quickstart", "--run-dir", str(tmp_path / "q")]) == 0
    assert captured[-1].kind == "crl" and captured[-1].train.total_env_steps == 1_500_000
    assert cli.main(["train", "--preset", "dqn-cartpole", "--depth", "8", "--run-dir", str(tmp_path / "d")]) == 0
    assert captured[-1].kind == "dqn" and captured[-1].agent.depth == 8  # a flag after the preset overrides it
    assert cli.main(["train", "sac", "--preset", "quickstart"]) == 2  # CRL's preset is not SAC's
    assert "choose one of sac-quickstart" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "no-such-preset"]) == 2
    assert cli.main(["train", "no-such-agent"]) == 2
    assert "unknown agent" in capsys.readouterr().err


def test_register_agent_refuses_a_taken_name_or_preset():
    crl = registry.get("crl")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_agent(crl)
    with pytest.raises(ValueError, match="preset names already taken: .*quickstart"):
        registry.register_agent(dataclasses.replace(crl, name="crl-copy"))
    with pytest.raises(ConfigError, match="unknown agent"):
        registry.get("crl-copy")


def test_the_command_takes_the_entry_from_its_args_not_from_the_name():
    """An entry's args carry the entry: a copy under a name nobody registered validates and builds its own
    agent (a lookup by `kind` would fail), and each agent's replay is the one its entry declares."""
    from depthrl.buffers.replay import TrajectoryReplay, TransitionReplay

    copy = dataclasses.replace(registry.AGENTS["sac"], name="sac-unregistered")
    args = copy.args()
    assert args.kind == "sac-unregistered" and "sac-unregistered" not in registry.AGENTS
    assert command.entry_of(args) is copy
    command.validate_config(args)
    trainer = command.build(args)
    assert isinstance(trainer.agent, registry.AGENTS["sac"].agent) and isinstance(trainer.buffer, TrajectoryReplay)
    dqn = command.build(registry.AGENTS["dqn"].args())
    assert isinstance(dqn.buffer, TransitionReplay)
    assert dqn.buffer.capacity == dqn.config.rows_per_env * dqn.config.num_envs  # --buffer-size, whole rows
    with pytest.raises(TypeError, match="not the args of an agent entry"):
        command.entry_of(registry.RunArgs())
