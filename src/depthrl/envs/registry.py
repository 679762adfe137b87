"""Registered environments and `EnvConfig`, the env flags shared by every trainer.

`make_envs(EnvConfig(...))` returns `(train_env, eval_env)`, each one env with time limit, auto-reset
and episode metrics (`EpisodeWrapper`); batch them with `jax.vmap(env.reset)(keys [N, ...])` and
`jax.vmap(env.step)(state, actions [N, action_dim])`. `batched_envs` returns the same envs batched
(`EpisodeWrapper(VmapWrapper(env))`, `reset(keys)`, `step(state, actions)`): identical results, but the
auto-reset is computed only on steps where an episode ends (faster for long episodes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from depthrl.envs import episodic, stitching
from depthrl.envs.base import Env
from depthrl.envs.crawler import CrawlerMaze
from depthrl.envs.maze import BUILTIN_LAYOUTS, Layout, PointMaze, parse_layout
from depthrl.envs.physics import catalog as physics_catalog
from depthrl.envs.wrappers import EpisodeWrapper, VmapWrapper
from depthrl.errors import ConfigError, check_defaults, check_positive

# name -> (built-in layout or None when --layout is required, description)
ENVS: dict[str, tuple[str | None, str]] = {
    "point-maze": (None, "Point mass in the maze given by --layout (built-in name, file or ASCII rows)."),
    "point-maze-u": ("u", "Point mass, U-maze: the goals in the far arm lie behind a wall."),
    "point-maze-u4": ("u4", "Point mass, U4-maze (as the paper's Ant U4-maze): 10 cells round the wall."),
    "point-maze-u5": ("u5", "Point mass, U5-maze (as the paper's Ant U5-maze): 16 cells round the wall."),
    "point-maze-big": ("big", "Point mass, JaxGCRL big maze (6x6 interior)."),
    "point-maze-hardest": ("hardest", "Point mass, JaxGCRL hardest maze (10x7 interior)."),
    "point-maze-open": ("open", "Point mass in a 5x5 open room: start and goal anywhere."),
    "point-maze-u-eval": ("u-eval", "Point mass, U-maze with only the far arm's goals (the paper's u_maze_eval)."),
    "point-maze-u4-eval": ("u4-eval", "Point mass, U4-maze with only the far goals (the paper's u4_maze_eval)."),
    "point-maze-u5-eval": ("u5-eval", "Point mass, U5-maze with only the far goals (the paper's u5_maze_eval)."),
    "point-maze-big-eval": ("big-eval", "Point mass, big maze with only the far goals (the paper's big_maze_eval)."),
    "crawler-maze": (None, "Planar crawler (12-d joint-space state, 2-d goal) in the maze given by --layout."),
    "crawler-maze-u": ("u", "Crawler, U-maze: moves only by a coordinated travelling wave of its 4 joints."),
    "crawler-maze-u4": ("u4", "Crawler, U4-maze: 10 cells round the wall, 300-step episodes."),
    "crawler-maze-big": ("big", "Crawler, JaxGCRL big maze (6x6 interior)."),
    "crawler-maze-hardest": ("hardest", "Crawler, JaxGCRL hardest maze (10x7 interior)."),
    "crawler-maze-open": ("open", "Crawler in a 5x5 open room: start and goal anywhere."),
}


@dataclasses.dataclass(frozen=True)
class GoalEnvEntry:
    """A goal env registered by a user's code (`register_env`)."""

    name: str
    make: Callable[[], Env]
    """Builds one unbatched env meeting the contract of `depthrl.envs.base` (pure JAX reset/step)."""
    episode_length: int
    """Steps per episode unless --episode-length says otherwise."""
    description: str = ""


# name -> a goal env added by `register_env` (the built-in ones are ENVS and physics_catalog.ENVS)
GOAL_ENVS: dict[str, GoalEnvEntry] = {}


