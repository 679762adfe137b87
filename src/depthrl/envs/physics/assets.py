"""MJCF models of the physics tasks, built in code from brax's packaged robots and depthrl's maze layouts.

Mazes come from `depthrl.envs.maze` layouts (one ASCII source of truth for the point mass and the robots).
World coordinates are those of the paper's code (scaling-crl `envs/ant_maze.py`, `humanoid_maze.py`, after
D4RL): the centre of cell (row r, column c) is at (x, y) = (r * scale, c * scale), so x grows down the
ASCII rows and y along them, and a robot that starts facing +x faces the next row. Walls are boxes
`scale` wide and `0.5 * scale` tall. Only the wall cells that touch a free cell (8-neighbourhood, the
implicit border included) are built, and runs of them along a row are merged into one box: the same solid,
fewer geoms for the collision pass.

Collision bits (a pair collides when one's contype shares a bit with the other's conaffinity): the floor has
conaffinity 1 and walls contype 3 / conaffinity 1. Ant (brax's asset, as the paper's ant.xml):
the feet have contype 1; in a maze the torso, hips and feet get conaffinity 1 as in the paper's
ant_maze.xml, so the torso and hips hit walls and feet, the feet hit the floor, walls and each other.
Humanoid: every body geom has contype 1 and conaffinity 0, as in the paper's
humanoid.xml and humanoid_maze.xml, so every body geom touches the floor and the walls and no two body
geoms collide; the paper's goal body (`target`, two slide joints, mass 1, no contacts) is added as well,
so the Humanoid's state is the paper's 268 entries.
"""

from __future__ import annotations

import functools
import importlib.resources
import xml.etree.ElementTree as ET

import numpy as np

from depthrl.envs.maze import Layout

WALL_HEIGHT = 0.5  # in cells (JaxGCRL's MAZE_HEIGHT)

# Geoms of the robots that collide with walls (besides the feet, which already have contype 1).
# Ant geoms with conaffinity 1 in the paper's ant_maze.xml: torso, hips and feet.
ANT_MAZE_CONAFFINITY = ("torso_geom", "aux_1_geom", "aux_2_geom", "aux_3_geom", "aux_4_geom", "left_foot_geom",
                        "right_foot_geom", "third_foot_geom", "fourth_foot_geom")


def brax_asset(name: str) -> str:
    """The text of one of brax's packaged MJCF files (e.g. "ant.xml")."""
    return (importlib.resources.files("brax") / "envs" / "assets" / name).read_text()


def cell_xy(layout: Layout, indices: np.ndarray, scale: float) -> np.ndarray:
    """[n, 2] world (x, y) of the centres of the free cells `indices`: (row, column) * scale."""
    return (layout.free_cells[np.asarray(indices, dtype=np.int32)] * scale).astype(np.float32)


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
            # padded (r, c) is layout cell (r - 1, c - 1), centred at ((r - 1) s, (c - 1) s); a run covers
            # columns start .. c - 1, so y spans (start - 1.5) s .. (c - 1.5) s.
            y0, y1 = (start - 1.5) * scale, (c - 1.5) * scale
            boxes.append(((r - 1) * scale, (y0 + y1) / 2, scale / 2, (y1 - y0) / 2))
    return boxes


def _add_walls(worldbody: ET.Element, layout: Layout, scale: float) -> None:
    height = WALL_HEIGHT * scale
    for i, (cx, cy, hx, hy) in enumerate(wall_boxes(layout, scale)):
        ET.SubElement(worldbody, "geom", name=f"wall_{i}", type="box", pos=f"{cx:.6g} {cy:.6g} {height / 2:.6g}",
                      size=f"{hx:.6g} {hy:.6g} {height / 2:.6g}", contype="3", conaffinity="1",
                      rgba="0.7 0.5 0.3 1")


def _set_conaffinity(root: ET.Element, names: tuple[str, ...]) -> None:
    """Give the named geoms conaffinity 1."""
    for geom in root.iter("geom"):
        if geom.get("name", "") in names:
            geom.set("conaffinity", "1")


@functools.lru_cache(maxsize=32)
def ant_xml(maze: Layout | None, scale: float = 4.0) -> str:
    """brax's Ant, plus the maze's walls when `maze` is given, with the paper's maze contacts (torso, hips and feet
    conaffinity 1)."""
    root = ET.fromstring(brax_asset("ant.xml"))
    if maze is not None:
        _set_conaffinity(root, ANT_MAZE_CONAFFINITY)
        _add_walls(root.find("worldbody"), maze, scale)
    return ET.tostring(root, encoding="unicode")


# The goal body of the paper's humanoid.xml / humanoid_maze.xml: slide range ±20 m in the open, ±100 m in mazes.
TARGET_RANGE = {False: 20, True: 100}


@functools.lru_cache(maxsize=32)
def humanoid_xml(maze: Layout | None, scale: float = 2.0) -> str:
    """brax's Humanoid with the paper's contacts (every body geom contype 1) and goal body, plus the maze's walls
    when `maze` is given."""
    root = ET.fromstring(brax_asset("humanoid.xml"))
    root.find("default").find("geom").set("contype", "1")
    worldbody = root.find("worldbody")
    target = ET.SubElement(worldbody, "body", name="target", pos="0 0 1.25")
    limit = TARGET_RANGE[maze is not None]
    for axis, name in (("1 0 0", "target_x"), ("0 1 0", "target_y")):
        ET.SubElement(target, "joint", name=name, type="slide", axis=axis, pos="0 0 0", limited="true",
                      range=f"{-limit} {limit}", armature="0", damping="0", stiffness="0")
    ET.SubElement(target, "geom", name="target", type="sphere", size="0.5", pos="0 0 0", mass="1", contype="0",
                  conaffinity="0")
    if maze is not None:
        _add_walls(worldbody, maze, scale)
    return ET.tostring(root, encoding="unicode")
