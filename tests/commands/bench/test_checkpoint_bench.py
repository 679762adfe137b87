"""scripts/bench_checkpoint.py runs and prints one JSON line per mode with the fields docs/benchmarks.md § 7
reads (a tiny configuration: this checks the script, it times nothing). Slow (a fresh process compiles its
epoch: 30-100 s on the shared 2-core CPU); the saver it drives is covered by the fast
tests/training/test_checkpoint_async.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_checkpoint.py"


@pytest.mark.slow
def test_checkpoint_bench_prints_one_line_per_mode(tmp_path):
    flags = ["--buffer-mib", "1", "--epochs", "3", "--every", "2", "--num-envs", "16", "--depth", "4", "--width",
             "16", "--batch-size", "32", "--sgd-steps", "1", "--work-dir", str(tmp_path)]
    proc = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {row["mode"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert list(rows) == ["none", "sync", "async"]
    assert 0.99 <= rows["none"]["buffer_mib"] <= 1.01 and rows["none"]["checkpoint_mib"] == 0.0
    for mode in ("sync", "async"):  # one save (epoch 2) of a random-filled buffer: it does not compress away
        assert rows[mode]["checkpoint_mib"] > 0.5 and rows[mode]["save_call_s_mean"] > 0
    assert rows["async"]["save_copy_s_mean"] <= rows["async"]["save_call_s_mean"]
    assert rows["sync"]["save_wait_s_mean"] is None and rows["async"]["save_wait_s_mean"] >= 0
    assert not any(tmp_path.rglob("epoch_*"))  # the script cleans up what it wrote
