"""Analysis 2 — depth vs width at comparable parameter counts (Wang et al. 2025: at equal parameters a
deeper network beats a wider one; Humanoid, depth 8 × width 256 beats depth 4 × width 4096).

Networks are compared by their hidden weights (depth × width², as the paper counts them):
  cpu    depth 4 width 64 (16 k), depth 4 width 128 (65 k), depth 16 width 64 (65 k) on the point-mass U-maze
  paper  depth 4 width 256 (262 k), depth 4 width 512 (1 M), depth 16 width 256 (1 M),
         depth 4 width 1024 (4.2 M), depth 64 width 256 (4.2 M) on the Ant U4-maze

    .venv/bin/python experiments/depth_width.py            # → experiments/out/depth_width/{aggregate.csv,.png}
"""

from __future__ import annotations

import tyro

from common import Options, run


def main(opts: Options) -> None:
    opts.validate()
    if opts.paper:
        nets = [(4, 256), (4, 512), (16, 256), (4, 1024), (64, 256)]
        env = "ant-u4-maze"
    else:
        nets = [(4, 64), (4, 128), (16, 64)]
        env = "point-maze-u"
    axes = {"net": tuple({"name": f"d{d} w{w} ({d * w * w / 1e3:.0f}k)", "depth": d, "width": w} for d, w in nets)}
    fixed = {"env": env, **opts.train_flags()}
    fixed.pop("width")
    run("depth_width", opts, "crl", axes, fixed,
        title=f"Depth vs width ({env}): IQM time at goal, hidden weights in brackets")


if __name__ == "__main__":
    main(tyro.cli(Options))
