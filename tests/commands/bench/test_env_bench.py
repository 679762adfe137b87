"""Smoke test of `depthrl bench env` (keys and positivity, not timing thresholds)."""

from __future__ import annotations

import json

import pytest

from depthrl.commands.bench import env as bench
from depthrl.errors import ConfigError


@pytest.mark.parametrize("batch_reset", [True, False])
def test_bench_env_json(capsys, batch_reset):
    args = bench.Args(num_envs=4, steps=10, repeats=2, json=True, batch_reset=batch_reset)
    assert bench.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert result["num_envs"] == 4 and result["steps"] == 10 and result["batch_reset"] == batch_reset
    for key in ("compile_s", "time_s_median", "steps_per_s", "steps_per_s_best"):
        assert result[key] > 0
    assert result["steps_per_s_best"] >= result["steps_per_s"]
    assert result["episode_length"] == 100 and 0 <= result["random_policy_at_goal"] <= 1
    assert result["device"].startswith("cpu")


def test_bench_env_text_with_a_layout(capsys):
    args = bench.Args(env="point-maze", layout="#####/#R.G#/#####", num_envs=2, steps=3, repeats=1)
    assert bench.main(args) == 0
    assert "M steps/s" in capsys.readouterr().out


def test_bench_env_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="--num-envs"):
        bench.main(bench.Args(num_envs=0))
