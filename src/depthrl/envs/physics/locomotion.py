"""Ant and Humanoid goal reaching, in the open or in a maze, on brax (spring / generalized / MJX pipelines).

Task definitions follow JaxGCRL (Bortkiewicz et al. 2025) and the 1000-layer paper's code (Wang et al.
2025, scaling-crl `train.py`), read for their numbers; the code is depthrl's:

  robot     state (obs without goal)                                   goal              radius
  ant       q (15: torso xyz, quaternion, 8 joints) ++ qd (14) = 29     torso (x, y)      0.5
  humanoid  q (26) ++ qd (25) ++ per-link com inertia (12 x 10) ++      torso (x, y, z),  0.5
            per-link com velocity (12 x 6) ++ actuator forces (25)      z goal = 1.25
            = 268

The Humanoid's model carries the paper's goal body (`target`, on two slide joints, placed at the goal at
reset; no contacts), so its q, qd, links and forces include it and its state is the paper's 268 entries,
centre-of-mass features included. The Ant's has no goal body (the paper's Ant drops those entries: 29).

Goals: Ant in the open, uniform on the circle of radius 10 around the start (the origin); Humanoid in the
open, at a distance uniform in [1, 5] and a uniform angle. Mazes: episodes start at the centre of a
reset cell (`R`) and the goal is the centre of a goal cell (`G`), both drawn uniformly; cells are 4 m
for the Ant and 2 m for the Humanoid, and cell (row r, column c) is centred at (r, c) × cell size, as in
the paper's code (`assets`). Stitching draws (start, goal) cell pairs instead (`depthrl.envs.stitching`).
The Ant starts with uniform noise of ±0.1 added to every entry of q (torso position, its quaternion as
is, joint angles) and normal noise of 0.1 on qd, as the paper's; the Humanoid starts still at brax's
initial pose, facing +x (reset noise 0).

Early termination (`terminate`; on by default, as the paper's code sets `terminate_when_unhealthy`):
an episode ends on the step after which the torso height (the torso body's z) leaves the healthy range,
(0.2, 1.0) m for the Ant and (1.0, 2.0) m for the Humanoid, in the open and in the mazes; the replay
buffer keeps variable-length episodes apart. Reward = 1 within the success radius. Actions are in
[-1, 1]: the Ant's are its motor controls, the Humanoid's are scaled to its actuators' control range
(±0.4), as brax's Humanoid does.

Backends (n_frames physics steps per env step): spring (`spring_timestep` × 10: Ant 0.005 s, Humanoid
mazes 0.0015 s, open Humanoid 0.003 s, what the paper's code effectively runs; Humanoid gears 350/100 as
brax's spring Humanoid), generalized (the assets' timesteps × 5), mjx (Newton solver, 1 iteration,
4 line-search iterations, no Euler damping, × 5, as JaxGCRL).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from depthrl.envs.base import EnvSpec, State
from depthrl.envs.maze import Layout, pick_pair, start_and_goal_cells
from depthrl.envs.physics import assets

BACKENDS = ("spring", "generalized", "mjx")
HUMANOID_GOAL_Z = 1.25  # about the torso height of a standing humanoid (JaxGCRL's TARGET_Z_COORD)
# Torso heights (m) outside which an episode terminates: the paper's code, envs/ant*.py and humanoid*.py.
HEALTHY_Z = {"ant": (0.2, 1.0), "humanoid": (1.0, 2.0)}


@struct.dataclass
class Physics:
    """Simulator state of one env and its goal."""

    pipeline: object  # the brax pipeline state (spring / generalized / mjx)
    goal: jax.Array  # [goal_dim]


def spring_timestep(robot: str, maze: bool) -> float:
    """The spring pipeline's physics step (s) that the paper's code effectively runs (10 per env step).

    Ant and Humanoid mazes: its `sys.replace(dt=...)`, 0.005 s and 0.0015 s. Open Humanoid: its override
    sets `opt.timestep = 0.0015`, which brax 0.10.1's spring pipeline never reads (it steps `sys.dt`), so the
    asset's 0.003 s stands (scaling-crl `envs/humanoid.py`, `envs/assets/humanoid.xml`).
    """
    if robot == "ant":
        return 0.005
    return 0.0015 if maze else 0.003


@functools.lru_cache(maxsize=32)
def load_system(robot: str, maze: Layout | None, scale: float, backend: str):
    """(brax System, n_frames) of a robot in a maze (or the open), configured for `backend`. Cached."""
    import mujoco
    from brax.io import mjcf

    xml = assets.ant_xml(maze, scale) if robot == "ant" else assets.humanoid_xml(maze, scale)
    # Concrete arrays even when first called inside a jit trace (cached: a tracer here would leak).
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore", UserWarning)  # brax's notice that its own pipelines are unmaintained
        sys = mjcf.loads(xml)
        n_frames = 5
        if backend == "spring":
            sys = sys.tree_replace({"opt.timestep": spring_timestep(robot, maze is not None)})
            n_frames = 10
            if robot == "humanoid":  # brax's spring humanoid: stronger hips and legs, weaker arms
                gear = jnp.array([350.0] * 11 + [100.0] * 6)
                sys = sys.replace(actuator=sys.actuator.replace(gear=gear))
        elif backend == "mjx":
            sys = sys.tree_replace({
                "opt.solver": mujoco.mjtSolver.mjSOL_NEWTON,
                "opt.disableflags": mujoco.mjtDisableBit.mjDSBL_EULERDAMP,
                "opt.iterations": 1,
                "opt.ls_iterations": 4,
            })
        return sys, n_frames


def pipeline_module(backend: str):
    if backend == "spring":
        from brax.spring import pipeline
    elif backend == "generalized":
        from brax.generalized import pipeline
    elif backend == "mjx":
        from brax.mjx import pipeline
    else:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    return pipeline


@dataclasses.dataclass(frozen=True)
class Locomotion:
    """Ant or Humanoid reaching a goal position; see the module docstring for the task definitions.

    robot: "ant" or "humanoid". maze: a Layout (None = the open floor). pairs: (start, goal) indices into
    `maze.free_cells` (stitching), exclusive with random_start (start in any free cell connected to the
    goals). terminate: end the episode (`done` = 1) when the torso height leaves `HEALTHY_Z[robot]`.
    info: `distance` (torso to goal), `at_goal` (1.0 within `success_radius`).
    """

    robot: str
    name: str
    maze: Layout | None = None
    pairs: tuple[tuple[int, int], ...] | None = None
    pair_weights: tuple[float, ...] | None = None  # sampling weights of `pairs` (None = uniform)
    random_start: bool = False
    backend: str = "spring"
    success_radius: float = 0.5
    episode_length: int = 1000
    scale: float | None = None  # maze cell size in metres (None = 4 for the Ant, 2 for the Humanoid)
    terminate: bool = True

    def __post_init__(self):
        if self.robot not in ("ant", "humanoid"):
            raise ValueError(f"robot {self.robot!r} must be 'ant' or 'humanoid'")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {BACKENDS}")
        if (self.pairs is not None or self.random_start) and self.maze is None:
            raise ValueError("pairs and random_start need a maze")
        if self.pairs is not None and self.random_start:
            raise ValueError("random_start and pairs are exclusive: pairs fix the start cells")

    # ---- static parts ----

    @property
    def cell_size(self) -> float:
        return self.scale if self.scale is not None else (4.0 if self.robot == "ant" else 2.0)

    @property
    def system(self):
        return load_system(self.robot, self.maze, self.cell_size, self.backend)[0]

    @property
    def n_frames(self) -> int:
        return load_system(self.robot, self.maze, self.cell_size, self.backend)[1]

    @property
    def dt(self) -> float:
        return float(self.system.opt.timestep) * self.n_frames

    @property
    def goal_dim(self) -> int:
        return 2 if self.robot == "ant" else 3

    @functools.cached_property
    def state_dim(self) -> int:
        sys = self.system
        if self.robot == "ant":
            return sys.q_size() + sys.qd_size()
        links = sys.num_links()
        return sys.q_size() + sys.qd_size() + 10 * links + 6 * links + sys.qd_size()

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(name=self.name, obs_dim=self.state_dim + self.goal_dim, action_dim=self.system.act_size(),
                       state_dim=self.state_dim, goal_indices=tuple(range(self.goal_dim)),
                       episode_length=self.episode_length, success_radius=self.success_radius)

    def cell_centres(self, indices: np.ndarray) -> np.ndarray:
        """[n, 2] world (x, y) of the centres of the maze's free cells `indices` ((row, column) × cell size)."""
        return assets.cell_xy(self.maze, indices, self.cell_size)

    def drawing_xy(self, xy: np.ndarray) -> np.ndarray:
        """World (x, y) [..., 2] -> the maze drawing's coordinates in cells (x = column + 0.5, y = row + 0.5 at a
        cell's centre, as the point mazes and `depthrl.envs.render` use)."""
        xy = np.asarray(xy, dtype=float)
        return xy[..., ::-1] / self.cell_size + 0.5

    @functools.cached_property
    def _start_and_goal_cells(self) -> tuple[np.ndarray, np.ndarray]:
        return start_and_goal_cells(self.maze, self.pairs, self.random_start)

    # ---- functional API ----

    def _sample_start_goal(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """World (x, y) of the start and the goal position ([goal_dim])."""
        if self.maze is None:
            angle_key, dist_key = jax.random.split(key)
            angle = 2.0 * math.pi * jax.random.uniform(angle_key)
            if self.robot == "ant":
                dist = 10.0
            else:
                dist = jax.random.uniform(dist_key, minval=1.0, maxval=5.0)
            xy = dist * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
            start = jnp.zeros(2)
        else:
            starts, goals = self._start_and_goal_cells
            start_xy, goal_xy = jnp.asarray(self.cell_centres(starts)), jnp.asarray(self.cell_centres(goals))
            if self.pairs is not None:
                i = pick_pair(jax.random.uniform(key), self.pair_weights, len(starts))
                start, xy = start_xy[i], goal_xy[i]
            else:
                start_key, goal_key = jax.random.split(key)
                start = start_xy[jax.random.randint(start_key, (), 0, len(starts))]
                xy = goal_xy[jax.random.randint(goal_key, (), 0, len(goals))]
        goal = xy if self.robot == "ant" else jnp.concatenate([xy, jnp.array([HUMANOID_GOAL_Z])])
        return start, goal.astype(jnp.float32)

    def init_physics(self, q: jax.Array, qd: jax.Array, goal: jax.Array) -> Physics:
        """The physics state for generalized positions q and velocities qd (a scripted check uses it)."""
        pipeline = pipeline_module(self.backend).init(self.system, q, qd)
        return Physics(pipeline=pipeline, goal=goal)

    def reset(self, key: jax.Array) -> State:
        sys = self.system
        goal_key, q_key, qd_key = jax.random.split(key, 3)
        start, goal = self._sample_start_goal(goal_key)
        q = jnp.asarray(sys.init_q)
        qd = jnp.zeros(sys.qd_size())
        q = q.at[:2].set(start)
        if self.robot == "ant":  # the paper's: uniform ±0.1 on every q entry (quaternion included), normal 0.1 on qd
            q = q + jax.random.uniform(q_key, q.shape, minval=-0.1, maxval=0.1)
            qd = 0.1 * jax.random.normal(qd_key, qd.shape)
        if self.robot == "humanoid":  # the paper's goal body (its last two q entries) sits at the goal
            q = q.at[-2:].set(goal[:2])
        physics = self.init_physics(q, qd, goal)
        return self._state(physics, jnp.zeros(sys.act_size()), jnp.zeros((), jnp.float32))

    def step(self, state: State, action: jax.Array) -> State:
        sys = self.system
        action = jnp.clip(jnp.where(jnp.isfinite(action), action, 0.0), -1.0, 1.0)
        if self.robot == "humanoid":  # [-1, 1] -> the actuators' control range
            low, high = sys.actuator.ctrl_range[:, 0], sys.actuator.ctrl_range[:, 1]
            action = low + (action + 1.0) * 0.5 * (high - low)
        pipeline = pipeline_module(self.backend)

        def physics_step(pipeline_state, _):
            return pipeline.step(sys, pipeline_state, action), None

        next_pipeline, _ = jax.lax.scan(physics_step, state.physics.pipeline, None, length=self.n_frames)
        done = jnp.zeros((), jnp.float32)
        if self.terminate:
            low, high = HEALTHY_Z[self.robot]
            height = next_pipeline.x.pos[0, 2]  # the torso, body 0
            done = ((height < low) | (height > high)).astype(jnp.float32)
        return self._state(state.physics.replace(pipeline=next_pipeline), action, done)

    # ---- observation ----

    def robot_state(self, pipeline_state, action: jax.Array) -> jax.Array:
        """[state_dim] the robot's state (the obs without the goal)."""
        if self.robot == "ant":
            return jnp.concatenate([pipeline_state.q, pipeline_state.qd])
        return jnp.concatenate([pipeline_state.q, pipeline_state.qd, *self._humanoid_features(pipeline_state, action)])

    def _humanoid_features(self, pipeline_state, action: jax.Array) -> list[jax.Array]:
        """Per-link inertia and velocity about the centre of mass, and the actuator forces (brax's Humanoid)."""
        from brax import actuator, base

        sys = self.system
        inertia = sys.link.inertia
        if self.backend == "spring":  # the masses and inertias spring actually integrates with
            inertia = inertia.replace(
                i=jax.vmap(jnp.diag)(jax.vmap(jnp.diagonal)(inertia.i) ** (1 - sys.spring_inertia_scale)),
                mass=inertia.mass ** (1 - sys.spring_mass_scale))
        link_com = pipeline_state.x.vmap().do(inertia.transform)  # each link's centre of mass, world frame
        total_mass = jnp.sum(inertia.mass)
        com = jnp.sum(inertia.mass[:, None] * link_com.pos, axis=0) / total_mass
        about_com = link_com.replace(pos=link_com.pos - com).vmap().do(inertia)
        com_inertia = jnp.concatenate([about_com.i.reshape(-1, 9), inertia.mass[:, None]], axis=1)
        offset = base.Transform.create(pos=link_com.pos - pipeline_state.x.pos)
        motion = offset.vmap().do(pipeline_state.xd)
        com_velocity = jnp.concatenate([inertia.mass[:, None] * motion.vel / total_mass, motion.ang], axis=1)
        forces = actuator.to_tau(sys, action, pipeline_state.q, pipeline_state.qd)
        return [com_inertia.reshape(-1), com_velocity.reshape(-1), forces]

    def _state(self, physics: Physics, action: jax.Array, done: jax.Array) -> State:
        robot_state = self.robot_state(physics.pipeline, action).astype(jnp.float32)
        reached = robot_state[: self.goal_dim]
        distance = jnp.sqrt(jnp.sum((reached - physics.goal) ** 2))
        at_goal = (distance < self.success_radius).astype(jnp.float32)
        obs = jnp.concatenate([robot_state, physics.goal])
        info = {"distance": distance, "at_goal": at_goal}
        return State(obs=obs, reward=at_goal, done=done, info=info, physics=physics)
