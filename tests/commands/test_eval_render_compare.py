"""depthrl eval / render / compare on tiny trained runs (tests/commands/conftest.py)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from depthrl import cli
from depthrl.commands import compare as compare_cli
from depthrl.commands import eval as eval_cli
from depthrl.commands import render as render_cli
from depthrl.errors import ConfigError
from depthrl.training import runner
from tiny_runs import TINY_ROOM

# One xdist worker runs this module (make test: --dist loadgroup), so the session fixture trained_runs (two
# tiny runs) is built once, not by both workers.
pytestmark = pytest.mark.xdist_group("trained_runs")

METRICS = ("success", "time_at_goal", "final_distance")


def test_eval_reproduces_the_runs_own_evaluation(trained_runs):
    run = trained_runs[0]
    rows = {r["epoch"]: r for r in runner.read_metrics(run)}
    latest = eval_cli.evaluate(eval_cli.Args(run_dir=str(run)))
    at_2 = eval_cli.evaluate(eval_cli.Args(run_dir=str(run), checkpoint=2))
    assert (latest["checkpoint_epoch"], at_2["checkpoint_epoch"]) == (4, 2)
    for record in (latest, at_2):
        row = rows[record["checkpoint_epoch"]]
        for name in METRICS:  # same params, same keys, same episodes: the very same numbers
            assert record["metrics"][name] == pytest.approx(row[f"eval/{name}"], abs=1e-6), name
    assert latest["env_steps"] == rows[4]["env_steps"] and latest["episodes"] == 8


def test_eval_on_other_envs_and_outputs(trained_runs, capsys):
    run = trained_runs[0]
    stitched = eval_cli.evaluate(eval_cli.Args(run_dir=str(run), stitching=True, stitch_eval_min=4,
                                               stitch_eval_max=5, episodes=16, seed=3))
    assert stitched["env"]["stitching"] and stitched["env"]["layout"] == TINY_ROOM
    assert stitched["episodes"] == 16 and len(stitched["per_seed"]["success"]) == 1
    assert all(0.0 <= stitched["metrics"][k] <= 1.0 for k in ("success", "time_at_goal"))
    # The evaluation pairs start 4-5 cells from the goal: a random-ish tiny policy ends far from it.
    assert stitched["metrics"]["final_distance"] > 0.5

    assert cli.main(["eval", str(run), "--env", "point-maze-u", "--episodes", "8", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["env"]["env"] == "point-maze-u" and record["env"]["layout"] is None
    written = list((run / "eval").glob("epoch_00000004_point-maze-u_*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == record

    assert cli.main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "checkpoint epoch 4" in out and "time_at_goal" in out


def test_eval_errors_name_the_flag(trained_runs, tmp_path):
    run = str(trained_runs[0])
    with pytest.raises(ConfigError, match=r"--checkpoint.*\[2, 4\]"):
        eval_cli.evaluate(eval_cli.Args(run_dir=run, checkpoint=3))
    with pytest.raises(ConfigError, match="--stitch-eval-min"):  # only with --stitching
        eval_cli.evaluate(eval_cli.Args(run_dir=run, stitch_eval_min=5))
    with pytest.raises(ConfigError, match="--env"):
        eval_cli.evaluate(eval_cli.Args(run_dir=run, env="no-such-env"))
    with pytest.raises(ConfigError, match="RUN_DIR"):
        eval_cli.evaluate(eval_cli.Args(run_dir=str(tmp_path)))
    assert cli.main(["eval", run, "--episodes", "0"]) == 2


def test_render_writes_an_animated_gif(trained_runs, tmp_path, capsys):
    out = tmp_path / "policy.gif"
    assert cli.main(["render", str(trained_runs[0]), "--out", str(out), "--episodes", "3", "--max-frames", "10"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.stat().st_size > 2_000
    with Image.open(out) as gif:
        assert gif.is_animated and gif.n_frames >= 5  # 50 steps every 5th (+ last); identical frames may merge
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"), dtype=int)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), dtype=int)
    assert first.shape[0] > 100 and first.shape[1] > 100
    assert np.abs(first - last).sum() > 0  # the paths are drawn as the episode goes on
    with pytest.raises(ConfigError, match="--out"):
        render_cli.main(render_cli.Args(run_dir=str(trained_runs[0]), out=str(tmp_path / "x.png")))


def test_render_to_an_unwritable_out_fails_at_start_naming_it(tmp_path, monkeypatch, capsys):
    def no_rendering(args):
        raise AssertionError("rendered before checking --out")

    monkeypatch.setattr(render_cli, "rollout", no_rendering)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert cli.main(["render", str(tmp_path), "--out", str(blocker / "policy.gif")]) == 2  # its folder is a file
    err = capsys.readouterr().err
    assert "--out" in err and "cannot be written" in err and "Traceback" not in err
    (tmp_path / "folder.gif").mkdir()
    with pytest.raises(ConfigError, match="--out.*is a folder"):
        render_cli.main(render_cli.Args(run_dir=str(tmp_path), out=str(tmp_path / "folder.gif")))
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder stops only other users
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="--out"):
            render_cli.main(render_cli.Args(run_dir=str(tmp_path), out=str(locked / "policy.gif")))
    assert not list(tmp_path.glob(".*.probe"))  # the probe file is removed


def test_compare_table_and_plot(trained_runs, tmp_path, capsys):
    out = tmp_path / "compare.png"
    args = ["compare", *map(str, trained_runs), "--out", str(out)]
    assert cli.main(args) == 0
    table = capsys.readouterr().out
    assert "tiny_s0" in table and "tiny_s1" in table
    assert out.stat().st_size > 5_000
    assert cli.main([*args, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run"] for r in records] == ["tiny_s0", "tiny_s1"]
    for record, run in zip(records, trained_runs, strict=True):
        last = runner.read_metrics(run)[-1]
        assert record["final eval/time_at_goal"] == last["eval/time_at_goal"]
        assert record["best eval/success"] == max(r["eval/success"] for r in runner.read_metrics(run))
        assert record["depth"] == 4 and record["env_steps"] == 1600 and record["compile_s"] > 0
        assert f"{last['eval/time_at_goal']:.3f}" in table
    with pytest.raises(ConfigError, match="RUN_DIRS"):
        compare_cli.main(compare_cli.Args(run_dirs=(str(tmp_path),), out=str(out)))


def test_render_draws_physics_mazes_in_cell_units():
    from depthrl.envs.maze import parse_layout
    from depthrl.envs.physics.locomotion import Locomotion
    from depthrl.envs.registry import EnvConfig, make_envs
    from depthrl.envs.wrappers import EpisodeWrapper
    from depthrl.training import runs

    point, _ = make_envs(EnvConfig(env="point-maze-u"))
    layout, scale = runs.maze_view(point)
    assert scale == 1.0 and layout.name == "u"
    maze = parse_layout("u")
    for robot, cell in (("ant", 4.0), ("humanoid", 2.0)):  # built lazily: no brax system is loaded here
        assert runs.maze_view(EpisodeWrapper(Locomotion(robot=robot, name=robot, maze=maze), 1000)) == (maze, cell)
    assert runs.maze_view(EpisodeWrapper(Locomotion(robot="ant", name="ant"), 1000)) is None  # open floor
