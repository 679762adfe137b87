"""Analysis 3 — batch size × depth (Wang et al. 2025: a larger batch helps the deep network and does little
for the shallow one).

  cpu    depth {4, 16} × batch {64, 256} on the point-mass U-maze
  paper  depth {4, 64} × batch {256, 1024, 4096} on the Ant U4-maze

    .venv/bin/python experiments/batch_depth.py            # → experiments/out/batch_depth/
"""

from __future__ import annotations

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    depths, batches, env = ((4, 64), (256, 1024, 4096), "ant-u4-maze") if opts.paper else \
        ((4, 16), (64, 256), "point-maze-u")
    fixed = {"env": env, **opts.train_flags()}
    fixed.pop("batch_size")
    run("batch_depth", opts, "crl", {"batch_size": batches, "depth": depths}, fixed,
        title=f"Batch size × depth ({env}): IQM time at goal")


if __name__ == "__main__":
    main(tyro.cli(Options))
