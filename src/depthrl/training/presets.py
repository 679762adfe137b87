"""Named presets: one command per result of the papers that depthrl can run.

`depthrl train crl --preset NAME` (or `depthrl train --preset NAME`) starts from a preset; any flag given
after it overrides it and `config.json` records the result. `depthrl presets` lists every preset with
the number the paper reports for it, so a user knows what to expect before paying for the run.

Two scales:
  cpu  point-mass mazes at width 64, minutes to an hour on a 2-core laptop: the quick start and a
       CPU-scale version of each experiment (depth scaling, stitching, representations, width vs depth,
       and the Table 1 maze layouts with a point mass instead of the Ant).
  gpu  the paper's own tasks with its code's recipe (brax/MJX physics, one GPU): Table 1 at depth 4 and 64,
       stitching and representations on the Ant, for every physics env the registry has.

Paper numbers are steps at goal out of 1000 (Wang et al. 2025, Table 1, depth 4 → 64: its code's
`episode_success`, the steps of an evaluation episode spent within the success radius while the episode
runs). depthrl logs the same count as `eval/steps_at_goal` and as a fraction of the time limit as
`eval/time_at_goal`, so 286 / 1000 reads as steps_at_goal 286, time_at_goal 0.286. A CPU
preset on a point mass names the Ant task it mirrors: its number is the paper's Ant result on the same
layout, a reference for the direction of the effect, not a prediction for the point mass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from depthrl.agents.crl import CRLConfig
from depthrl.agents.dqn import DQNConfig
from depthrl.agents.ppo import PPOConfig
from depthrl.agents.sac import SACConfig
from depthrl.agents.td3 import TD3Config
from depthrl.envs.registry import EnvConfig
from depthrl.training.loop import TrainConfig

# Wang et al. 2025, Table 1: time at goal (out of 1000 steps) at depth 4 and depth 64.
TABLE1: dict[str, tuple[float, float]] = {
    "Humanoid": (12.6, 649.0),
    "Humanoid U-Maze": (3.2, 159.0),
    "Humanoid Big Maze": (0.06, 59.0),
    "Ant U4-Maze": (11.4, 286.0),
    "Ant U5-Maze": (0.97, 61.0),
    "Ant Big Maze": (61.0, 441.0),
    "Ant Hardest Maze": (215.0, 387.0),
    "Arm Push Easy": (308.0, 762.0),
    "Arm Push Hard": (171.0, 410.0),
    "Arm Binpick Hard": (38.0, 219.0),
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named configuration and what the papers report for it."""

    name: str
    kind: str  # the agent (train subcommand) it runs: `depthrl train KIND --preset NAME`
    scale: str  # "cpu" or "gpu"
    experiment: str  # which experiment of the papers it belongs to
    description: str
    paper: str  # the paper's reported number or finding for this configuration
    env: EnvConfig
    agent: Any
    train: TrainConfig
    run_dir: str

    @property
    def command(self) -> str:
        return f"depthrl train {self.kind} --preset {self.name}"


def _table1(task: str, depth: int) -> str:
    d4, d64 = TABLE1[task]
    value = d4 if depth == 4 else d64
    return f"{task} depth {depth}: {value:g} / 1000 steps at goal (depth 4 → 64: {d4:g} → {d64:g})"


# The CPU training recipe of the quick start (64 envs × 50 steps per collection, 16 SGD steps of 256):
# the update-to-data ratio of early point-mass pilots (64 envs × 100 steps, 32 SGD steps), width 64.
_CPU_TRAIN = TrainConfig(num_envs=64, unroll_length=50, sgd_steps_per_collect=16, total_env_steps=3_000_000,
                         eval_every=200_000, num_eval_envs=256)


# The quick start's env and budget: CRL's `quickstart` preset, and `sac-quickstart` and `td3-quickstart` for a
# like-for-like baseline on a 2-core CPU.
QUICKSTART_ENV = EnvConfig(env="point-maze-u")
QUICKSTART_TRAIN = dataclasses.replace(_CPU_TRAIN, total_env_steps=1_500_000, eval_every=100_000)


# The depth showcase (docs/results.md): the crawler (envs/crawler.py) in the U4-maze with the CPU recipe, episodes
# (training and evaluation) starting in any free cell, so the critic learns about every position it is drawn at.
SHOWCASE_ENV = EnvConfig(env="crawler-maze-u4", random_start=True)
SHOWCASE_TRAIN = dataclasses.replace(_CPU_TRAIN, total_env_steps=3_000_000, eval_every=250_000)


