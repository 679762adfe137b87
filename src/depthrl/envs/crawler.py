"""A planar crawler in the point mazes: the goal is the base's (x, y), but most of the state is joint space.

The paper explains the gain from depth by tasks whose critic must learn the maze from a state that is not
the goal space (the Ant: 29-d joint state, 2-d goal). `CrawlerMaze` is a cheap embedded task of that kind:
a snake-like body whose base position is the goal, whose state is mostly its heading and joint angles and
velocities, and which moves only through a coordinated gait.

Body: a heading θ and `num_joints` joint angles q (radians, clipped to ±`max_angle`) with velocities dq.
Action a ∈ [-1, 1]^num_joints (clipped; non-finite entries act as 0) accelerates the joints, as the
point mass's action accelerates the mass: dq ← damping · dq + accel · dt · a, clipped to ±`joint_speed`;
q ← clip(q + dq · dt). A joint at its limit stops (its velocity is zeroed).

Locomotion (Purcell's swimmer, kinematic): the base moves along its heading at speed

    v = propulsion · Σ_i (q_i · dq_{i+1} − q_{i+1} · dq_i) / (num_joints − 1),

the rate at which the shape (q_i, q_{i+1}) of each pair of neighbouring joints sweeps area (per step:
Σ_i (q_i · q'_{i+1} − q_{i+1} · q'_i) / (num_joints − 1) / dt from the old angles q to the new q'). Only a cyclic,
phase-shifted motion of neighbouring joints (a travelling wave) moves the base; moving one joint, or all in
phase, does not. The sign of the loop's direction sets forwards or backwards. The heading turns at
ω = turn_rate · mean(q) (a body bent to one side turns to that side), so steering is a bias of the gait.
The base is the point mass's square (half-side `radius`) and moves with the point mass's swept collision
(`PointMaze._move_axis`), one axis at a time: it never enters or crosses a wall; the joints are internal
shape and do not collide. The speed is capped at `max_speed` cells/s (a scripted travelling wave reaches ≈ 1.4).

state = (x, y, cos θ, sin θ, q_1..q_N, dq_1..dq_N), goal = (gx, gy), obs = concat(state, goal):
state_dim 4 + 2N (12 with the default 4 joints), goal_indices (0, 1), action_dim N.
Resets as `PointMaze` (reset/goal cells, `random_start`, `pairs`), plus a uniform heading and joint
angles uniform in ±`reset_angle`, velocities 0. `episode_length` = None picks 30 steps per cell of the
longest start→goal shortest path (the crawler is about half as fast as the point mass and must turn),
rounded up to a multiple of 50, at least 200. Reward and info as `PointMaze`: reward = at_goal = 1.0
within `success_radius` of the goal.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from depthrl.envs.base import EnvSpec, State
from depthrl.envs.maze import PointMaze, cell_distances


@struct.dataclass
class CrawlerState:
    """Physics of one crawler: base position, heading, joint angles and velocities, and its goal."""

    pos: jax.Array  # [2] (x, y), cells
    heading: jax.Array  # [] radians
    q: jax.Array  # [N] joint angles, radians
    dq: jax.Array  # [N] joint velocities, radians per second
    goal: jax.Array  # [2] (x, y)


@dataclasses.dataclass(frozen=True)
class CrawlerMaze(PointMaze):
    """Planar crawler in a maze (see the module docstring): 2-d goal, (4 + 2·num_joints)-d state."""

    name: str = "crawler-maze"
    num_joints: int = 4
    max_angle: float = 1.0
    joint_speed: float = 3.0
    accel: float = 20.0
    damping: float = 0.5
    propulsion: float = 0.5
    turn_rate: float = 2.0
    max_speed: float = 1.5
    reset_angle: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        if self.num_joints < 2:
            raise ValueError(f"num_joints={self.num_joints} must be >= 2 (the gait needs neighbouring joints)")

    @functools.cached_property
    def _point_maze(self) -> PointMaze:
        """The point maze with the same layout and start/goal sampling: it draws the base's start and goal."""
        return PointMaze(layout=self.layout, random_start=self.random_start, pairs=self.pairs,
                         pair_weights=self.pair_weights, success_radius=self.success_radius, radius=self.radius,
                         reset_noise=self.reset_noise, goal_noise=self.goal_noise)

    @functools.cached_property
    def default_episode_length(self) -> int:
        starts, goals = self._start_and_goal_cells
        dist = cell_distances(self.layout)
        longest = int(
            dist[starts, goals].max() if self.pairs is not None else dist[np.ix_(starts, goals)].max()
        )
        return max(200, 50 * math.ceil(30 * longest / 50))

    @property
    def spec(self) -> EnvSpec:
        n = self.num_joints
        return EnvSpec(
            name=self.name,
            obs_dim=4 + 2 * n + 2,
            action_dim=n,
            state_dim=4 + 2 * n,
            goal_indices=(0, 1),
            episode_length=self.episode_length or self.default_episode_length,
            success_radius=self.success_radius,
        )

    def reset(self, key: jax.Array) -> State:
        point_key, body_key = jax.random.split(key)
        point = self._point_maze.reset(point_key).physics
        u = jax.random.uniform(body_key, (1 + self.num_joints,), jnp.float32, -1.0, 1.0)
        physics = CrawlerState(pos=point.pos, heading=math.pi * u[0], q=self.reset_angle * u[1:],
                               dq=jnp.zeros(self.num_joints, jnp.float32), goal=point.goal)
        return self._state(physics, done=jnp.zeros((), jnp.float32))

    def step(self, state: State, action: jax.Array) -> State:
        p: CrawlerState = state.physics
        action = jnp.clip(jnp.where(jnp.isfinite(action), action, 0.0), -1.0, 1.0).astype(jnp.float32)
        dq = jnp.clip(self.damping * p.dq + (self.accel * self.dt) * action, -self.joint_speed, self.joint_speed)
        q_free = p.q + dq * self.dt
        q = jnp.clip(q_free, -self.max_angle, self.max_angle)
        dq = jnp.where(q == q_free, dq, 0.0)  # a joint at its limit stops
        # The swept area of each neighbouring pair over the step (exact for the straight segment in shape space).
        area = jnp.sum(p.q[:-1] * q[1:] - p.q[1:] * q[:-1]) / (self.num_joints - 1)
        speed = jnp.clip(self.propulsion * area / self.dt, -self.max_speed, self.max_speed)
        heading = p.heading + self.turn_rate * jnp.mean(q) * self.dt
        heading = jnp.mod(heading + math.pi, 2 * math.pi) - math.pi
        vx, vy = speed * jnp.cos(heading), speed * jnp.sin(heading)
        x, y = p.pos[0], p.pos[1]
        h = self.dt / self.substeps
        for _ in range(self.substeps):  # static, unrolled; 1 with the defaults
            x, vx = self._move_axis(x, y, vx, h, along_x=True)
            y, vy = self._move_axis(y, x, vy, h, along_x=False)
        physics = p.replace(pos=jnp.stack([x, y]), heading=heading, q=q, dq=dq)
        next_state = self._state(physics, done=jnp.zeros_like(state.done))
        if self.terminate_at_goal:  # --early-termination, as the point mass: the episode ends at the goal
            return next_state.replace(done=next_state.info["at_goal"])
        return next_state

    def _state(self, physics: CrawlerState, done: jax.Array) -> State:
        delta = physics.pos - physics.goal
        distance = jnp.sqrt(jnp.sum(delta * delta))
        at_goal = (distance < self.success_radius).astype(jnp.float32)
        heading = jnp.stack([jnp.cos(physics.heading), jnp.sin(physics.heading)])
        obs = jnp.concatenate([physics.pos, heading, physics.q, physics.dq, physics.goal])
        info = {"distance": distance, "at_goal": at_goal}
        return State(obs=obs, reward=at_goal, done=done, info=info, physics=physics)
