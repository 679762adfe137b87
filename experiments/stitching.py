"""Analysis 6 — stitching vs depth (Wang et al. 2025: trained only on start/goal pairs at most 3 cells
apart, deeper networks reach unseen pairs 4-6 cells apart more often).

Training episodes use pairs <= 3 cells apart; every evaluation uses pairs 4-6 cells apart, so the
eval/time_at_goal aggregated here is entirely on pairs never trained on.

  cpu    depth {4, 16} on the point-mass U4-maze
  paper  depth {4, 16, 64} on the Ant U4-maze stitching task

    .venv/bin/python experiments/stitching.py              # → experiments/out/stitching/
"""

from __future__ import annotations

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    if opts.paper:
        depths, env_flags = (4, 16, 64), {"env": "ant-u4-maze-stitch"}
    else:
        depths = (4, 16)
        env_flags = {"env": "point-maze-u4", "stitching": True, "stitch_train_max": 3, "stitch_eval_min": 4,
                     "stitch_eval_max": 6}
    run("stitching", opts, "crl", {"depth": depths}, {**env_flags, **opts.train_flags()},
        title="Stitching: time at goal on start/goal pairs 4-6 cells apart (trained on <= 3)")


if __name__ == "__main__":
    main(tyro.cli(Options))