def register_env(name: str, make: Callable[[], Env], episode_length: int, description: str = "") -> GoalEnvEntry:
    """Add a goal-conditioned env to `--env` (in this process), for every goal agent (CRL, SAC, TD3).

    `make()` returns one unbatched env: `spec` (an EnvSpec with state_dim and goal_indices), `reset(key)`
    and `step(state, action)` returning `State`s whose obs is concat(state[:state_dim], goal) and whose info
    holds `at_goal` (1.0 within the success radius) and `distance` (to the goal). depthrl adds the time
    limit, auto-reset and episode metrics (`EpisodeWrapper`). The contract is checked here on shapes only
    (jax.eval_shape: nothing runs); a name that is already taken is an error.
    """
    if name in ENVS or name in GOAL_ENVS or name in episodic.ENVS or name in physics_catalog.ENVS:
        raise ValueError(f"an env named {name!r} is already registered")
    if not (isinstance(episode_length, int) and episode_length > 0):
        raise ValueError(f"episode_length must be a positive int, got {episode_length!r}")
    _check_goal_env_contract(name, make())
    entry = GoalEnvEntry(name=name, make=make, episode_length=episode_length, description=description)
    GOAL_ENVS[name] = entry
    return entry


def _check_goal_env_contract(name: str, env: Env) -> None:
    spec = env.spec
    if spec.state_dim < 1 or not spec.goal_indices or max(spec.goal_indices) >= spec.state_dim:
        raise ValueError(f"{name}: spec.goal_indices {spec.goal_indices} must index the first state_dim="
                         f"{spec.state_dim} coordinates of the observation")
    if spec.obs_dim != spec.state_dim + spec.goal_dim:
        raise ValueError(f"{name}: spec.obs_dim={spec.obs_dim} must be state_dim + goal_dim = "
                         f"{spec.state_dim + spec.goal_dim} (obs = concat(state, goal))")
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    after = jax.eval_shape(env.step, state, jnp.zeros((spec.action_dim,), jnp.float32))
    for when, s in (("reset", state), ("step", after)):
        if s.obs.shape != (spec.obs_dim,):
            raise ValueError(f"{name}: {when} returns obs of shape {s.obs.shape}, spec.obs_dim is {spec.obs_dim}")
        missing = {"at_goal", "distance"} - set(s.info)
        if missing:
            raise ValueError(f"{name}: {when} returns no info[{', '.join(sorted(missing))}] (the episode metrics "
                             "need them)")


