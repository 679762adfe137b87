"""The analysis scripts in experiments/: each builds the grid its docs/results.md section describes, at both
scales, and every cell of it passes the train command's own validation (no compute: the sweep is replaced
by one that only expands and validates the cells). depth_scaling.py, which trains directly, runs a tiny
sweep for real: summary, plot and the skip of a finished depth on a rerun."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import sys
from pathlib import Path

import pytest

from depthrl import sweep
from depthrl.errors import ConfigError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        yield {name: importlib.import_module(name) for name in
               ("common", "depth_width", "batch_depth", "actor_critic_depth", "representations", "stitching",
                "exploration_expressivity", "value_classification", "ablations", "depth_scaling",
                "depth_showcase")}
    finally:
        sys.path.remove(str(EXPERIMENTS))


@pytest.fixture
def sweeps(scripts, monkeypatch):
    """Replace the sweep with one that validates every cell and records (spec, out), then reports no runs."""
    calls = []

    def fake_run_sweep(spec, out, **kwargs):
        cells = sweep.expand(spec, Path(out))  # parses every cell's flags with the train command
        calls.append((spec, Path(out), cells, kwargs))
        return sweep.SweepResult(cells, {c.name: {"status": "done"} for c in cells}, [], [], [], [])

    monkeypatch.setattr(scripts["common"].sweep, "run_sweep", fake_run_sweep)
    return calls


def flag(cell: sweep.Cell, name: str) -> int:
    return int(cell.flags[cell.flags.index(name) + 1])


def options(scripts, name, **kw):
    module = scripts[name]
    cls = next(getattr(module, c) for c in ("ValueOptions", "AblationOptions", "ReprOptions", "Options")
               if hasattr(module, c))
    return cls(progress=False, **kw)


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_every_script_builds_a_valid_grid(scripts, sweeps, tmp_path, scale):
    for name in ("depth_width", "batch_depth", "actor_critic_depth", "stitching", "exploration_expressivity",
                 "ablations"):
        scripts[name].main(options(scripts, name, scale=scale, out=str(tmp_path / name)))
    scripts["value_classification"].main(options(scripts, "value_classification", scale=scale,
                                                  out=str(tmp_path / "vc"), agents=("dqn", "sac", "td3")))
    by_out = {out.relative_to(tmp_path).as_posix(): (spec, cells) for spec, out, cells, _ in sweeps}
    assert sorted(by_out) == ["ablations", "actor_critic_depth", "batch_depth", "depth_width",
                              "exploration_expressivity", "stitching", "vc/dqn", "vc/sac", "vc/td3"]
    paper = scale == "paper"
    # Seeds per cell and env steps per seed: the scale's defaults.
    spec, _ = by_out["batch_depth"]
    assert spec.num_seeds == (5 if paper else 3)
    assert spec.fixed["total_env_steps"] == (100_000_000 if paper else 600_000)
    assert spec.fixed["env"] == ("ant-u4-maze" if paper else "point-maze-u") and "batch_size" not in spec.fixed
    assert spec.axes == {"batch_size": (256, 1024, 4096) if paper else (64, 256),
                         "depth": (4, 64) if paper else (4, 16)}
    # Depth vs width: the deep net has as many hidden weights (depth × width²) as a wider shallow one.
    spec, cells = by_out["depth_width"]
    sizes = [flag(c, "--depth") * flag(c, "--width") ** 2 for c in cells]
    assert len(sizes) != len(set(sizes)) and "width" not in spec.fixed
    # Actor × critic depth: the full grid, the critic depth being --depth.
    _, cells = by_out["actor_critic_depth"]
    pairs = {(flag(c, "--actor-depth") if "--actor-depth" in c.flags else flag(c, "--depth"), flag(c, "--depth"))
             for c in cells}
    depths = (4, 16, 64) if paper else (4, 16)
    assert pairs == {(a, c) for a in depths for c in depths}
    # Stitching: short training pairs, longer unseen evaluation pairs (cpu); the Ant stitching task (paper).
    spec, _ = by_out["stitching"]
    if paper:
        assert spec.fixed["env"] == "ant-u4-maze-stitch"
    else:
        assert spec.fixed["stitching"] is True and spec.fixed["stitch_train_max"] < spec.fixed["stitch_eval_min"]
    # Exploration vs expressivity: collector × learner depth with the shared-buffer pair command.
    spec, _ = by_out["exploration_expressivity"]
    assert spec.kind == "crl-pair" and set(spec.axes) == {"collector_depth", "depth"}
    # Ablations: the baseline block and one part removed or replaced each.
    spec, cells = by_out["ablations"]
    assert [v["name"] for v in spec.axes["variant"]] == ["baseline", "no skip", "no norm", "relu"]
    assert any("--no-skip" in c.flags for c in cells) and any("none" in c.flags for c in cells)
    # Critic loss × depth, one sweep per agent in its own folder.
    for agent in ("dqn", "sac", "td3"):
        spec, _ = by_out[f"vc/{agent}"]
        assert spec.kind == agent and spec.axes["depth"] == ((4, 16, 64) if paper else (4, 16))
    assert by_out["vc/dqn"][0].axes["critic_loss"] == ("mse", "hl-gauss", "two-hot", "c51")
    assert by_out["vc/dqn"][0].fixed["env"] == ("minatar-breakout" if paper else "cartpole")


def test_representations_grid_uses_random_starts(scripts, sweeps, tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):  # the fake sweep trained nothing to draw
        scripts["representations"].main(options(scripts, "representations", out=str(tmp_path)))
    spec, *_ = sweeps[0]
    assert spec.fixed["random_start"] is True and spec.axes == {"depth": (4, 16)}


def test_script_flags_are_wired(scripts, sweeps, tmp_path):
    opts = options(scripts, "ablations", out=str(tmp_path), num_seeds=3, total_env_steps=1000, depths=(8,),
                   jobs=2, last_evals=2)
    scripts["ablations"].main(opts)
    spec, out, cells, kwargs = sweeps[0]
    assert spec.num_seeds == 3 and spec.fixed["total_env_steps"] == 1000 and spec.axes["depth"] == (8,)
    assert out == tmp_path and kwargs["jobs"] == 2 and kwargs["last_evals"] == 2 and kwargs["progress"] is False
    assert all("--num-seeds" in c.flags and "3" in c.flags for c in cells)


@pytest.mark.parametrize("script, kw, flag", [
    ("batch_depth", {"scale": "gpu"}, "--scale"),
    ("batch_depth", {"num_seeds": 0}, "--num-seeds"),
    ("value_classification", {"agents": ("ppo",)}, "--agents"),
    ("value_classification", {"losses": ("huber",)}, "--losses"),
    ("ablations", {"depths": (6,)}, "--depth"),  # not a multiple of the block size: caught before any cell runs
])
def test_bad_flags_fail_before_any_cell_runs(scripts, sweeps, tmp_path, script, kw, flag):
    with pytest.raises(ConfigError) as err:
        scripts[script].main(options(scripts, script, out=str(tmp_path), **kw))
    assert err.value.flag.startswith(flag) and not (tmp_path / "cells").exists()


def test_depth_scaling_trains_summarises_and_skips_finished_depths(scripts, tmp_path, capsys):
    ds = scripts["depth_scaling"]
    opts = ds.Options(env="point-maze-u", depths=(4,), width=8, num_seeds=2, total_env_steps=3200, eval_every=3200,
                      out=str(tmp_path), last_evals=1)
    ds.main(opts)
    with open(tmp_path / "depth_scaling_summary.csv") as f:
        (row,) = list(csv.DictReader(f))
    seeds = [float(v) for v in row["seeds"].split()]
    assert row["depth"] == "4" and len(seeds) == 2 and min(seeds) <= float(row["iqm"]) <= max(seeds)
    with open(tmp_path / "depth_scaling.csv") as f:
        assert len(list(csv.DictReader(f))) == 2  # one evaluation × 2 seeds
    assert (tmp_path / "depth_scaling.png").stat().st_size > 10_000
    ds.main(opts)
    assert "finished run found" in capsys.readouterr().out
    with pytest.raises(ConfigError) as err:
        ds.main(ds.Options(num_seeds=0, out=str(tmp_path)))
    assert err.value.flag == "--num-seeds"


def test_depth_showcase_grid_contrast_and_flags(scripts, sweeps, tmp_path):
    ds = scripts["depth_showcase"]
    with pytest.raises(ConfigError, match="not a run directory"):  # the fake sweep trained no critic to draw
        ds.main(ds.ShowcaseOptions(progress=False, out=str(tmp_path)))
    spec, out, cells, _ = sweeps[0]
    assert spec.kind == "crl" and spec.axes == {"depth": (4, 16, 64)} and spec.num_seeds == 5
    assert spec.fixed["env"] == "crawler-maze-u4" and spec.fixed["width"] == 64 and out == tmp_path
    assert spec.fixed["random_start"] is True
    assert spec.fixed["total_env_steps"] == ds.SHOWCASE_TRAIN.total_env_steps and len(cells) == 3
    # The contrast: each deeper depth's IQM over the baseline's, CIs disjoint only when its low end clears.
    table = [{"depth": 4, "iqm": 0.25, "iqm_low": 0.125, "iqm_high": 0.3},
             {"depth": 16, "iqm": 0.5, "iqm_low": 0.375, "iqm_high": 0.625},
             {"depth": 64, "iqm": 0.375, "iqm_low": 0.25, "iqm_high": 0.5}]
    rows = ds.contrast(table, (4, 16, 64))
    assert [(r["depth"], r["ratio"], r["cis_disjoint"]) for r in rows] == [(16, 2.0, True), (64, 1.5, False)]
    for kw, name in (({"depths": (4,)}, "--depths"), ({"scale": "paper"}, "--scale"), ({"num_seeds": 0}, "--num-seeds"),
                     ({"width": 0}, "--width"), ({"batch_size": 0}, "--batch-size"),
                     ({"sgd_steps_per_collect": 0}, "--sgd-steps-per-collect"), ({"env": "cartpole"}, "--env")):
        with pytest.raises(ConfigError) as err:
            ds.main(ds.ShowcaseOptions(progress=False, out=str(tmp_path / "bad"), **kw))
        assert err.value.flag == name and not (tmp_path / "bad").exists()


def test_depth_showcase_recipe_flags_and_one_setting_per_out_dir(scripts, sweeps, tmp_path):
    ds = scripts["depth_showcase"]
    opts = ds.ShowcaseOptions(progress=False, out=str(tmp_path), env="crawler-maze-big", depths=(4, 16),
                              batch_size=512, sgd_steps_per_collect=32, num_seeds=3, total_env_steps=6400)
    with pytest.raises(ConfigError, match="not a run directory"):
        ds.main(opts)
    spec, _, cells, _ = sweeps[0]
    assert (spec.fixed["env"], spec.fixed["batch_size"], spec.fixed["sgd_steps_per_collect"]) == \
        ("crawler-maze-big", 512, 32)
    assert all(flag(c, "--batch-size") == 512 and flag(c, "--sgd-steps-per-collect") == 32 for c in cells)
    # The real sweep records its setting in sweep.json; a rerun with another recipe must not resume those
    # cells with their stored flags, while adding a depth to the same setting is allowed.
    (tmp_path / "sweep.json").write_text(json.dumps(spec.to_json()))
    with pytest.raises(ConfigError, match="batch_size, sgd_steps_per_collect") as err:
        ds.main(dataclasses.replace(opts, batch_size=256, sgd_steps_per_collect=16))
    assert err.value.flag == "--out" and len(sweeps) == 1
    with pytest.raises(ConfigError, match="num_seeds"):
        ds.main(dataclasses.replace(opts, num_seeds=5))
    with pytest.raises(ConfigError, match="not a run directory"):
        ds.main(dataclasses.replace(opts, depths=(4, 16, 64)))
    assert sweeps[-1][0].axes == {"depth": (4, 16, 64)}


@pytest.mark.slow  # two tiny training runs; the grid, contrast and flags are covered by the test above
def test_depth_showcase_trains_and_draws_both_critics(scripts, tmp_path):
    ds = scripts["depth_showcase"]
    ds.main(ds.ShowcaseOptions(progress=False, out=str(tmp_path), depths=(4, 8), width=8, num_seeds=2,
                               total_env_steps=3200, eval_every=3200, last_evals=1))
    with open(tmp_path / "wall_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["depth"], r["seed_index"]) for r in rows] == [("4", "0"), ("4", "1"), ("8", "0"), ("8", "1")]
    assert all(-1 <= float(r["spearman_path"]) <= 1 and -1 <= float(r["spearman_euclid"]) <= 1 for r in rows)
    with open(tmp_path / "showcase.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["depth"] == "8" and row["baseline_depth"] == "4"
    assert (tmp_path / "q_heatmaps.png").stat().st_size > 10_000 and (tmp_path / "aggregate.png").exists()
