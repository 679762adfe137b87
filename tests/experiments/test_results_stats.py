"""experiments/results_stats.py: seeds read back from an aggregate row (hand cases), and a dry run over
docs/results/ whose CSVs must agree with the seeds, the IQM and the comparisons docs/results.md states."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from depthrl.sweep import stats as aggregate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stats_script():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import results_stats

        yield results_stats
    finally:
        sys.path.remove(str(ROOT / "experiments"))


def row_of(seeds, iqm=aggregate.fractional_iqm):
    x = np.array(seeds, float)
    return {"runs": len(x), "mean": x.mean(), "std": x.std(), "median": np.median(x), "min": x.min(),
            "max": x.max(), "iqm": float(iqm(x))}


@pytest.mark.parametrize("seeds", [[0.5], [0.3, 0.1], [0.7, 0.2, 0.4], [1.0, 4.0, 2.0, 8.0], [10.0, 1.0, 2.0, 3.0, 4.0],
                                   [500.0, 500.0, 412.4375, 441.0, 500.0]])
def test_seeds_are_recovered_from_min_median_max_mean_and_std(stats_script, seeds):
    np.testing.assert_allclose(stats_script.seeds_from_row(row_of(seeds)), sorted(seeds), atol=1e-9)
    np.testing.assert_allclose(stats_script.seeds_from_row(row_of(seeds, aggregate.iqm)), sorted(seeds), atol=1e-9)


def test_inconsistent_or_too_many_seeds_are_refused(stats_script):
    row = row_of([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="iqm"):
        stats_script.seeds_from_row({**row, "iqm": 2.5})
    with pytest.raises(ValueError, match="at most 5"):
        stats_script.seeds_from_row(row_of([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))


def test_docs_results_agree_with_their_seeds(stats_script, capsys):
    stats_script.main(stats_script.Options(results=str(ROOT / "docs/results"), write=False))
    out = capsys.readouterr().out
    # The numbers docs/results.md quotes: § 1's U4-maze IQM (now the mean of 3 seeds) and the comparisons.
    assert "depth 8: IQM 0.524 (0.483–0.585)" in out
    assert "P(depth=8-64 > depth=4): 1.00 [95% CI 1.00, 1.00], 12 vs 3 runs" in out
    assert "P(critic_loss=two-hot > critic_loss=mse) at depth=64: 0.96 [95% CI 0.84, 1.00], 5 vs 5 runs" in out
    with open(ROOT / "docs/results/probability_of_improvement.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert len(written) == out.count("\nP(")  # the CSV holds every comparison printed