def _maze_class(env: str) -> type[PointMaze]:
    """The body of a maze env: the crawler (`crawler-maze*`) or the point mass."""
    return CrawlerMaze if env.startswith("crawler-maze") else PointMaze


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which environment to train and evaluate on."""

    env: str = "point-maze-u"
    """Registered environment name (`depthrl envs` lists them)."""
    layout: str | None = None
    """Maze for --env point-maze: a built-in name, a file, or ASCII rows separated by '/' (# . R G B)."""
    episode_length: int | None = None
    """Steps per episode (None = the env's default, sized to the maze)."""
    success_radius: float | None = None
    """Distance within which the goal is reached: cells (point mazes) or metres (physics; None = the env's default)."""
    random_start: bool = False
    """Start episodes anywhere free instead of at the reset cells (not with --stitching)."""
    stitching: bool = False
    """Stitching protocol: train on start/goal cells <= --stitch-train-max apart, evaluate on longer pairs."""
    stitch_train_max: int = 3
    """With --stitching: largest shortest-path distance (cells) between training start and goal."""
    stitch_eval_min: int = 4
    """With --stitching: smallest shortest-path distance (cells) between evaluation start and goal."""
    stitch_eval_max: int = 6
    """With --stitching: largest shortest-path distance (cells) between evaluation start and goal."""
    stitch_pairs: str = "all"
    """With --stitching: `all` draws every start/goal pair in the distance range, both directions, uniformly;
    `forward` is the paper code's protocol: pairs along the corridor from the R cell onwards (goal ahead of the
    start), equal total weight per distance (corridor mazes with one R cell: U, U4, U5)."""
    physics_backend: str | None = None
    """Physics envs only: brax pipeline spring, generalized or mjx (None = the task's: spring, mjx for the arm)."""
    early_termination: bool | None = None
    """End episodes early (None = the env's default). Ant and Humanoid tasks: when the torso height leaves
    (0.2, 1.0) m (Ant) or (1.0, 2.0) m (Humanoid), on by default as in the paper's code. Point mazes: on the
    step that reaches the goal, off by default (the paper has no point mazes). Not for the arm tasks."""
    goal_resample: str = "episode"
    """Training envs' starts and goals: "episode" draws new ones every episode; "never" keeps each env's first
    start, goal and start noise for the whole run, as the paper's code (its brax auto-reset restores each
    env's first state). Evaluation draws new ones at every evaluation either way."""
    eval_env: str | None = None
    """Evaluate on this goal env instead of --env (same obs and action dims; the other env flags apply to
    both), e.g. --env ant-big-maze --eval-env ant-big-maze-eval as the paper's published job script. None = --env."""

    def validate(self) -> EnvConfig:
        """Raise ConfigError naming the flag at fault; return self so calls can chain."""
        if self.physics_backend is not None and self.env not in physics_catalog.ENVS:
            raise ConfigError("--physics-backend", self.physics_backend, f"only for physics envs, not --env {self.env}")
        if self.goal_resample not in GOAL_RESAMPLE:
            raise ConfigError("--goal-resample", self.goal_resample, f"choose one of {', '.join(GOAL_RESAMPLE)}")
        if self.env in episodic.ENVS:  # gymnax and probe envs: reward-driven, early termination
            episodic.validate_config(self)
            return self
        if self.env in GOAL_ENVS:
            self._validate_registered_env()
            return self
        if self.eval_env is not None:
            self._validate_eval_env()
        if self.env in physics_catalog.ENVS:  # brax / MJX tasks (the physics extra)
            physics_catalog.validate_config(self)
            return self
        if self.env not in ENVS:
            raise ConfigError("--env", self.env,
                              f"choose one of {', '.join([*ENVS, *episodic.ENVS, *physics_catalog.ENVS, *GOAL_ENVS])}")
        builtin, _ = ENVS[self.env]
        if builtin is None and self.layout is None:
            raise ConfigError(
                "--layout",
                None,
                f"--env {self.env} needs --layout (one of {', '.join(BUILTIN_LAYOUTS)}, "
                "a file, or ASCII rows separated by '/')",
            )
        if builtin is not None and self.layout is not None:
            raise ConfigError(
                "--layout", self.layout, f"only with --env point-maze or crawler-maze ({self.env} has its own maze)"
            )
        layout = self.maze_layout()
        if self.episode_length is not None:
            check_positive("--episode-length", self.episode_length)
        if self.success_radius is not None:
            check_positive("--success-radius", self.success_radius)
        stitching.validate_flags(self, layout, on=self.stitching)
        return self

    def _validate_registered_env(self) -> None:
        """A user's env (`register_env`) takes the flags every env has, not the maze or physics ones."""
        if self.episode_length is not None:
            check_positive("--episode-length", self.episode_length)
        check_defaults(self, (("--layout", "layout"), ("--success-radius", "success_radius"),
                              ("--random-start", "random_start"), ("--stitching", "stitching"), *stitching.FLAGS,
                              ("--early-termination", "early_termination")),
                       f"not for --env {self.env} (an env registered by register_env: its own code decides this)")
        if self.eval_env is not None:
            self._validate_eval_env()

    def _validate_eval_env(self) -> None:
        if self.eval_env not in ENVS and self.eval_env not in physics_catalog.ENVS and self.eval_env not in GOAL_ENVS:
            raise ConfigError("--eval-env", self.eval_env, "must be a goal env (a point maze or a physics goal task, "
                                                           "see `depthrl envs`)")
        if self.stitching or (self.env in physics_catalog.ENVS and physics_catalog.ENVS[self.env].stitching):
            raise ConfigError("--eval-env", self.eval_env, "not with stitching (it evaluates on its own long pairs)")
        train_dims, eval_dims = _goal_env_dims(self.env), _goal_env_dims(self.eval_env)
        if train_dims != eval_dims:
            raise ConfigError("--eval-env", self.eval_env, f"has obs/action dims {eval_dims}, --env {self.env} has "
                                                           f"{train_dims}: the policy cannot act in it")
        self.eval_config().validate()

    def eval_config(self) -> EnvConfig:
        """The EnvConfig of the evaluation env: --eval-env with the other flags (--layout only where it needs one)."""
        if self.eval_env is None:
            return self
        task = physics_catalog.ENVS.get(self.eval_env)
        if task is not None:
            needs_layout = task.maze == physics_catalog.CUSTOM
        else:
            needs_layout = self.eval_env in ENVS and ENVS[self.eval_env][0] is None
        return dataclasses.replace(self, env=self.eval_env, eval_env=None, layout=self.layout if needs_layout else None)

    def maze_layout(self) -> Layout:
        builtin, _ = ENVS[self.env]
        return parse_layout(builtin if builtin is not None else self.layout)


GOAL_RESAMPLE = ("episode", "never")


def make_envs(cfg: EnvConfig) -> tuple[EpisodeWrapper, EpisodeWrapper]:
    """(train_env, eval_env), single envs with time limit, auto-reset and episode metrics (vmap them).

    Without stitching or --eval-env the two are the same env (the training one keeps its first start and
    goal with --goal-resample never). With stitching the training env samples only short pairs and the
    evaluation env only long ones; both share the episode length. With --eval-env the evaluation env is
    that env. The envs of `episodic.ENVS` (gymnax, probes) come as `EpisodeReturnWrapper(env)`, one env for both.
    """
    cfg.validate()  # the one validation of the env flags on the way to building envs
    if cfg.env in episodic.ENVS:
        env = episodic.make_env(cfg)
        return env, env
    return _wrapped_goal_envs(cfg, batched=False)


def batched_envs(cfg: EnvConfig) -> tuple[EpisodeWrapper, EpisodeWrapper]:
    """`make_envs` batched: `reset(keys [N, ...])`, `step(state, actions [N, action_dim])`."""
    cfg.validate()
    if cfg.env in episodic.ENVS:
        env = episodic.make_env(cfg)
        batched = dataclasses.replace(env, env=VmapWrapper(env.env))
        return batched, batched
    return _wrapped_goal_envs(cfg, batched=True)


def _wrapped_goal_envs(cfg: EnvConfig, batched: bool) -> tuple[EpisodeWrapper, EpisodeWrapper]:
    train, evaluation, length = _goal_envs(cfg)
    eval_length = length
    if cfg.eval_env is not None:
        _, evaluation, eval_length = _goal_envs(cfg.eval_config())
    batch = VmapWrapper if batched else (lambda env: env)
    return (EpisodeWrapper(batch(train), length, resample=cfg.goal_resample == "episode"),
            EpisodeWrapper(batch(evaluation), eval_length))


def _goal_envs(cfg: EnvConfig):
    """(train, eval, episode length) of a goal env: a point maze or a physics task (brax imported lazily)."""
    if cfg.env in physics_catalog.ENVS:
        return physics_catalog.make_envs(cfg)
    if cfg.env in GOAL_ENVS:
        entry = GOAL_ENVS[cfg.env]
        env = entry.make()
        return env, env, cfg.episode_length or entry.episode_length
    return _point_mazes(cfg)


def _goal_env_dims(name: str) -> tuple[int, int]:
    """(obs_dim, action_dim) of a goal env, without building it."""
    if name in physics_catalog.ENVS:
        task = physics_catalog.ENVS[name]
        return task.obs_dim, task.action_dim
    if name in GOAL_ENVS:
        spec = GOAL_ENVS[name].make().spec
        return spec.obs_dim, spec.action_dim
    spec = _maze_class(name)("open").spec
    return spec.obs_dim, spec.action_dim


def _point_mazes(cfg: EnvConfig) -> tuple[PointMaze, PointMaze, int]:
    layout = cfg.maze_layout()
    body = _maze_class(cfg.env)  # the point mass or the crawler: the same flags
    common = dict(layout=layout, name=cfg.env, random_start=cfg.random_start,
                  terminate_at_goal=bool(cfg.early_termination))
    if cfg.success_radius is not None:
        common["success_radius"] = cfg.success_radius
    if cfg.stitching:
        (pairs, weights), (eval_pairs, eval_weights) = stitching.train_eval_pairs(cfg, layout)
        train = body(pairs=pairs, pair_weights=weights, **common)
        evaluation = body(pairs=eval_pairs, pair_weights=eval_weights, **common)
    else:
        train = evaluation = body(**common)
    length = cfg.episode_length or max(train.default_episode_length, evaluation.default_episode_length)
    return train, evaluation, length


def list_envs() -> list[tuple[str, int, int, str]]:
    """(name, obs_dim, action_dim, description) of every registered env."""
    rows = []
    for name, (builtin, description) in ENVS.items():
        spec = _maze_class(name)(builtin or "open").spec  # every maze of one body shares the dims
        rows.append((name, spec.obs_dim, spec.action_dim, description))
    for entry in GOAL_ENVS.values():
        spec = entry.make().spec
        rows.append((entry.name, spec.obs_dim, spec.action_dim, entry.description))
    return rows + episodic.list_envs() + physics_catalog.list_envs()