def _cpu_agent(depth: int, width: int = 64) -> CRLConfig:
    return CRLConfig(depth=depth, width=width, batch_size=256)


def _crl_presets() -> list[Preset]:
    presets = [
        Preset("quickstart", "crl", "cpu", "main job",
               "CRL depth 4 on the point-mass U-maze: the README's first run, minutes on a 2-core CPU.",
               "no paper number (a CPU task); measured with depthrl, seed 0, 2-core CPU: success 0.89, "
               "time at goal 0.78 after the 1.5 M steps (about 1 min of training on idle cores)",
               QUICKSTART_ENV, _cpu_agent(4), QUICKSTART_TRAIN, "runs/quickstart"),
    ]
    for depth in (4, 16, 64):
        presets.append(Preset(
            f"depth-u-d{depth}", "crl", "cpu", "depth scaling",
            f"Depth scaling on the point-mass U-maze, depth {depth} (run d4, d16, d64 and `depthrl compare`).",
            "finding (a): performance grows with depth and jumps at a critical depth; Table 1, Humanoid "
            f"U-Maze, depth 4 → 64: {TABLE1['Humanoid U-Maze'][0]:g} → {TABLE1['Humanoid U-Maze'][1]:g} / 1000",
            EnvConfig(env="point-maze-u"), _cpu_agent(depth), _CPU_TRAIN, f"runs/depth-u-d{depth}"))
    for depth in (4, 16, 64):
        presets.append(Preset(
            f"depth-showcase-d{depth}", "crl", "cpu", "depth showcase",
            f"The crawler in the U4-maze (12-d joint-space state, 2-d goal, random starts), depth {depth}: the CPU "
            "task built to make depth pay (experiments/depth_showcase.py runs d4, d16, d64 x 5 seeds).",
            "the paper's explanation of finding (a): a critic that must learn the maze from a joint-space state "
            f"(Ant U4-Maze, depth 4 → 64: {TABLE1['Ant U4-Maze'][0]:g} → {TABLE1['Ant U4-Maze'][1]:g} / 1000); "
            "measured here: docs/results.md, depth showcase",
            SHOWCASE_ENV, _cpu_agent(depth), SHOWCASE_TRAIN, f"runs/depth-showcase-d{depth}"))
    for layout, task in (("u4", "Ant U4-Maze"), ("u5", "Ant U5-Maze"), ("big", "Ant Big Maze"),
                         ("hardest", "Ant Hardest Maze")):
        for depth in (4, 64):
            presets.append(Preset(
                f"pm-{layout}-d{depth}", "crl", "cpu", "Table 1 (point mass)",
                f"Table 1 maze {layout!r} with a point mass instead of the Ant, depth {depth}.",
                f"paper, Ant on this layout: {_table1(task, depth)}",
                EnvConfig(env=f"point-maze-{layout}"), _cpu_agent(depth),
                dataclasses.replace(_CPU_TRAIN, total_env_steps=5_000_000, eval_every=250_000),
                f"runs/pm-{layout}-d{depth}"))
    for depth in (4, 64):
        presets.append(Preset(
            f"stitch-d{depth}", "crl", "cpu", "stitching",
            f"Stitching on the U-maze, depth {depth}: train on start/goal pairs <= 3 cells apart, "
            "evaluate on pairs 4-6 cells apart.",
            "finding (g), Ant U-maze with the same protocol: deeper networks reach the unseen longer pairs "
            "more often (no single number)",
            EnvConfig(env="point-maze-u", stitching=True, stitch_train_max=3, stitch_eval_min=4,
                      stitch_eval_max=6),
            _cpu_agent(depth), _CPU_TRAIN, f"runs/stitch-d{depth}"))
    for depth in (4, 64):
        presets.append(Preset(
            f"repr-d{depth}", "crl", "cpu", "representations",
            f"Critic representations on the U-maze, depth {depth}: see plots/q_heatmap.png of the run. "
            "Episodes start anywhere, so the critic is trained on every position the heat-map shows.",
            "finding (f): the depth 4 critic's Q follows Euclidean distance through the wall, the depth 64 "
            "critic's follows the path round it (no single number)",
            EnvConfig(env="point-maze-u", random_start=True), _cpu_agent(depth), _CPU_TRAIN, f"runs/repr-d{depth}"))
    # Equal parameter count: 4 × 256² ≈ 16 × 128² hidden weights (262k each).
    for name, depth, width in (("width-d4-w256", 4, 256), ("width-d16-w128", 16, 128)):
        presets.append(Preset(
            name, "crl", "cpu", "depth vs width",
            f"Depth vs width at equal parameters on the U-maze: depth {depth}, width {width}.",
            "finding (b): at equal parameters depth beats width (Humanoid: depth 8 width 256 beats "
            "depth 4 width 4096)",
            EnvConfig(env="point-maze-u"), _cpu_agent(depth, width), _CPU_TRAIN, f"runs/{name}"))
    return presets


