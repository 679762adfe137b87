"""Analysis 4 — actor depth vs critic depth (Wang et al. 2025: scaling the critic matters most; in some
tasks scaling the actor matters too, and both together do best).

  cpu    actor depth {4, 16} × critic depth {4, 16} on the point-mass U-maze
  paper  actor depth {4, 16, 64} × critic depth {4, 16, 64} on the Ant U4-maze

Each cell is a bundle (`--depth` = the critic's depth, `--actor-depth` where the actor's differs), so the
diagonal cells are the ordinary runs of that depth and are reused from the other analyses where they ran.

    .venv/bin/python experiments/actor_critic_depth.py     # → experiments/out/actor_critic_depth/
"""

from __future__ import annotations

import itertools

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    depths, env = ((4, 16, 64), "ant-u4-maze") if opts.paper else ((4, 16), "point-maze-u")
    nets = tuple({"name": f"actor {a} / critic {c}", "depth": c, **({"actor_depth": a} if a != c else {})}
                 for a, c in itertools.product(depths, depths))
    run("actor_critic_depth", opts, "crl", {"net": nets}, {"env": env, **opts.train_flags()},
        title=f"Actor depth × critic depth ({env}): IQM time at goal")


if __name__ == "__main__":
    main(tyro.cli(Options))
