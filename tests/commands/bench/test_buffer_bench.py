"""`depthrl bench buffer`: JSON records of sampling with early-terminated episodes (no timing asserted)."""

import json

import pytest

from depthrl.commands.bench import buffer as bench_buffer
from depthrl.errors import ConfigError


def test_buffer_bench_prints_one_record_per_episode_length(capsys):
    args = bench_buffer.Args(episode_length=(10, 100), terminate_prob=0.05, num_envs=8, rows_per_env=100,
                             batch_size=16, batches=2, repeats=1, json=True)
    assert bench_buffer.main(args) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["episode_length"] for r in records] == [10, 100]
    for r in records:
        assert r["time_ms_median"] > 0 and r["us_per_sample"] > 0 and r["compile_s"] > 0
        assert 1 <= r["mean_offset"] and r["episodes_ended"] > 0
    short, long = records
    assert short["rows_per_ended_episode"] < 10 and long["rows_per_ended_episode"] < 30  # 1 / 0.05 = 20 steps
    assert long["temp_bytes"] == short["temp_bytes"]  # O(batch): nothing in the program grows with T


def test_buffer_bench_rejects_a_bad_probability():
    with pytest.raises(ConfigError) as err:
        bench_buffer.main(bench_buffer.Args(terminate_prob=1.0))
    assert err.value.flag == "--terminate-prob"
