"""Presets: every listed preset parses, validates, builds and is costed; two run end to end at small size."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
import tyro

from depthrl import cli, estimate, presets
from depthrl.tools import presets_cli
from depthrl.training import command, runner


def _parse(entry):
    """The parse the CLI does for `depthrl train KIND --preset NAME`."""
    module = command.command_module(entry.kind)
    default = dataclasses.replace(module.PRESETS[entry.name], preset=entry.name)
    args = tyro.cli(module.Args, args=["--preset", entry.name], default=default)
    assert args == default, entry.name
    return args


def _build_and_cost(entry):
    args = _parse(entry)
    command.validate_config(args)
    cost = estimate.estimate(args, command.build(args))
    assert cost.num_params > 0 and cost.flops_per_sgd_step > 0, entry.name
    assert cost.peak_bytes > cost.buffer_bytes > 0, entry.name


def test_every_listed_preset_parses_and_validates_and_cpu_presets_build():
    entries = presets_cli.entries()
    names = {(e.kind, e.name) for e in entries}
    assert {("crl", "quickstart"), ("crl", "depth-u-d4"), ("crl", "depth-u-d16"), ("crl", "depth-u-d64"),
            ("crl", "stitch-d4"), ("crl", "stitch-d64"), ("crl", "repr-d4"), ("crl", "repr-d64")} <= names
    # the paper's Table 1 tasks at depth 4 and 64, for every physics env the registry has
    assert {("crl", f"{env}-d{d}") for env in presets.TABLE1_ENVS.values() for d in (4, 64)} <= names
    for entry in entries:
        command.validate_config(_parse(entry))
        assert entry.description and entry.paper, entry.name
        if entry.scale == "cpu":  # building a physics env takes seconds each: see the slow test below
            _build_and_cost(entry)


@pytest.mark.slow
def test_gpu_presets_build_and_are_costed():
    for entry in presets_cli.entries():
        if entry.scale == "gpu":
            _build_and_cost(entry)


def test_table1_numbers_are_printed_with_the_presets(capsys):
    described = presets.by_name()
    for layout, task in (("u4", "Ant U4-Maze"), ("u5", "Ant U5-Maze"), ("big", "Ant Big Maze"),
                         ("hardest", "Ant Hardest Maze")):
        d4, d64 = presets.TABLE1[task]
        assert f"depth 4: {d4:g} / 1000" in described[f"pm-{layout}-d4"].paper
        assert f"depth 64: {d64:g} / 1000" in described[f"pm-{layout}-d64"].paper
        assert described[f"pm-{layout}-d64"].agent.depth == 64
    for task, env in presets.TABLE1_ENVS.items():
        d4, d64 = presets.TABLE1[task]
        assert f"depth 64: {d64:g} / 1000" in described[f"{env}-d64"].paper
        assert described[f"{env}-d64"].train.num_envs == 512 and described[f"{env}-d64"].agent.batch_size == 512
    assert presets_cli.main(presets_cli.Args(json=True)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(presets_cli.entries())
    ant_u4 = next(r for r in rows if r["name"] == "pm-u4-d64")
    assert "286" in ant_u4["paper"] and ant_u4["config"]["agent"]["depth"] == 64
    assert ant_u4["command"] == "depthrl train crl --preset pm-u4-d64"
    assert presets_cli.main(presets_cli.Args(scale="cpu")) == 0
    table = capsys.readouterr().out
    assert "quickstart" in table and "stitch-d64" in table and "11.4" in table


def test_quickstart_preset_end_to_end_with_overrides_recorded(tmp_path, capsys):
    """`depthrl train --preset quickstart` (no agent named), flags after the preset override it."""
    run_dir = tmp_path / "qs"
    rc = cli.main(["train", "--preset", "quickstart", "--total-env-steps", "6400", "--eval-every", "3200",
                   "--run-dir", str(run_dir), "--no-progress", "--no-plots", "--no-tensorboard",
                   "--no-compile-cache"])
    assert rc == 0
    out = capsys.readouterr().out
    assert re.search(r"estimate: 0\.0\d+ M params, [\d.]+ GFLOP per SGD step, peak memory ≈", out), out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "quickstart" and config["kind"] == "crl"
    assert config["agent"]["width"] == 64 and config["train"]["num_eval_envs"] == 256  # from the preset
    assert config["train"]["total_env_steps"] == 6400 and config["run_dir"] == str(run_dir)  # overrides
    rows = runner.read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    last = rows[-1]
    assert 0.0 <= last["eval/success"] <= 1.0 and last["env_steps"] == 6400
    # compile time is logged apart from step time, and a step is far cheaper than compiling
    assert last["compile_s"] > 0 and last["init_s"] > 0 and last["time/epoch_s"] > 0
    assert last["compile_and_init_s"] == pytest.approx(last["compile_s"] + last["init_s"])
    assert last["time/epoch_s"] < last["compile_s"]


def test_experiment_preset_end_to_end(tmp_path):
    """The depth-scaling experiment's depth 4 preset, at the quick start's small size (same shapes: its
    programs come from the session's compile cache)."""
    run_dir = tmp_path / "depth"
    rc = cli.main(["train", "crl", "--preset", "depth-u-d4", "--total-env-steps", "6400", "--eval-every", "3200",
                   "--run-dir", str(run_dir), "--no-progress", "--no-plots", "--no-tensorboard",
                   "--no-compile-cache"])
    assert rc == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "depth-u-d4" and config["env"]["env"] == "point-maze-u"
    assert config["agent"]["depth"] == 4 and config["train"]["total_env_steps"] == 6400
    rows = runner.read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert 0.0 <= rows[-1]["eval/success"] <= 1.0 and rows[-1]["eval/final_distance"] > 0
    assert len(list((Path(run_dir) / "checkpoints").iterdir())) == 2


def test_unknown_preset_is_an_error(capsys):
    assert cli.main(["train", "--preset", "no-such-preset"]) == 2
    assert "depthrl presets" in capsys.readouterr().err
    assert cli.main(["train", "crl", "--preset", "no-such-preset"]) == 2
    assert "quickstart" in capsys.readouterr().err


def test_depth_showcase_presets_differ_only_by_depth():
    described = presets.by_name()
    showcase = [described[f"depth-showcase-d{d}"] for d in (4, 16, 64)]
    assert [p.agent.depth for p in showcase] == [4, 16, 64]
    assert {p.env for p in showcase} == {presets.SHOWCASE_ENV} and presets.SHOWCASE_ENV.env == "crawler-maze-u4"
    assert {p.train for p in showcase} == {presets.SHOWCASE_TRAIN}
    assert {dataclasses.replace(p.agent, depth=4) for p in showcase} == {showcase[0].agent}
