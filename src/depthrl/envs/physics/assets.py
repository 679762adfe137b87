"""MJCF models of the physics tasks, built in code from brax's packaged robots and depthrl's maze layouts.

Mazes come from `depthrl.envs.maze` layouts (one ASCII source of truth for the point mass and the robots).
World coordinates are the maze's cell coordinates times `scale`: the centre of cell (row r, column c) is
at (x, y) = ((c + 0.5) * scale, (r + 0.5) * scale). Walls are boxes `scale` wide and `0.5 * scale` tall,
as in JaxGCRL (Bortkiewicz et al. 2025), which takes them from D4RL's ant maze. Only the wall cells that
touch a free cell (8-neighbourhood, the implicit border included) are built, and runs of them along a row
are merged into one box: the same solid, fewer geoms for the collision pass.

Collision bits: the floor has conaffinity 1 and the robots' feet contype 1 (brax's assets). Walls get
contype 3 / conaffinity 1 and the robot's body geoms conaffinity 2, so bodies hit walls but neither the
floor nor each other (JaxGCRL gives the ant's torso and hips conaffinity 1, which also lets them collide
with the feet; the humanoid maze of JaxGCRL lets every body geom touch the floor: depthrl keeps brax's
feet-only floor contacts).
"""

from __future__ import annotations

import functools
import importlib.resources
import xml.etree.ElementTree as ET

import numpy as np

from depthrl.envs.maze import Layout

WALL_HEIGHT = 0.5  # in cells (JaxGCRL's MAZE_HEIGHT)

# Geoms of the robots that collide with walls (besides the feet, which already have contype 1).
ANT_BODY_GEOMS = ("torso_geom", "aux_1_geom", "aux_2_geom", "aux_3_geom", "aux_4_geom")


def brax_asset(name: str) -> str:
    """The text of one of brax's packaged MJCF files (e.g. "ant.xml")."""
    return (importlib.resources.files("brax") / "envs" / "assets" / name).read_text()


def wall_boxes(layout: Layout, scale: float) -> list[tuple[float, float, float, float]]:
    """(centre x, centre y, half width x, half width y) of the merged wall boxes, in world units."""
    walls = np.pad(layout.walls, 1, constant_values=True)  # the implicit border
    free = ~walls
    near_free = np.zeros_like(free)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near_free |= np.roll(np.roll(free, dr, axis=0), dc, axis=1)
    keep = walls & near_free
    boxes = []
    for r in range(keep.shape[0]):
        c = 0
        while c < keep.shape[1]:
            if not keep[r, c]:
                c += 1
                continue
            start = c
            while c < keep.shape[1] and keep[r, c]:
                c += 1
            # padded (r, c) is layout cell (r - 1, c - 1); a run covers columns start .. c - 1.
            x0, x1 = (start - 1) * scale, (c - 1) * scale
            y0 = (r - 1) * scale
            boxes.append(((x0 + x1) / 2, y0 + scale / 2, (x1 - x0) / 2, scale / 2))
    return boxes


def _add_walls(worldbody: ET.Element, layout: Layout, scale: float) -> None:
    height = WALL_HEIGHT * scale
    for i, (cx, cy, hx, hy) in enumerate(wall_boxes(layout, scale)):
        ET.SubElement(worldbody, "geom", name=f"wall_{i}", type="box", pos=f"{cx:.6g} {cy:.6g} {height / 2:.6g}",
                      size=f"{hx:.6g} {hy:.6g} {height / 2:.6g}", contype="3", conaffinity="1",
                      rgba="0.7 0.5 0.3 1")


def _body_geoms_hit_walls(root: ET.Element, names: tuple[str, ...] | None) -> None:
    """Give body geoms conaffinity 2 (walls only): the named ones, or every non-floor geom when None."""
    for geom in root.iter("geom"):
        name = geom.get("name", "")
        if name == "floor":
            continue
        if names is None or name in names:
            geom.set("conaffinity", "2")


@functools.lru_cache(maxsize=32)
def ant_xml(maze: Layout | None, scale: float = 4.0) -> str:
    """brax's Ant, plus the maze's walls when `maze` is given (torso and hips collide with them)."""
    root = ET.fromstring(brax_asset("ant.xml"))
    if maze is not None:
        _body_geoms_hit_walls(root, ANT_BODY_GEOMS)
        _add_walls(root.find("worldbody"), maze, scale)
    return ET.tostring(root, encoding="unicode")


@functools.lru_cache(maxsize=32)
def humanoid_xml(maze: Layout | None, scale: float = 2.0) -> str:
    """brax's Humanoid, plus the maze's walls when `maze` is given (every body geom collides with them)."""
    root = ET.fromstring(brax_asset("humanoid.xml"))
    if maze is not None:
        _body_geoms_hit_walls(root, None)
        _add_walls(root.find("worldbody"), maze, scale)
    return ET.tostring(root, encoding="unicode")
