"""Analysis 4 — actor depth vs critic depth (Wang et al. 2025: scaling the critic matters most; in some
tasks scaling the actor matters too, and both together do best).

  cpu    actor depth {4, 16} × critic depth {4, 16} on the point-mass U-maze
  paper  actor depth {4, 16, 64} × critic depth {4, 16, 64} on the Ant U4-maze

    .venv/bin/python experiments/actor_critic_depth.py     # → experiments/out/actor_critic_depth/
"""

from __future__ import annotations

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    depths, env = ((4, 16, 64), "ant-u4-maze") if opts.paper else ((4, 16), "point-maze-u")
    run("actor_critic_depth", opts, "crl", {"critic_depth": depths, "actor_depth": depths},
        {"env": env, **opts.train_flags()}, title=f"Actor depth × critic depth ({env}): IQM time at goal")


if __name__ == "__main__":
    main(tyro.cli(Options))