# The paper code's recipe (github.com/wang-kevin3290/scaling-crl, train.py defaults and README command):
# 512 envs × 62-step unrolls, 800 SGD steps of batch 512 after each (≈ 1 SGD step per 40 env steps), replay
# of 10 000 steps per env, 1 000 steps per env of prefill, 128 evaluation episodes, 100 M env steps (its
# default; the paper trains 50-400 M depending on the task), width 256.
_PAPER_TRAIN = TrainConfig(num_envs=512, unroll_length=62, sgd_steps_per_collect=800, total_env_steps=100_000_000,
                           buffer_size=10_000 * 512, prefill_steps=1_000 * 512, eval_every=1_000_000,
                           num_eval_envs=128)

# The paper code's protocol (scaling-crl train.py and its published job script): each training env keeps
# its first start and goal for the whole run (brax 0.10's auto-reset restores the first state), the Ant and
# the Humanoid end their episodes when they fall (the physics envs' default), and the evaluation env is the
# training env except where a published script names another: job.slurm evaluates ant_big_maze on
# ant_big_maze_eval (the README's example evaluates humanoid on humanoid).
TABLE1_EVAL_ENVS: dict[str, str] = {"ant-big-maze": "ant-big-maze-eval"}


def paper_env(env: str) -> EnvConfig:
    """The EnvConfig of a physics task under the paper code's protocol (see TABLE1_EVAL_ENVS)."""
    return EnvConfig(env=env, goal_resample="never", eval_env=TABLE1_EVAL_ENVS.get(env))


# Table 1 task -> the registered physics env that runs it.
TABLE1_ENVS: dict[str, str] = {
    "Humanoid": "humanoid", "Humanoid U-Maze": "humanoid-u-maze", "Humanoid Big Maze": "humanoid-big-maze",
    "Ant U4-Maze": "ant-u4-maze",
    "Ant U5-Maze": "ant-u5-maze", "Ant Big Maze": "ant-big-maze", "Ant Hardest Maze": "ant-hardest-maze",
    "Arm Push Easy": "arm-push-easy", "Arm Push Hard": "arm-push-hard", "Arm Binpick Hard": "arm-binpick-hard",
}


def paper_steps_at_goal(env: str | None, depth: int | None) -> float | None:
    """The paper's Table 1 number (steps at goal out of 1000) for a physics env at depth 4 or 64, else None."""
    task = next((t for t, e in TABLE1_ENVS.items() if e == env), None)
    if task is None or depth not in (4, 64):
        return None
    return TABLE1[task][0 if depth == 4 else 1]


def _gpu_presets() -> list[Preset]:
    """The paper's own tasks, for every physics env the registry has (brax/MJX; one GPU)."""
    from depthrl.envs.physics import catalog

    presets = []
    for task, env in TABLE1_ENVS.items():
        if env not in catalog.ENVS:
            continue
        for depth in (4, 64):
            presets.append(Preset(
                f"{env}-d{depth}", "crl", "gpu", "Table 1",
                f"Table 1: {task}, depth {depth}, the paper code's recipe and protocol"
                + (f" (evaluated on {TABLE1_EVAL_ENVS[env]})." if env in TABLE1_EVAL_ENVS else "."),
                f"paper: {_table1(task, depth)}", paper_env(env), CRLConfig(depth=depth, width=256, batch_size=512),
                _PAPER_TRAIN, f"runs/{env}-d{depth}"))
    if "ant-u4-maze-stitch" in catalog.ENVS:
        for depth in (4, 64):
            presets.append(Preset(
                f"ant-stitch-d{depth}", "crl", "gpu", "stitching",
                f"Ant stitching, depth {depth}: train on U4-maze forward pairs 1-3 cells apart, evaluate on 4-6 "
                "apart (the paper code's protocol: pairs along the path, equal weight per distance).",
                "finding (g): deeper networks reach the unseen longer pairs more often (no single number)",
                EnvConfig(env="ant-u4-maze-stitch", stitch_pairs="forward"),
                CRLConfig(depth=depth, width=256, batch_size=512),
                _PAPER_TRAIN, f"runs/ant-stitch-d{depth}"))
    if "ant-u-maze" in catalog.ENVS:
        for depth in (4, 64):
            presets.append(Preset(
                f"ant-repr-d{depth}", "crl", "gpu", "representations",
                f"Ant U-maze critic representations, depth {depth}: see plots/q_heatmap.png of the run.",
                "finding (f): the depth 4 critic's Q follows Euclidean distance through the wall, the depth 64 "
                "critic's follows the path round it (no single number)",
                paper_env("ant-u-maze"), CRLConfig(depth=depth, width=256, batch_size=512), _PAPER_TRAIN,
                f"runs/ant-repr-d{depth}"))
    return presets


