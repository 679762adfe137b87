"""`depthrl train KIND` end to end, one test per agent, on the tiny room and budget of tests/tiny_runs.py.

Here: td3 and crl-pair (a run, its directory, and a resume after a kill that ends exactly as the uninterrupted
run). The other agents' end-to-end tests share the same tiny configs and live beside their other tests:
crl tests/training/test_crl_train.py::test_run_directory_contents_and_resume_equals_uninterrupted (and, through
the command line, tests/reliability/test_kill_resume.py), sac tests/reliability/test_determinism.py, dqn and
ppo tests/agents/test_dqn_ppo.py::test_train_command_learns_a_probe_writes_the_run_and_resumes.
"""

import json
import math
import shutil

import pytest

from depthrl import cli
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner
from tiny_runs import TINY_CRL, TINY_ENV, TINY_TRAIN, differences

# The agent flags of each command (tiny nets without LayerNorm, as tiny_runs.TINY_CRL; crl-pair: the tiny CRL learner
# with a collector twice as deep).
AGENTS = {
    "td3": dict(depth=4, width=16, batch_size=32, norm="none"),
    "crl-pair": dict(TINY_CRL, collector_depth=8),
}
# Metrics every agent's rows must hold (besides the evaluation's).
AGENT_METRICS = {"td3": {"critic/loss", "actor/loss", "critic/q"}, "crl-pair": {"critic/loss", "collector/critic/loss"}}


def _flags(values: dict) -> list[str]:
    return [item for name, value in values.items() for item in (f"--{name.replace('_', '-')}", str(value))]


@pytest.mark.parametrize("kind", list(AGENTS))
def test_train_command_runs_writes_the_run_and_resumes_exactly(kind, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", kind, *_flags({**TINY_ENV, **AGENTS[kind], **TINY_TRAIN}), "--run-dir", str(run),
            "--no-progress", "--no-plots", "--no-tensorboard", "--no-compile-cache"]
    assert cli.main(argv) == 0
    assert "final eval: success" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == kind and config["agent"]["depth"] == 4 and config["env"]["layout"] == TINY_ENV["layout"]
    rows = runner.read_metrics(run)
    assert [r["epoch"] for r in rows] == [2, 4] and rows[-1]["env_steps"] == TINY_TRAIN["total_env_steps"]
    assert AGENT_METRICS[kind] <= set(rows[-1]), sorted(rows[-1])
    assert all(math.isfinite(rows[-1][k]) for k in AGENT_METRICS[kind])
    assert 0.0 <= rows[-1]["eval/success"] <= 1.0 and rows[-1]["eval/final_distance"] > 0
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["epoch_00000002", "epoch_00000004"]

    killed = tmp_path / "killed"  # killed after epoch 2: its last checkpoint never written
    shutil.copytree(run, killed)
    shutil.rmtree(killed / "checkpoints" / "epoch_00000004")
    assert cli.main(["train", kind, "--resume", str(killed), "--no-progress", "--no-plots"]) == 0
    assert "from checkpoint epoch_00000002" in capsys.readouterr().out
    assert differences(rows, runner.read_metrics(killed)) == []
