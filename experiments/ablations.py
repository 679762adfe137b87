"""Analysis 9 — residual, normalisation and activation ablations at depth (Wang et al. 2025, Sec. on
architecture: residual connections, layer norm and Swish are what let CRL train at depth; removing any
hurts, most of all the skip connection).

Variants of the paper's block (4 × [Dense → LayerNorm → Swish] + skip): baseline, no skip, no norm, ReLU.

  cpu    depth 16 and 64 on the point-mass U-maze
  paper  depth 64 on the Ant U4-maze

    .venv/bin/python experiments/ablations.py              # → experiments/out/ablations/
"""

from __future__ import annotations

import dataclasses

import tyro

from common import Options, run

VARIANTS = ({"name": "baseline"}, {"name": "no skip", "skip": False}, {"name": "no norm", "norm": "none"},
            {"name": "relu", "activation": "relu"})


@dataclasses.dataclass(frozen=True)
class AblationOptions(Options):
    depths: tuple[int, ...] | None = None
    """Depths to ablate at (default: 16 and 64 at cpu scale, 64 at paper scale)."""


def main(opts: AblationOptions) -> None:
    opts.validate()
    depths = opts.depths or ((64,) if opts.paper else (16, 64))
    env = "ant-u4-maze" if opts.paper else "point-maze-u"
    run("ablations", opts, "crl", {"variant": VARIANTS, "depth": depths}, {"env": env, **opts.train_flags()},
        title=f"Block ablations at depth {', '.join(map(str, depths))} ({env}): IQM time at goal", baseline="baseline")


if __name__ == "__main__":
    main(tyro.cli(AblationOptions))