# CartPole in about a minute on a 2-core CPU (DQN: mean greedy return ~500 after ~40k env steps at depth 4): the
# defaults of `depthrl train dqn` and `depthrl train ppo`.
DQN_CARTPOLE_AGENT = DQNConfig(depth=4, width=64, critic_loss="hl-gauss", v_min=0.0, v_max=100.0,
                               lr=1e-3, batch_size=128, target_update_period=100, epsilon_decay_steps=20_000)
DQN_CARTPOLE_TRAIN = TrainConfig(num_envs=8, unroll_length=16, sgd_steps_per_collect=16, total_env_steps=60_000,
                                 buffer_size=20_000, prefill_steps=1_024, eval_every=6_000, num_eval_envs=16)
PPO_CARTPOLE_AGENT = PPOConfig(depth=4, width=64, critic_loss="hl-gauss", v_min=0.0, v_max=100.0,
                               lr=1e-3, batch_size=256)
PPO_CARTPOLE_TRAIN = TrainConfig(num_envs=16, unroll_length=64, sgd_steps_per_collect=16, total_env_steps=200_000,
                                 eval_every=20_000, num_eval_envs=16)


def _baseline(kind: str, name: str, env: EnvConfig, agent: Any, train: TrainConfig, run_dir: str) -> Preset:
    return Preset(name, kind, "cpu", "baseline",
                  f"{kind.upper()} on {env.env}, depth {agent.depth}, width {agent.width}.",
                  "no paper number recorded", env, agent, train, run_dir)


def _baseline_presets() -> list[Preset]:
    """The other agents' presets, each name prefixed with its agent's."""
    cartpole = EnvConfig(env="cartpole")
    return [
        _baseline("dqn", "dqn-cartpole", cartpole, DQN_CARTPOLE_AGENT, DQN_CARTPOLE_TRAIN, "runs/dqn_cartpole"),
        # MinAtar Breakout: the Stop Regressing paper's kind of task (Atari-like, discrete); hours on a CPU.
        _baseline("dqn", "dqn-minatar-breakout", EnvConfig(env="minatar-breakout"),
                  DQNConfig(depth=4, width=256, critic_loss="hl-gauss", v_min=0.0, v_max=50.0, lr=3e-4,
                            batch_size=128, target_update_period=1_000, epsilon_decay_steps=250_000),
                  TrainConfig(num_envs=16, unroll_length=8, sgd_steps_per_collect=8, total_env_steps=5_000_000,
                              buffer_size=100_000, prefill_steps=10_000, eval_every=100_000, num_eval_envs=32),
                  "runs/dqn_minatar_breakout"),
        _baseline("ppo", "ppo-cartpole", cartpole, PPO_CARTPOLE_AGENT, PPO_CARTPOLE_TRAIN, "runs/ppo_cartpole"),
        # SAC and TD3 on the CRL quick start's env and budget (TD3 plus 16k env steps of random prefill); the
        # agent settings are those that learn the small room of tests/agents/test_sac_td3.py.
        _baseline("sac", "sac-quickstart", QUICKSTART_ENV,
                  SACConfig(depth=4, width=64, batch_size=256, critic_loss="mse", tau=0.02, init_alpha=0.1),
                  QUICKSTART_TRAIN, "runs/sac_quickstart"),
        _baseline("td3", "td3-quickstart", QUICKSTART_ENV,
                  TD3Config(depth=4, width=64, batch_size=256, critic_loss="mse", tau=0.02, exploration_noise=0.3),
                  dataclasses.replace(QUICKSTART_TRAIN, prefill_steps=16_000), "runs/td3_quickstart"),
    ]


def all_presets() -> list[Preset]:
    """Every built-in preset, in listing order (names are unique)."""
    return _crl_presets() + _gpu_presets() + _baseline_presets()


def by_name() -> dict[str, Preset]:
    return {p.name: p for p in all_presets()}
