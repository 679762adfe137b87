"""Grids of training runs and their statistics.

spec      the grid: a spec (train command, axes, shared flags, seeds) expanded into validated cells
execute   each cell's state on disk; local-process and Ray executors (a killed cell resumes on retry)
progress  the live table of cells
stats     rliable statistics in numpy: IQM, stratified bootstrap CI, probability of improvement, profiles
summary   per-seed scores, aggregate rows, curves, CSVs
plots     the aggregate and performance-profile plots
run       `run_sweep`: validate, run the unfinished cells, aggregate (what `depthrl sweep` and the
          experiment scripts call)
"""

from depthrl.sweep.execute import CellKilled, LocalExecutor, RayExecutor, cell_state, execute, read_rows
from depthrl.sweep.plots import plot_aggregate, plot_performance_profile
from depthrl.sweep.run import run_sweep
from depthrl.sweep.spec import SEED_AXIS, Cell, SweepSpec, expand, load_spec, parse_train_flags
from depthrl.sweep.summary import (
    SweepResult,
    aggregate_records,
    curve_records,
    improvement_line,
    improvement_records,
    run_records,
    seed_scores,
    summarize,
    write_csv,
)

__all__ = ["SEED_AXIS", "Cell", "CellKilled", "LocalExecutor", "RayExecutor", "SweepResult", "SweepSpec",
           "aggregate_records", "cell_state", "curve_records", "execute", "expand", "improvement_line",
           "improvement_records", "load_spec", "parse_train_flags", "plot_aggregate", "plot_performance_profile",
           "read_rows", "run_records", "run_sweep", "seed_scores", "summarize", "write_csv"]
