"""The physics tasks by name (no brax import): dims, descriptions, config checks, construction.

The registry (`depthrl.envs.registry`) dispatches the names of `ENVS` here. The dims are recorded here so
that `depthrl envs` lists them without brax installed; a test checks them against the built envs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from depthrl.envs import physics, stitching
from depthrl.envs.maze import BUILTIN_LAYOUTS, parse_layout
from depthrl.errors import ConfigError, check_defaults, check_positive

CUSTOM = ""  # `maze` of a task whose layout comes from --layout


@dataclasses.dataclass(frozen=True)
class PhysicsTask:
    robot: str  # "ant", "humanoid" or "arm"
    description: str
    obs_dim: int
    action_dim: int
    maze: str | None = None  # built-in layout name, CUSTOM (--layout), or None (no maze)
    stitching: bool = False  # the stitching protocol is on without --stitching
    arm_task: str | None = None  # arm.ARM_TASKS key
    backend: str = "spring"  # the paper's pipeline for this task
    episode_length: int = 1000  # the paper's (time at goal is reported out of 1000 steps)

    @property
    def backends(self) -> tuple[str, ...]:
        return ("mjx",) if self.robot == "arm" else ("spring", "generalized", "mjx")


_ANT, _HUMANOID, _ARM, _REACH = (31, 8), (271, 17), (20, 5), (16, 4)

ENVS: dict[str, PhysicsTask] = {
    "ant": PhysicsTask("ant", "Ant (brax): walk to a goal 10 m away in any direction.", *_ANT),
    "ant-u-maze": PhysicsTask("ant", "Ant in the U-maze (4 m cells): goals behind the wall.", *_ANT, maze="u"),
    "ant-u4-maze": PhysicsTask("ant", "Ant in the U4-maze (paper Table 1): 10 cells round the wall.", *_ANT,
                               maze="u4"),
    "ant-u5-maze": PhysicsTask("ant", "Ant in the U5-maze (paper Table 1): 16 cells round the wall.", *_ANT,
                               maze="u5"),
    "ant-big-maze": PhysicsTask("ant", "Ant in JaxGCRL's big maze (paper Table 1).", *_ANT, maze="big"),
    "ant-hardest-maze": PhysicsTask("ant", "Ant in JaxGCRL's hardest maze (paper Table 1).", *_ANT, maze="hardest"),
    "ant-u4-maze-stitch": PhysicsTask("ant", "Ant stitching: train on U4-maze cell pairs <= 3 apart, evaluate on "
                                             "4..6 apart (--stitch-* flags).", *_ANT, maze="u4", stitching=True),
    "ant-custom-maze": PhysicsTask("ant", "Ant in the maze given by --layout (built-in name, file or ASCII rows).",
                                   *_ANT, maze=CUSTOM),
    "humanoid": PhysicsTask("humanoid", "Humanoid (brax): walk to a goal 1-5 m away (paper Table 1).", *_HUMANOID),
    "humanoid-u-maze": PhysicsTask("humanoid", "Humanoid in the U-maze (2 m cells, paper Table 1).", *_HUMANOID,
                                   maze="u"),
    "humanoid-big-maze": PhysicsTask("humanoid", "Humanoid in JaxGCRL's big maze (2 m cells, paper Table 1).",
                                     *_HUMANOID, maze="big"),
    "humanoid-hardest-maze": PhysicsTask("humanoid", "Humanoid in the hardest maze (2 m cells; the paper code's "
                                                     "humanoid_hardest_maze).", *_HUMANOID, maze="hardest"),
    # The paper code's evaluation layouts (far goals only): train on the maze, --eval-env on these.
    "ant-u-maze-eval": PhysicsTask("ant", "Ant U-maze, far goals only (the paper's u_maze_eval).", *_ANT,
                                   maze="u-eval"),
    "ant-u4-maze-eval": PhysicsTask("ant", "Ant U4-maze, far goals only (the paper's u4_maze_eval).", *_ANT,
                                    maze="u4-eval"),
    "ant-u5-maze-eval": PhysicsTask("ant", "Ant U5-maze, far goals only (the paper's u5_maze_eval).", *_ANT,
                                    maze="u5-eval"),
    "ant-big-maze-eval": PhysicsTask("ant", "Ant big maze, far goals only (the paper's big_maze_eval; its job "
                                            "script evaluates ant-big-maze here).", *_ANT, maze="big-eval"),
    "humanoid-u-maze-eval": PhysicsTask("humanoid", "Humanoid U-maze, far goals only (the paper's u_maze_eval).",
                                        *_HUMANOID, maze="u-eval"),
    "humanoid-big-maze-eval": PhysicsTask("humanoid", "Humanoid big maze, far goals only (the paper's "
                                                      "big_maze_eval).", *_HUMANOID, maze="big-eval-humanoid"),
    "arm-push-easy": PhysicsTask("arm", "Panda arm (MJX) pushes a cube to a goal on the table, small regions.",
                                 *_ARM, arm_task="push-easy", backend="mjx"),
    "arm-push-hard": PhysicsTask("arm", "Panda arm (MJX) pushes a cube to a goal on the table, wide regions.",
                                 *_ARM, arm_task="push-hard", backend="mjx"),
    "arm-binpick-hard": PhysicsTask("arm", "Panda arm (MJX) carries a cube from the blue bin to the red bin.",
                                    *_ARM, arm_task="binpick-hard", backend="mjx"),
    "arm-binpick-easy": PhysicsTask("arm", "Panda arm (MJX) carries a cube between two closer, smaller bins "
                                           "(not in Table 1).", *_ARM, arm_task="binpick-easy", backend="mjx"),
    "arm-reach": PhysicsTask("arm", "Panda arm (MJX, no fingers) moves its hand to a goal in a 0.4 m box above the "
                                    "table (the paper code's arm_reach; not in Table 1).", *_REACH, arm_task="reach",
                             backend="mjx"),
}


def validate_config(cfg: Any) -> None:
    """EnvConfig checks for a physics --env (every check runs before brax is imported)."""
    task = ENVS[cfg.env]
    physics.require(cfg.env)
    if cfg.physics_backend is not None and cfg.physics_backend not in task.backends:
        raise ConfigError("--physics-backend", cfg.physics_backend,
                          f"--env {cfg.env} runs on {', '.join(task.backends)}")
    if cfg.episode_length is not None:
        check_positive("--episode-length", cfg.episode_length)
    if cfg.success_radius is not None:
        check_positive("--success-radius", cfg.success_radius)
    if task.robot == "arm" and cfg.early_termination is not None:
        raise ConfigError("--early-termination", cfg.early_termination, f"--env {cfg.env} never ends early (the arm "
                                                                        "has no healthy range)")
    if task.maze == CUSTOM and cfg.layout is None:
        raise ConfigError("--layout", None, f"--env {cfg.env} needs --layout (one of {', '.join(BUILTIN_LAYOUTS)}, "
                                            "a file, or ASCII rows separated by '/')")
    if task.maze != CUSTOM and cfg.layout is not None:
        raise ConfigError("--layout", cfg.layout, f"only with --env ant-custom-maze ({cfg.env} has its own "
                                                  f"{'maze' if task.maze else 'open floor'})")
    if task.maze is None:
        check_defaults(cfg, (("--random-start", "random_start"), ("--stitching", "stitching")),
                       f"only for mazes, not --env {cfg.env}")
    layout = parse_layout(cfg.layout if task.maze == CUSTOM else task.maze) if task.maze is not None else None
    stitching.validate_flags(cfg, layout, on=cfg.stitching or task.stitching)


def make_envs(cfg: Any) -> tuple[Any, Any, int]:
    """(train env, eval env, episode length) for a physics --env (validated by `registry.make_envs`); the envs
    are unwrapped (no time limit)."""
    task = ENVS[cfg.env]
    length = cfg.episode_length or task.episode_length
    backend = cfg.physics_backend or task.backend
    common: dict[str, Any] = dict(name=cfg.env, backend=backend, episode_length=length)
    if cfg.success_radius is not None:
        common["success_radius"] = cfg.success_radius
    if task.robot == "arm":
        from depthrl.envs.physics.arm import Arm

        env = Arm(task=task.arm_task, **common)
        return env, env, length
    from depthrl.envs.physics.locomotion import Locomotion

    common["terminate"] = cfg.early_termination is not False  # the paper's code terminates Ant and Humanoid
    if task.maze is None:
        env = Locomotion(robot=task.robot, **common)
        return env, env, length
    layout = parse_layout(cfg.layout if task.maze == CUSTOM else task.maze)
    common.update(robot=task.robot, maze=layout)
    if cfg.stitching or task.stitching:
        (pairs, weights), (eval_pairs, eval_weights) = stitching.train_eval_pairs(cfg, layout)
        train = Locomotion(pairs=pairs, pair_weights=weights, **common)
        evaluation = Locomotion(pairs=eval_pairs, pair_weights=eval_weights, **common)
        return train, evaluation, length
    env = Locomotion(random_start=cfg.random_start, **common)
    return env, env, length


def list_envs() -> list[tuple[str, int, int, str]]:
    """(name, obs_dim, action_dim, description) of every physics task (brax not needed)."""
    suffix = "" if physics.available() else f" [needs {physics.INSTALL_COMMAND}]"
    return [(name, task.obs_dim, task.action_dim, task.description + suffix) for name, task in ENVS.items()]
