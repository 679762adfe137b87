"""Presets: every listed preset parses, validates, builds and is costed; two run end to end at small size, and
every paper-scale (physics) preset runs one scaled-down epoch under `-m slow` (one run per env: the presets of
an env differ only in depth, which the scale-down sets), its flags checked in the default run."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest
import tyro

from depthrl import cli
from depthrl.commands import presets as presets_cli
from depthrl.envs import physics
from depthrl.envs.physics import catalog
from depthrl.training import checkpoint as ckpt
from depthrl.training import command, estimate, presets, registry, runner, runs


def _parse(entry):
    """The parse the CLI does for `depthrl train KIND --preset NAME`."""
    default = dataclasses.replace(entry.args, preset=entry.name)
    args = tyro.cli(type(entry.args), args=["--preset", entry.name], default=default)
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


# The two preset runs below train the same programs (the depth-4 experiment preset differs from the quick start
# only in its budget, which no program reads: `runner.programs`): on one xdist worker (make test: --dist
# loadgroup) the second reuses the first's, 2 s instead of 14-17 s.
@pytest.mark.xdist_group("preset_runs")
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


@pytest.mark.xdist_group("preset_runs")
def test_experiment_preset_end_to_end(tmp_path):
    """The depth-scaling experiment's depth 4 preset, at the quick start's small size (the quick start's programs:
    on the worker of the test above they are reused, elsewhere the session's compile cache has them)."""
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


# A paper-scale preset at CPU size: 2000 env steps in 2 epochs (8 envs × 125 steps, 20 episodes of 100 steps), every
# size flag of the recipe scaled down, the rest (discount, learning rates, energy, objective, the env's own settings
# but episode length) left as the preset sets them.
SCALE_DOWN = {"depth": 4, "width": 16, "repr_dim": 8, "batch_size": 16, "num_envs": 8, "unroll_length": 125,
              "sgd_steps_per_collect": 2, "total_env_steps": 2000, "eval_every": 1000, "num_eval_envs": 2,
              "buffer_size": 2000, "prefill_steps": 0, "episode_length": 100}
SCALE_DOWN_FLAGS = [w for k, v in SCALE_DOWN.items() for w in (f"--{k.replace('_', '-')}", str(v))]
GPU_PRESETS = [e for e in presets.all_presets() if e.scale == "gpu"]
GPU_ENVS = list(dict.fromkeys(e.env.env for e in GPU_PRESETS))


def test_every_gpu_preset_scales_down_through_flags_and_keeps_the_rest_of_its_recipe():
    """What the scaled-down runs below run, for every paper-scale preset: the preset parsed with the size flags
    after it (as `depthrl train crl --preset NAME --depth 4 ...`), validated, every other field the preset's."""
    assert set(GPU_ENVS) >= set(presets.TABLE1_ENVS.values())
    for entry in GPU_PRESETS:
        default = dataclasses.replace(registry.get(entry.kind).preset_args()[entry.name], preset=entry.name)
        args = tyro.cli(registry.get(entry.kind).args, args=["--preset", entry.name, *SCALE_DOWN_FLAGS],
                        default=default)
        command.validate_config(args)
        flat = {**dataclasses.asdict(args.env), **dataclasses.asdict(args.agent), **dataclasses.asdict(args.train)}
        assert {k: flat[k] for k in SCALE_DOWN} == SCALE_DOWN, entry.name
        for section in ("env", "agent", "train"):
            for field in dataclasses.fields(getattr(entry, section)):
                if field.name not in SCALE_DOWN:
                    assert getattr(getattr(args, section), field.name) == getattr(getattr(entry, section),
                                                                                 field.name), (entry.name, field)
    assert {e.env.env for e in GPU_PRESETS if e.agent.depth == 4} == {e.env.env for e in GPU_PRESETS
                                                                      if e.agent.depth == 64}


@pytest.mark.slow  # the fast test above checks every preset's config; test_physics runs each env family
@pytest.mark.skipif(not physics.available(), reason=f"physics extra missing: {physics.INSTALL_COMMAND}")
@pytest.mark.parametrize("env", GPU_ENVS)
def test_gpu_preset_runs_scaled_down(env, tmp_path):
    """`depthrl train crl --preset ENV-d64` plus the scale-down flags: builds the physics env, compiles, trains 2000
    env steps (2 epochs), evaluates and checkpoints twice, leaving a run directory that `--resume` restores. A
    subprocess with the suite's XLA options (optimisation level 0 and XLA CPU's older fusion emitters: brax and
    MJX compile slowly on CPU, and with the older emitters the MJX arm's level-0 code also runs fast; with the
    newer emitters at level 0 it ran hundreds of times slower). Measured on the 2-core CPU, 2026-12-01:
    `arm-push-hard` 144 s wall (134 s of CPU), the other envs in docs/physics.md."""
    name = next(e.name for e in GPU_PRESETS if e.env.env == env and e.agent.depth == 64)
    run_dir = tmp_path / name
    argv = [sys.executable, "-m", "depthrl.cli", "train", "crl", "--preset", name, *SCALE_DOWN_FLAGS,
            "--run-dir", str(run_dir), "--no-progress", "--no-plots", "--no-tensorboard", "--no-compile-cache"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == name and config["env"]["env"] == env and config["agent"]["depth"] == 4
    rows = runner.read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["env_steps"] == 2000
    for row in rows:
        assert all(abs(float(row[k])) < float("inf") for k in ("critic/loss", "eval/final_distance"))
        assert 0.0 <= row["eval/time_at_goal"] <= 1.0 and 0 < row["eval/episode_length"] <= 100
        if catalog.ENVS[env].robot == "humanoid":  # an untrained Humanoid falls (torso below 1 m): its episode ends
            assert row["eval/episode_length"] < 100, row["eval/episode_length"]  # measured 34-80
        if catalog.ENVS[env].robot == "arm":  # the arm never ends early
            assert row["eval/episode_length"] == 100
    # a run directory `--resume` can continue: its checkpoint intact and restored as resume restores it, every
    # array of the train state (the MJX arm's empty actuator activations included) back in its shape
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[-1]
    assert ckpt.epoch_of(newest) == 2 and ckpt.verify(newest) is None
    loaded = runs.load(run_dir)
    abstract = runner.abstract_state(loaded.trainer, runner.seed_keys(0, 1))
    assert jax.tree.structure(loaded.state) == jax.tree.structure(abstract) and loaded.epoch == 2
    shapes = [[(x.shape, x.dtype) for x in jax.tree.leaves(tree)] for tree in (loaded.state, abstract)]
    assert shapes[0] == shapes[1]
    assert int(loaded.state.env_steps[0]) == 2000


def test_depth_showcase_presets_differ_only_by_depth():
    described = presets.by_name()
    showcase = [described[f"depth-showcase-d{d}"] for d in (4, 16, 64)]
    assert [p.agent.depth for p in showcase] == [4, 16, 64]
    assert {p.env for p in showcase} == {presets.SHOWCASE_ENV} and presets.SHOWCASE_ENV.env == "crawler-maze-u4"
    assert presets.SHOWCASE_ENV.random_start and presets.SHOWCASE_TRAIN.total_env_steps == 3_000_000
    assert {p.train for p in showcase} == {presets.SHOWCASE_TRAIN}
    assert {dataclasses.replace(p.agent, depth=4) for p in showcase} == {showcase[0].agent}


def test_table1_has_the_humanoid_big_maze_and_the_stitching_preset_uses_forward_pairs():
    """The paper's Table 1 (arXiv 2503.14858): Humanoid Big Maze, depth 4 → 64: 0.06 → 59 steps at goal; its GPU
    presets train on humanoid-big-maze. The Ant stitching presets use the paper code's forward pairs."""
    assert presets.TABLE1["Humanoid Big Maze"] == (0.06, 59.0)
    described = presets.by_name()
    assert described["humanoid-big-maze-d64"].env.env == "humanoid-big-maze"
    assert "0.06 → 59" in described["humanoid-big-maze-d4"].paper
    assert presets.paper_steps_at_goal("humanoid-big-maze", 64) == 59.0
    for depth in (4, 64):
        env = described[f"ant-stitch-d{depth}"].env
        assert (env.env, env.stitch_pairs) == ("ant-u4-maze-stitch", "forward")
