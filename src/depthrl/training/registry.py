"""The agent registry: one declared entry per agent that `depthrl train AGENT` runs.

An `AgentEntry` says everything the train command needs: the agent's config class (its flags), how to build
the agent from a config and an env spec, the loop that trains it, the checks across the env/agent/train flags,
its named presets and the command's defaults. `AGENTS` holds the built-in ones; `register_agent` adds a
user's own (docs/extending.md). A run directory's config.json records the entry's name as `kind`, which is
how `depthrl eval`, `--resume` and the sweeps find the entry again.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar

import tyro

from depthrl.agents import crl_pair
from depthrl.agents.crl import CRL, CRLConfig
from depthrl.agents.crl_pair import CollectorLearner, PairConfig
from depthrl.agents.dqn import DQN, DQNConfig, check_discrete
from depthrl.agents.ppo import PPO, PPOConfig
from depthrl.agents.sac import SAC, SACConfig
from depthrl.agents.td3 import TD3, TD3Config
from depthrl.envs.episodic import check_goal_env
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.errors import ConfigError, check_defaults
from depthrl.training import presets
from depthrl.training.loop import TrainConfig, Trainer, transition_replay
from depthrl.training.onpolicy import OnPolicyTrainer


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """Flags every trainer shares (the agent's own flags come from its config)."""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = EnvConfig()
    train: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig()
    run_dir: str = "runs/run"
    """Run directory: config.json, metrics.jsonl, tb/, checkpoints/, plots/."""
    overwrite: bool = False
    """Replace --run-dir if it exists (otherwise an existing run directory is an error)."""
    resume: str | None = None
    """Continue the run in this directory from its last good checkpoint (flags must match its config)."""
    preset: str | None = None
    """Start from a named preset (see `depthrl presets`); flags given after it override it."""
    keep_checkpoints: int = 3
    """Checkpoints kept (the newest ones)."""
    tensorboard: bool = True
    """Write TensorBoard events to RUN_DIR/tb."""
    wandb_project: str | None = None
    """Also log to Weights & Biases, in this project: the metrics TensorBoard gets, the config and the plots
    (files in RUN_DIR/wandb; WANDB_MODE=offline keeps them local). Needs `pip install -c requirements.lock -e
    '.[wandb]'`."""
    wandb_entity: str | None = None
    """W&B entity (user or team) of --wandb-project (default: W&B's own default)."""
    wandb_group: str | None = None
    """W&B group of the run (e.g. one per sweep), with --wandb-project."""
    wandb_tags: tuple[str, ...] = ()
    """W&B tags of the run, with --wandb-project."""
    plots: bool = True
    """Write plots to RUN_DIR/plots at the end."""
    progress: bool = True
    """Show a progress bar."""
    skip_non_finite: bool = False
    """On a non-finite loss, gradient or parameter, drop that epoch's update (keep its data) instead of stopping."""
    compile_cache: bool = True
    """Keep compiled programs in ~/.cache/depthrl so a rerun with the same shapes does not recompile."""
    compile_cache_max_mb: float = 1024.0
    """Size cap of the compile cache in MiB: least recently used programs are deleted to stay under it."""
    memory_check: bool = True
    """Refuse a run whose compiled programs need more memory than the device has free (XLA's exact buffer
    assignment, checked after compiling and before allocating; the environment variable
    DEPTHRL_MEMORY_LIMIT_BYTES replaces the measured free memory). See docs/cost.md."""
    checkpoint_buffer: bool = True
    """Checkpoints include the replay buffer, so a resumed run is bit-exact. --no-checkpoint-buffer makes them
    smaller (the paper recipe's buffer is ~5 GB); a run resumed from one starts with an empty buffer (not bit-exact)."""
    group_with: tuple[str, ...] = ()
    """With --resume: more run directories (each with its config.json, as `depthrl sweep` prepares them) trained
    in this process under one compile, vmapped with --resume's run; they may differ from it only in --seed and
    the agent's traced hyper-parameters (docs/sweeps.md). Each keeps its own metrics, checkpoints and resume."""

    entry: ClassVar[AgentEntry | None] = None
    """The agent entry whose command these args are (set on `AgentEntry.args`; not a flag, not in config.json):
    the train command (`training.command`) takes the entry from here, not from `kind`."""


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    """One agent of `depthrl train NAME`."""

    name: str
    """The subcommand (`depthrl train NAME`) and the `kind` its runs' config.json records."""
    description: str
    """The help text of `depthrl train NAME` (what it trains, an example)."""
    config: type
    """The agent's frozen config dataclass: its fields are the agent's flags, `validate()` checks them."""
    agent: Callable[[Any, Any], Any]
    """Builds the agent (init/update/act/q_value/diagnostics) as agent(config, env_spec)."""
    trainer: type[Trainer] = Trainer
    """The loop that trains it: Trainer (off-policy, with a replay), or one with Trainer's interface."""
    replay: Callable[..., Any] | None = None
    """With Trainer: its replay, replay(env spec, train config, agent config) (None: Trainer's default,
    `loop.trajectory_replay`; DQN: `loop.transition_replay`)."""
    validate: Callable[[Any], None] | None = None
    """Checks across the env, agent and train flags (raise ConfigError naming the flag), before any compute."""
    presets: Callable[[], Sequence[presets.Preset]] = tuple
    """Its named presets (`depthrl presets` lists them; names are unique across agents)."""
    default_config: Any = None
    """The command's default agent config (None: config())."""
    default_env: EnvConfig = EnvConfig()
    default_train: TrainConfig = TrainConfig()
    default_run_dir: str = "runs/run"
    hparams: tuple[str, ...] = ()
    """Agent config fields that are traced values, not compiled constants: runs that differ only in them (and
    --seed) train in one program (`--group-with`, `depthrl sweep`). Each must be a float whose every use is
    jnp arithmetic (`loop.Trainer.bind` sets it to a tracer)."""

    @functools.cached_property
    def args(self) -> type[RunArgs]:
        """The command's flags: RunArgs (the shell's) + `agent` (the config's fields, without prefix)."""
        config = self.config() if self.default_config is None else self.default_config
        fields = [("env", Annotated[EnvConfig, tyro.conf.OmitArgPrefixes], dataclasses.field(default=self.default_env)),
                  ("train", Annotated[TrainConfig, tyro.conf.OmitArgPrefixes],
                   dataclasses.field(default=self.default_train)),
                  ("agent", Annotated[self.config, tyro.conf.OmitArgPrefixes], dataclasses.field(default=config)),
                  ("kind", tyro.conf.Suppress[str], dataclasses.field(default=self.name)),
                  ("run_dir", str, dataclasses.field(default=self.default_run_dir))]
        cls = dataclasses.make_dataclass("Args", fields, bases=(RunArgs,), frozen=True, namespace={"entry": self})
        cls.__doc__ = f"The flags of `depthrl train {self.name}`."
        return cls

    def preset_args(self, args_cls: type | None = None) -> dict[str, Any]:
        """name -> the command's Args (or `args_cls`'s) for each of its presets."""
        cls = args_cls or self.args
        return {p.name: cls(env=p.env, agent=p.agent, train=p.train, run_dir=p.run_dir) for p in self.presets()}


def require_goal_env(args: Any) -> None:
    """The check of goal-conditioned agents (CRL, SAC/TD3 + HER): they relabel goals, and the reward envs
    (gymnax, probes) have none."""
    check_goal_env(args.env.env, args.kind)


def require_discrete(args: Any) -> None:
    """DQN needs discrete actions (the env is built only to read its spec: no compute)."""
    check_discrete(make_envs(args.env)[0].spec, args.kind)


def check_ppo(args: Any) -> None:
    """On-policy: no replay, minibatches from one rollout, discrete actions."""
    check_defaults(args.train, (("--buffer-size", "buffer_size"), ("--prefill-steps", "prefill_steps")),
                   "PPO is on-policy and keeps no replay: drop the flag")
    rollout = args.train.num_envs * args.train.unroll_length
    if args.agent.batch_size > rollout:
        raise ConfigError("--batch-size", args.agent.batch_size,
                          f"must be <= one rollout, --num-envs × --unroll-length = {rollout}")
    require_discrete(args)


def _of(kind: str) -> Callable[[], list[presets.Preset]]:
    return lambda: [p for p in presets.all_presets() if p.kind == kind]


AGENTS: dict[str, AgentEntry] = {}


def register_agent(entry: AgentEntry) -> AgentEntry:
    """Add an agent to `depthrl train` (in this process): `depthrl.cli.main(["train", entry.name, ...])`,
    `depthrl eval` of its runs and sweeps over it then work. Its name and preset names must be new."""
    if not isinstance(entry, AgentEntry):
        raise TypeError(f"register_agent takes an AgentEntry, not {type(entry).__name__}")
    if entry.name in AGENTS:
        raise ValueError(f"an agent named {entry.name!r} is already registered")
    taken = {p.name for e in AGENTS.values() for p in e.presets()}
    clash = sorted(taken & {p.name for p in entry.presets()})
    if clash:
        raise ValueError(f"preset names already taken: {', '.join(clash)}")
    AGENTS[entry.name] = entry
    return entry


def get(name: str) -> AgentEntry:
    """The entry of agent `name` (ConfigError naming --kind when there is none)."""
    if name not in AGENTS:
        raise ConfigError("kind", name, f"unknown agent; known: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


def all_presets() -> list[presets.Preset]:
    """Every preset of every registered agent."""
    return [p for entry in AGENTS.values() for p in entry.presets()]


def find_preset(name: str) -> tuple[AgentEntry, presets.Preset] | None:
    """The agent and preset of a preset name (`depthrl train --preset NAME`), None if no agent has it."""
    for entry in AGENTS.values():
        for p in entry.presets():
            if p.name == name:
                return entry, p
    return None


CRL_HPARAMS = ("critic_lr", "actor_lr", "alpha_lr", "logsumexp_coef", "target_entropy_scale", "discount")
# SAC/TD3: not --discount (with --v-max unset it sets the value support, built in numpy) nor --init-alpha (init).
SAC_HPARAMS = ("critic_lr", "actor_lr", "alpha_lr", "tau", "target_entropy_scale", "sigma_ratio")
TD3_HPARAMS = ("critic_lr", "actor_lr", "tau", "policy_noise", "noise_clip", "exploration_noise", "sigma_ratio")

register_agent(AgentEntry(
    name="crl", config=CRLConfig, agent=CRL, validate=require_goal_env, presets=_of("crl"),
    default_run_dir="runs/crl", hparams=CRL_HPARAMS, description="""\
Train contrastive RL (CRL): a goal-conditioned, reward-free agent with an InfoNCE critic, at any depth.

Example: depthrl train crl --env point-maze-u --depth 16 --total-env-steps 2000000 --run-dir runs/u_d16
"""))
register_agent(AgentEntry(
    name="sac", config=SACConfig, agent=SAC, validate=require_goal_env, presets=_of("sac"),
    default_run_dir="runs/sac", hparams=SAC_HPARAMS, description="""\
Train SAC with hindsight relabelling (HER) on a goal-conditioned env, at any depth, with a regression
(mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train sac --env point-maze-u --critic-loss hl-gauss --depth 16 --run-dir runs/sac_u_d16
"""))
register_agent(AgentEntry(
    name="td3", config=TD3Config, agent=TD3, validate=require_goal_env, presets=_of("td3"),
    default_run_dir="runs/td3", hparams=TD3_HPARAMS, description="""\
Train TD3 with hindsight relabelling (HER) on a goal-conditioned env, at any depth, with a regression
(mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train td3 --env point-maze-u --critic-loss hl-gauss --depth 16 --run-dir runs/td3_u_d16
"""))
register_agent(AgentEntry(
    name="dqn", config=DQNConfig, agent=DQN, replay=transition_replay, validate=require_discrete,
    presets=_of("dqn"), default_config=presets.DQN_CARTPOLE_AGENT, default_env=EnvConfig(env="cartpole"),
    default_train=presets.DQN_CARTPOLE_TRAIN, default_run_dir="runs/dqn", description="""\
Train DQN at any depth on a discrete-action env (gymnax classic control / MinAtar, probe envs), with a
regression (mse) or classification (hl-gauss, two-hot, c51) critic.

Example: depthrl train dqn --env cartpole --critic-loss hl-gauss --depth 16 --run-dir runs/dqn_cartpole_d16
"""))
register_agent(AgentEntry(
    name="ppo", config=PPOConfig, agent=PPO, trainer=OnPolicyTrainer, validate=check_ppo, presets=_of("ppo"),
    default_config=presets.PPO_CARTPOLE_AGENT, default_env=EnvConfig(env="cartpole"),
    default_train=presets.PPO_CARTPOLE_TRAIN, default_run_dir="runs/ppo", description="""\
Train PPO at any depth on a discrete-action env (gymnax classic control / MinAtar, probe envs), with a
value head trained by regression (mse) or classification (hl-gauss, two-hot).

Example: depthrl train ppo --env cartpole --critic-loss hl-gauss --depth 16 --run-dir runs/ppo_cartpole_d16
"""))
register_agent(AgentEntry(
    name="crl-pair", config=PairConfig, agent=CollectorLearner, validate=require_goal_env,
    default_run_dir="runs/crl_pair", description=crl_pair.__doc__))
