"""`depthrl bench network` at tiny sizes: the record's keys and sane values (no timing thresholds)."""

from __future__ import annotations

import json

import pytest

from depthrl import cli
from depthrl.commands.bench.network import Args, main, run
from depthrl.errors import ConfigError

TINY = dict(depth=8, width=16, batch_size=8, in_dim=5, repeats=2, warmup=1)

POSITIVE_KEYS = (
    "compile_s",
    "step_ms",
    "step_ms_min",
    "gflops_per_s",
    "peak_gflops_per_s",
    "mfu",
    "peak_memory_mb",
)


@pytest.mark.parametrize(("layout", "remat"), [("scan", False), ("unrolled", True)])
def test_json_output_is_one_line_with_positive_measurements(capsys, layout, remat):
    assert main(Args(**TINY, network_layout=layout, remat=remat, json=True)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    for key in POSITIVE_KEYS:
        assert record[key] > 0, key
    assert record["depth"] == 8 and record["width"] == 16 and record["batch_size"] == 8
    assert record["network_layout"] == layout and record["resolved_layout"] == layout and record["remat"] is remat
    assert record["memory_source"] and isinstance(record["compile_cache"], bool)
    assert record["jax_version"] and record["jaxlib_version"]
    # 2 x (5*16 + 8*16*16 + 16*1) multiply-adds
    assert record["flops_per_example"] == 2 * (80 + 2048 + 16)
    assert record["num_params"] > 0


def test_readable_summary(capsys):
    assert main(Args(**TINY, dtype="bfloat16")) == 0
    out = capsys.readouterr().out
    assert "compile" in out and "step" in out and "mfu" in out


def test_bad_args_name_the_flag(capsys):
    with pytest.raises(ConfigError, match="--depth"):
        run(Args(depth=6))
    assert cli.main(["bench", "network", "--depth", "6", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("depthrl bench network: error:") and "--depth" in err and "4 or 8" in err
    for field, flag in (("batch_size", "--batch-size"), ("repeats", "--repeats"), ("warmup", "--warmup")):
        with pytest.raises(ConfigError) as error:
            run(Args(**{field: -1}))
        assert error.value.flag == flag
