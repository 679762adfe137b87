"""depthrl sweep: grid expansion and validation, resume (finished cells skipped, killed cells continued),
real cells run as subprocesses and aggregated, and the Ray path on a local Ray instance."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from depthrl import cli, sweep
from depthrl.commands import sweep as sweep_cmd
from depthrl.errors import ConfigError
from depthrl.sweep.execute import group_cells
from tiny_runs import TINY_CRL, TINY_ENV, TINY_TRAIN, subprocess_env

# The tiny CRL run of tests/tiny_runs.py (its depth an axis here): 4 epochs, evaluations at 2 and 4.
TINY = {**TINY_ENV, **{k: v for k, v in TINY_CRL.items() if k != "depth"}, **TINY_TRAIN,
        "tensorboard": False, "plots": False, "compile_cache": False}


def tiny_spec(**axes) -> sweep.SweepSpec:
    return sweep.SweepSpec(kind="crl", axes=axes or {"depth": (4, 8)}, fixed=TINY, num_seeds=2)


def test_grid_from_flags_and_spec_file(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"kind": "crl", "axes": {"net": [{"depth": 4, "width": 32}, {"name": "deep",
                                                                                                 "depth": 8}]},
                                     "fixed": {"env": "point-maze-u", "width": 16}, "num_seeds": 3}))
    args = sweep_cmd.Args(spec=str(spec_file), axis=("batch-size=32,64",), fixed=("total-env-steps=10000",))
    spec = sweep_cmd.spec_from_args(args)
    assert spec.axes == {"net": ({"depth": 4, "width": 32}, {"name": "deep", "depth": 8}), "batch_size": (32, 64)}
    assert spec.fixed == {"env": "point-maze-u", "width": 16, "total_env_steps": 10000} and spec.num_seeds == 3
    cells = sweep.expand(spec, tmp_path / "out")
    assert [c.name for c in cells] == ["net=depth-4-width-32__batch_size=32", "net=depth-4-width-32__batch_size=64",
                                       "net=deep__batch_size=32", "net=deep__batch_size=64"]
    first, last = cells[0], cells[-1]
    assert first.values == {"net": "depth=4,width=32", "batch_size": 32}
    # The bundle's width overrides the fixed width; the seeds are vmapped in the cell.
    words = " ".join(first.flags)
    assert "--depth 4" in words and "--width 32" in words and "--width 16" not in words and "--num-seeds 3" in words
    assert "--depth 8" in " ".join(last.flags) and "--width 16" in " ".join(last.flags)
    assert first.num_epochs == -(-10000 // (64 * 50))  # the train command's own epoch count
    assert first.run_dir == tmp_path / "out" / "cells" / first.name


@pytest.mark.parametrize("axis, flag", [("depth=4,6", "--depth"), ("no-such-flag=1", "--axis/--fixed"),
                                        ("run-dir=x", "--axis"), ("depth", "--axis")])
def test_bad_cells_fail_before_any_compute(tmp_path, axis, flag):
    with pytest.raises(ConfigError) as err:
        sweep.expand(sweep_cmd.spec_from_args(sweep_cmd.Args(axis=(axis,))), tmp_path)
    assert err.value.flag == flag
    assert not (tmp_path / "cells").exists()


def test_cli_exit_code_and_dry_run(tmp_path, capsys):
    assert cli.main(["sweep", "--axis", "depth=4,6", "--out", str(tmp_path), "--dry-run"]) == 2
    assert "--depth=6" in capsys.readouterr().err
    assert cli.main(["sweep", "--axis", "depth=4,8", "--out", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(": pending  depthrl train crl") == 2
    assert cli.main(["sweep", "--axis", "depth=4", "--group-by", "width", "--out", str(tmp_path)]) == 2


def test_repeated_axis_and_fixed_flags_keep_every_value_and_a_name_given_twice_is_refused(tmp_path, capsys):
    # tyro alone keeps only the last occurrence of a repeated list flag: the sweep ran with one --fixed of 12.
    argv = ["sweep", "--axis", "depth=4,8", "--fixed", "env=point-maze-u", "--axis", "width=16,32",
            "--fixed=total-env-steps=800", "--out", str(tmp_path), "--fixed", "batch-size=32", "--dry-run"]
    assert cli.main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": pending  " in line]
    assert len(lines) == 4  # both axes
    for line in lines:
        assert "--env point-maze-u" in line and "--total-env-steps 800" in line and "--batch-size 32" in line
    assert cli.main(["sweep", "--fixed", "width=16", "--fixed", "width=32", "--out", str(tmp_path), "--dry-run"]) == 2
    assert "--fixed=" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="width is given twice") as err:
        sweep_cmd.spec_from_args(sweep_cmd.Args(axis=("width=16", "width=32")))
    assert err.value.flag == "--axis"


class FakeExecutor:
    """Records what it is asked to run and 'runs' it by writing the run's files (as a finished train run)."""

    def __init__(self, cells, per_seed=None):
        self.cells = {str(c.run_dir): c for c in cells}
        self.calls = []
        self.per_seed = per_seed  # cell -> the seeds' time at goal at every evaluation (default: one seed, e/10)

    def submit(self, argv, log_path):
        self.calls.append(argv)
        run_dir = argv[argv.index("--resume" if "--resume" in argv else "--run-dir") + 1]
        cell = self.cells[run_dir]
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        config = dataclasses.asdict(sweep.parse_train_flags("crl", list(cell.flags)))  # as the train command does
        (Path(run_dir) / "config.json").write_text(json.dumps(config))
        rows = [{"epoch": e, "env_steps": e * 100, "eval/time_at_goal": e / 10} for e in range(1, cell.num_epochs + 1)]
        if self.per_seed is not None:
            for r in rows:
                r["eval/time_at_goal_per_seed"] = self.per_seed(cell)
        (Path(run_dir) / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text("ok")
        future = Future()
        future.set_result({"returncode": 0, "seconds": 0.0, "log_tail": []})
        return future


def test_resume_skips_finished_cells_and_continues_killed_ones(tmp_path):
    cells = sweep.expand(tiny_spec(depth=(4, 8, 12)), tmp_path)
    executor = FakeExecutor(cells)
    states = sweep.execute("crl", cells, tmp_path, executor, report=lambda s: None)
    assert [s["status"] for s in states.values()] == ["done"] * 3
    assert all("--resume" not in argv and "--run-dir" in argv for argv in executor.calls)

    # The sweep is killed while cell 2 runs: its run directory exists, its final evaluation is missing.
    killed = cells[1]
    rows = (killed.run_dir / "metrics.jsonl").read_text().splitlines()
    (killed.run_dir / "metrics.jsonl").write_text("\n".join(rows[:-1]) + "\n")
    assert [sweep.cell_state(c) for c in cells] == ["done", "partial", "done"]
    executor.calls.clear()
    states = sweep.execute("crl", cells, tmp_path, executor, report=lambda s: None)
    assert executor.calls == [["train", "crl", "--resume", str(killed.run_dir), "--no-progress"]]
    assert [states[c.name]["status"] for c in cells] == ["skipped", "done", "skipped"]

    executor.calls.clear()
    sweep.execute("crl", cells, tmp_path, executor, report=lambda s: None)
    assert executor.calls == []


def test_a_cell_directory_holding_another_config_is_never_resumed(tmp_path):
    cells = sweep.expand(tiny_spec(depth=(4,)), tmp_path)
    FakeExecutor(cells).submit(["train", "crl", *cells[0].flags, "--run-dir", str(cells[0].run_dir)],
                               tmp_path / "log")
    longer = sweep.expand(dataclasses.replace(tiny_spec(depth=(4,)), fixed={**TINY, "total_env_steps": 3200}),
                          tmp_path)
    executor = FakeExecutor(longer)
    states = sweep.execute("crl", longer, tmp_path, executor, report=lambda s: None)
    assert executor.calls == [] and states["depth=4"]["status"] == "failed"
    assert "another config" in states["depth=4"]["log_tail"][0]


def test_identical_cell_of_another_sweep_is_reused(tmp_path):
    first = sweep.expand(tiny_spec(depth=(4, 8)), tmp_path / "a")
    executor = FakeExecutor(first)
    sweep.execute("crl", first, tmp_path / "a", executor, report=lambda s: None)
    second = sweep.expand(tiny_spec(depth=(8, 12)), tmp_path / "b")
    executor = FakeExecutor(second)
    states = sweep.execute("crl", second, tmp_path / "b", executor, report=lambda s: None, reuse=[tmp_path / "a"])
    assert [len(executor.calls), states["depth=8"]["status"], states["depth=12"]["status"]] == [1, "skipped", "done"]
    assert second[0].run_dir.resolve() == first[1].run_dir.resolve()


def test_scores_are_the_mean_of_the_last_evaluations_per_seed():
    rows = [{"eval/success": 0.0, "eval/success_per_seed": [0.0, 0.0]}, {"loss": 1.0},
            {"eval/success": 0.5, "eval/success_per_seed": [0.2, 0.8]},
            {"eval/success": 0.7, "eval/success_per_seed": [0.4, 1.0]}]
    assert sweep.seed_scores(rows, "success", last_evals=2) == pytest.approx([0.3, 0.9])
    assert sweep.seed_scores([{"eval/return": 3.0}], "return", 5) == [3.0]
    records = [{"depth": d, "env": e, "score": s} for d, e, s in
               [(4, "u", 0.1), (4, "u", 0.2), (4, "big", 0.9), (16, "u", 0.5)]]
    table = {r["depth"]: r for r in sweep.aggregate_records(records, ["depth"], ["env"], num_resamples=200)}
    assert table[4]["strata"] == 2 and table[4]["runs"] == 3 and table[16]["iqm"] == pytest.approx(0.5)


def test_probability_of_improvement_pairs_along_the_first_group_axis():
    records = [{"depth": d, "width": w, "score": s} for d, w, scores in
               [(4, 16, [0.1, 0.2]), (8, 16, [0.3, 0.4]), (16, 16, [0.2, 0.3]), (4, 32, [0.5]), (8, 32, [0.4])]
               for s in scores]
    rows = sweep.improvement_records(records, ["depth", "width"], [], num_resamples=200)
    pairs = {(r["width"], r["depth"], r["vs_depth"]): r for r in rows}
    assert list(pairs) == [(16, 8, 4), (16, 16, 4), (16, 16, 8), (32, 8, 4)]  # later value vs each earlier one
    assert pairs[16, 8, 4]["prob_improvement"] == 1.0 and pairs[32, 8, 4]["prob_improvement"] == 0.0
    assert pairs[16, 16, 4]["prob_improvement"] == pytest.approx(3.5 / 4)  # 0.2 ties 0.2 and beats 0.1; 0.3 wins
    assert pairs[16, 16, 8]["runs"] == 2 and pairs[16, 16, 8]["vs_runs"] == 2
    based = sweep.improvement_records(records, ["depth", "width"], [], baseline="16", num_resamples=200)
    assert [(r["width"], r["depth"], r["vs_depth"]) for r in based] == [(16, 4, 16), (16, 8, 16)]
    assert sweep.improvement_records(records, [], []) == []


def test_sweep_writes_probability_of_improvement_and_performance_profiles(tmp_path, capsys):
    spec = tiny_spec(variant=({"name": "base"}, {"name": "deep", "depth": 8}), batch_size=(32, 64))
    scores = {("base", 32): [0.1, 0.3], ("base", 64): [0.5, 0.5], ("deep", 32): [0.2, 0.3], ("deep", 64): [0.5, 0.6]}
    executor = FakeExecutor(sweep.expand(spec, tmp_path),
                            per_seed=lambda c: scores[c.values["variant"], c.values["batch_size"]])
    result = sweep.run_sweep(spec, tmp_path, group_by=["variant"], baseline="base", executor=executor,
                             progress=False, num_resamples=200)
    table = {r["variant"]: r for r in result.table}
    assert table["deep"]["strata"] == 2 and table["deep"]["iqm"] == pytest.approx((0.3 + 0.5) / 2)  # trimmed mean
    (row,) = result.improvement
    # Per batch size (the stratum): 32 gives 2.5 / 4 (two wins, a tie), 64 gives 3 / 4 (two ties, two wins).
    assert (row["variant"], row["vs_variant"], row["strata"]) == ("deep", "base", 2)
    assert row["prob_improvement"] == pytest.approx((2.5 / 4 + 3 / 4) / 2)
    assert row["prob_improvement_low"] <= row["prob_improvement"] <= row["prob_improvement_high"]
    assert sweep.improvement_line(row).startswith("P(variant=deep > variant=base): 0.69 [95% CI ")
    assert (tmp_path / "probability_of_improvement.csv").read_text().startswith(
        "variant,vs_variant,strata,runs,vs_runs,prob_improvement,prob_improvement_low,prob_improvement_high\n")
    assert (tmp_path / "performance_profile.png").stat().st_size > 10_000
    dry = ["sweep", "--axis", "depth=4,8", "--out", str(tmp_path / "x"), "--dry-run"]
    assert cli.main([*dry, "--baseline", "16"]) == 2
    assert "--baseline" in capsys.readouterr().err


@pytest.mark.parametrize("options, flag", [
    (dict(ray_address="local", gpus_per_cell=-1.0), "--gpus-per-cell"),
    (dict(ray_address="local", gpus_per_cell=1.5), "--gpus-per-cell"),
    (dict(gpus_per_cell=1.0), "--gpus-per-cell"),  # GPUs per cell need Ray
    (dict(max_retries=-1), "--max-retries")])
def test_bad_executor_options_fail_before_any_compute(tmp_path, options, flag):
    with pytest.raises(ConfigError) as err:
        sweep.run_sweep(tiny_spec(), tmp_path, progress=False, **options)
    assert err.value.flag == flag
    assert not (tmp_path / "cells").exists()


class FakeRay:
    """The part of the `ray` module RayExecutor uses, on a cluster of `gpus` GPUs."""

    def __init__(self, gpus):
        self.gpus, self.options, self.shut = gpus, None, False

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        pass

    def cluster_resources(self):
        return {"CPU": 8.0, "GPU": float(self.gpus)}

    def remote(self, **options):
        self.options = options
        return lambda fn: fn

    def shutdown(self):
        self.shut = True


def test_ray_tasks_reserve_gpus_and_retry_killed_cells_and_a_missing_gpu_is_refused(monkeypatch, capsys):
    fake = FakeRay(gpus=2)
    monkeypatch.setitem(sys.modules, "ray", fake)
    sweep.RayExecutor("auto", cpus_per_cell=4, gpus_per_cell=1, max_retries=3)
    assert fake.options == {"num_cpus": 4, "num_gpus": 1, "max_retries": 3, "retry_exceptions": [sweep.CellKilled]}
    fake = FakeRay(gpus=0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ConfigError) as err:  # a local instance without GPUs: every cell would wait forever
        sweep.RayExecutor("local", cpus_per_cell=1, gpus_per_cell=0.5)
    assert err.value.flag == "--gpus-per-cell" and "has 0 GPUs" in str(err.value) and fake.shut
    sweep.RayExecutor("auto", cpus_per_cell=1, gpus_per_cell=0.5)  # a cluster may still add GPU nodes
    assert "the cells wait until GPU nodes join" in capsys.readouterr().err and fake.options["num_gpus"] == 0.5


def test_a_killed_cell_is_retried_and_the_retry_resumes_its_run_directory(tmp_path, monkeypatch):
    """A stand-in for the cell's interpreter: the first attempt writes config.json (the run started) and is
    SIGKILLed; the retry must be `--resume RUN_DIR`, since the command is decided when an attempt starts."""
    run_dir, calls = tmp_path / "cells" / "depth=4", tmp_path / "calls.txt"
    fake_python = tmp_path / "python"
    fake_python.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
if [ -f {run_dir}/config.json ]; then exit 0; fi
mkdir -p {run_dir} && echo '{{}}' > {run_dir}/config.json && kill -9 $$
""")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    argv = ["train", "crl", "--depth", "4", "--run-dir", str(run_dir), "--no-progress"]
    executor = sweep.LocalExecutor(jobs=1, max_retries=1)
    result = executor.submit(argv, tmp_path / "log").result()
    assert result["returncode"] == 0
    assert calls.read_text().splitlines() == ["-m depthrl.cli " + " ".join(argv),
                                              f"-m depthrl.cli train crl --resume {run_dir} --no-progress"]
    headers = [line for line in (tmp_path / "log").read_text().splitlines() if line.startswith("$ depthrl")]
    assert len(headers) == 2 and "--resume" in headers[1] and "[pid " in headers[0]
    # Killed again on every attempt: the retries run out and the cell fails, naming the signal.
    shutil.rmtree(run_dir)
    calls.unlink()
    with pytest.raises(sweep.CellKilled, match="killed by signal 9"):
        sweep.LocalExecutor(jobs=1, max_retries=0).submit(argv, tmp_path / "log").result()
    assert len(calls.read_text().splitlines()) == 1
    executor.close()


def seed_spec() -> sweep.SweepSpec:
    """Two cells that differ only by base seed (2 vmapped seeds each): the same programs, so with the session's
    compile cache (real_sweep) the second process and a resumed one load them instead of compiling."""
    return sweep.SweepSpec(kind="crl", axes={"seed": (0, 1)}, fixed=TINY, num_seeds=2)


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """Two real cells run as `depthrl train crl` processes. They inherit this session's compile cache (so the
    2-seed programs of tests/training/test_crl_train.py's vmapped-seeds run, the same shapes, compile once)."""
    out = tmp_path_factory.mktemp("sweep")
    saved = dict(os.environ)
    os.environ.update(subprocess_env())  # inherited by the cells
    try:
        result = sweep.run_sweep(seed_spec(), out, metric="success", last_evals=2, progress=False, num_resamples=200)
        yield out, result
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.xdist_group("real_sweep")
def test_real_cells_run_as_processes_and_are_aggregated(real_sweep):
    out, result = real_sweep
    assert result.failed == [] and [result.states[c.name]["status"] for c in result.cells] == ["done", "done"]
    for cell in result.cells:
        rows = sweep.read_rows(cell.run_dir)
        assert [r["epoch"] for r in rows] == [2, 4] and len(rows[-1]["eval/success_per_seed"]) == 2
        assert "depthrl train crl" in (out / "logs" / f"{cell.name}.log").read_text()
    assert len(result.records) == 4  # 2 cells × 2 vmapped seeds
    scores = [r["score"] for r in result.records]
    # The seed axis is not a group: one aggregate row over the 4 runs of both cells.
    assert len(result.table) == 1 and result.table[0]["runs"] == 4
    row = result.table[0]
    assert row["mean"] == pytest.approx(sum(scores) / 4) and min(scores) <= row["iqm_low"] <= row["iqm"]
    assert row["iqm"] <= row["iqm_high"] <= max(scores)
    assert (out / "aggregate.csv").read_text().startswith("strata,runs,mean")
    assert (out / "aggregate.png").stat().st_size > 10_000 and (out / "curves.csv").exists()
    assert (out / "performance_profile.png").stat().st_size > 10_000
    assert not (out / "probability_of_improvement.csv").exists()  # one group: nothing to compare
    assert json.loads((out / "sweep.json").read_text())["axes"] == {"seed": [0, 1]}


@pytest.mark.xdist_group("real_sweep")
def test_rerun_skips_finished_cells_and_a_killed_cell_resumes_to_the_same_result(real_sweep):
    out, first = real_sweep
    done, killed = first.cells
    final_row = sweep.read_rows(killed.run_dir)[-1]
    # Nothing left to do: no cell runs again.
    result = sweep.run_sweep(seed_spec(), out, metric="success", last_evals=2, progress=False, num_resamples=200)
    assert [result.states[c.name]["status"] for c in result.cells] == ["skipped", "skipped"]
    # Kill the second cell after its first checkpoint: drop the final evaluation and checkpoint.
    rows = (killed.run_dir / "metrics.jsonl").read_text().splitlines()
    (killed.run_dir / "metrics.jsonl").write_text(rows[0] + "\n")
    shutil.rmtree(killed.run_dir / "checkpoints" / "epoch_00000004")
    done_mtime = (done.run_dir / "metrics.jsonl").stat().st_mtime_ns
    result = sweep.run_sweep(seed_spec(), out, metric="success", last_evals=2, progress=False, num_resamples=200)
    assert result.states[done.name]["status"] == "skipped"
    assert result.states[killed.name]["status"] == "done" and result.states[killed.name]["resumed"]
    assert (done.run_dir / "metrics.jsonl").stat().st_mtime_ns == done_mtime
    assert "resuming" in (out / "logs" / f"{killed.name}.log").read_text()
    resumed = sweep.read_rows(killed.run_dir)[-1]
    for key in ("eval/success_per_seed", "eval/time_at_goal_per_seed", "eval/final_distance_per_seed"):
        assert resumed[key] == final_row[key]  # resuming reproduces the uninterrupted run


RAY_CELLS = """
import json, sys
from pathlib import Path
from depthrl.sweep.execute import RayExecutor
executor = RayExecutor("local", cpus_per_cell=1, gpus_per_cell=1, max_retries=1)
logs = [Path(sys.argv[1]) / f"cell{i}.log" for i in range(2)]
futures = [executor.submit(["presets", "--json"], log) for log in logs]
print(json.dumps([f.result(timeout=300) for f in futures]))
executor.close()
"""


def test_ray_executor_runs_cells_as_ray_tasks_each_on_its_own_gpu(tmp_path):
    """The Ray path's plumbing on a real local Ray instance, with cells that are cheap `depthrl` commands: each
    task runs `run_cell`, reserves one of the two (fake) GPUs and sees it in CUDA_VISIBLE_DEVICES. In its own
    process, so Ray's workers and exit hooks never touch the test process. The slow test below runs real
    training cells through Ray and kills one; Ray's retry options are checked above with a stand-in Ray."""
    pytest.importorskip("ray", reason="the Ray path needs the sweep extra (make test installs it)")
    env = {**os.environ, "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 2, "GPU": 2})}
    done = subprocess.run([sys.executable, "-c", RAY_CELLS, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["returncode"] for r in results] == [0, 0]
    assert all(r["devices"] in ("0", "1") for r in results), results  # one GPU of the two per cell
    for i in range(2):
        text = (tmp_path / f"cell{i}.log").read_text()
        assert text.startswith("$ depthrl presets --json  [pid ") and '"name": "quickstart"' in text


@pytest.mark.slow  # the fast test above runs cells through a real Ray instance; real_sweep's tests resume cells
@pytest.mark.xdist_group("real_sweep")  # with `--dist loadgroup` (make test) on the worker that ran real_sweep
def test_ray_path_gives_each_cell_its_gpu_and_a_killed_cell_resumes(real_sweep, tmp_path):
    """`depthrl sweep --ray-address local --gpus-per-cell 1`: the cells run as Ray tasks on a Ray instance the
    command starts, here declaring two fake GPUs (Ray's RAY_OVERRIDE_RESOURCES), so each cell reserves one and
    sees it in CUDA_VISIBLE_DEVICES. The second cell's process is SIGKILLed after its first checkpoint: Ray
    retries the task, which resumes the cell's run directory.

    The command runs in its own process, so Ray's workers, signal handlers and exit hooks never touch the test
    process. They inherit its environment, so the cells load the programs real_sweep compiled (the same
    shapes: they share the session's compile cache) instead of compiling them again."""
    pytest.importorskip("ray", reason="the Ray path needs the sweep extra (make test installs it)")
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(seed_spec().to_json()))
    out = tmp_path / "out"
    env = {**os.environ, "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 2, "GPU": 2})}
    # 10 epochs (checkpoints every 2): the kill after the first checkpoint lands well before the end.
    command = [sys.executable, "-m", "depthrl.cli", "sweep", "--spec", str(spec_file), "--out", str(out),
               "--fixed", "total-env-steps=4000", "--ray-address", "local", "--gpus-per-cell", "1",
               "--max-retries", "1", "--metric", "success", "--last-evals", "2", "--bootstrap-resamples", "200",
               "--no-progress"]
    with open(tmp_path / "sweep.log", "w") as sweep_log:
        proc = subprocess.Popen(command, stdout=sweep_log, stderr=subprocess.STDOUT, env=env)
        logs = {name: out / "logs" / f"{name}.log" for name in ("seed=0", "seed=1")}
        checkpoints = out / "cells" / "seed=1" / "checkpoints"
        deadline = time.time() + 600
        while proc.poll() is None and time.time() < deadline and not (
                checkpoints.is_dir() and any(p.name.startswith("epoch_") for p in checkpoints.iterdir())):
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep ended before the first checkpoint: " + (
            tmp_path / "sweep.log").read_text()[-3000:]
        both_running = logs["seed=0"].exists() and "final eval" not in logs["seed=0"].read_text()
        pid = int(re.search(r"\[pid (\d+),", logs["seed=1"].read_text()).group(1))
        os.kill(pid, signal.SIGKILL)
        returncode = proc.wait(timeout=600)
    output = (tmp_path / "sweep.log").read_text()
    assert returncode == 0, output[-3000:]
    assert "Started a local Ray instance" in output  # the cells really went through Ray
    devices = {}
    for name, log in logs.items():
        text = log.read_text()
        headers = re.findall(r"^\$ depthrl (.*)  \[pid \d+, CUDA_VISIBLE_DEVICES=(.*)\]$", text, re.M)
        devices[name] = [d for _, d in headers]
        assert all(d in ("0", "1") for d in devices[name]), text  # one GPU of the two per cell
        rows = sweep.read_rows(out / "cells" / name)
        assert [r["epoch"] for r in rows] == list(range(2, 11, 2)) and len(rows[-1]["eval/success_per_seed"]) == 2
        if name == "seed=1":  # killed once: the retry resumed the same run directory
            assert len(headers) == 2, text
            assert "--run-dir" in headers[0][0] and headers[1][0].startswith(f"train crl --resume {out}/cells/seed=1")
            assert "resuming" in text and "from checkpoint epoch_" in text
        else:
            assert len(headers) == 1
    if both_running:  # two cells at once hold the two GPUs
        assert devices["seed=0"][0] != devices["seed=1"][0], devices
    assert (out / "aggregate.csv").read_text().startswith("strata,runs,mean")


class GroupFakeExecutor(FakeExecutor):
    """FakeExecutor that also 'runs' the other cells of a group (`--group-with`); `calls` records one per process."""

    def submit(self, argv, log_path):
        others = []
        for word in argv[argv.index("--group-with") + 1:] if "--group-with" in argv else []:
            if word.startswith("--"):
                break
            others.append(word)
        for run_dir in others:
            assert (Path(run_dir) / "config.json").is_file()  # prepared before the process starts
            super().submit(["--run-dir", run_dir], log_path)
        del self.calls[len(self.calls) - len(others):]
        return super().submit(argv, log_path)


def test_cells_differing_in_traced_hyperparameters_share_one_process(tmp_path, capsys):
    """critic-lr × depth: one process per depth, holding its 3 learning rates; each cell gets its run directory
    (config.json prepared before the process starts). --no-group, --skip-non-finite and a seed-only grid keep one
    process per cell."""
    spec = tiny_spec(critic_lr=(1e-4, 3e-4, 1e-3), depth=(4, 8))
    cells = sweep.expand(spec, tmp_path / "a")
    executor = GroupFakeExecutor(cells)
    states = sweep.execute("crl", cells, tmp_path / "a", executor, report=lambda s: None)
    assert [s["status"] for s in states.values()] == ["done"] * 6
    assert [argv[argv.index("--resume") + 1:] for argv in executor.calls] == [
        [str(cells[0].run_dir), "--group-with", str(cells[2].run_dir), str(cells[4].run_dir), "--no-plots",
         "--no-progress"],
        [str(cells[1].run_dir), "--group-with", str(cells[3].run_dir), str(cells[5].run_dir), "--no-plots",
         "--no-progress"]]
    assert capsys.readouterr().err.count("3 cells share one program (critic-lr)") == 2
    assert sweep.execute("crl", cells, tmp_path / "a", executor, report=lambda s: None)[cells[0].name][
        "status"] == "skipped"

    cells = sweep.expand(spec, tmp_path / "b")
    executor = GroupFakeExecutor(cells)
    sweep.execute("crl", cells, tmp_path / "b", executor, report=lambda s: None, group=False)
    assert len(executor.calls) == 6 and not any("--group-with" in argv for argv in executor.calls)
    skipping = sweep.expand(dataclasses.replace(spec, fixed={**TINY, "skip_non_finite": True}), tmp_path / "c")
    assert [len(g) for g in group_cells("crl", skipping)] == [1] * 6
    assert [len(g) for g in group_cells("crl", sweep.expand(seed_spec(), tmp_path))] == [1, 1]
    mixed = sweep.expand(tiny_spec(critic_lr=(1e-4, 1e-3), seed=(0, 1)), tmp_path / "d")
    assert [len(g) for g in group_cells("crl", mixed)] == [4]
    assert cli.main(["sweep", "--axis", "critic-lr=1e-4,1e-3", "--out", str(tmp_path / "e"), "--dry-run"]) == 0
    assert "2 cells share one program (critic-lr): critic_lr=0.0001, critic_lr=0.001" in capsys.readouterr().out


def test_a_grouped_sweep_runs_one_process_and_a_killed_group_resumes_every_cell(tmp_path):
    """`depthrl sweep --axis critic-lr=3e-4,1e-3 --num-seeds 2`: one `depthrl train` process writes both cells'
    run directories. Killed after its first checkpoints (the final rows and checkpoints gone, one cell's
    epoch-4 checkpoint still there), the rerun resumes both cells from epoch 2 to the uninterrupted rows. The
    group's programs are those of tests/training/test_group_run.py (the session's compile cache)."""
    spec = sweep.SweepSpec(kind="crl", axes={"critic_lr": (3e-4, 1e-3)}, fixed=TINY, num_seeds=2)
    saved = dict(os.environ)
    os.environ.update(subprocess_env())  # inherited by the cells
    try:
        first = sweep.run_sweep(spec, tmp_path, metric="success", progress=False, num_resamples=200)
        logs = sorted((tmp_path / "logs").iterdir())
        assert [log.name for log in logs] == ["critic_lr=0.0003.log"]
        assert logs[0].read_text().count("$ depthrl train crl --resume") == 1 and "--group-with" in logs[0].read_text()
        finals = {c.name: sweep.read_rows(c.run_dir) for c in first.cells}
        assert [first.states[c.name]["status"] for c in first.cells] == ["done", "done"]
        for i, cell in enumerate(first.cells):  # killed between the two cells' checkpoint writes of epoch 4
            (cell.run_dir / "metrics.jsonl").write_text(json.dumps(finals[cell.name][0]) + "\n")
            if i == 1:
                shutil.rmtree(cell.run_dir / "checkpoints" / "epoch_00000004")
        again = sweep.run_sweep(spec, tmp_path, metric="success", progress=False, num_resamples=200)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert all(again.states[c.name]["status"] == "done" and again.states[c.name]["resumed"] for c in again.cells)
    assert logs[0].read_text().count("resuming") == 2
    for cell in again.cells:
        rows = sweep.read_rows(cell.run_dir)
        assert [r["epoch"] for r in rows] == [2, 4]
        for key in ("eval/success_per_seed", "eval/final_distance_per_seed", "critic/loss_per_seed"):
            assert rows[-1][key] == pytest.approx(finals[cell.name][-1][key], rel=1e-5, abs=1e-6)
