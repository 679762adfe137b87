"""Analysis 7 — exploration vs expressivity (Wang et al. 2025): a collector gathers all the data into one
replay buffer; a learner of another depth trains only on it (`depthrl train crl-pair`). If depth only
explored better, a shallow learner fed by a deep collector would match the deep learner; if depth only
represented better, a deep learner fed by a shallow collector would. The paper finds both are needed.

Every cell evaluates the learner. collector_depth = depth is the ordinary run (the collector and the
learner are then two agents of the same depth on the same data).

  cpu    collector {4, 16} × learner {4, 16} on the point-mass U-maze
  paper  collector {4, 32} × learner {4, 32} on the Ant U4-maze (the paper's depths)

    .venv/bin/python experiments/exploration_expressivity.py   # → experiments/out/exploration_expressivity/
"""

from __future__ import annotations

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    depths, env = ((4, 32), "ant-u4-maze") if opts.paper else ((4, 16), "point-maze-u")
    run("exploration_expressivity", opts, "crl-pair", {"collector_depth": depths, "depth": depths},
        {"env": env, **opts.train_flags()},
        title=f"Collector depth × learner depth ({env}): IQM of the learner's time at goal")


if __name__ == "__main__":
    main(tyro.cli(Options))
