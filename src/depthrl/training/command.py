"""The shell shared by every `depthrl train AGENT` command: common flags, validation, resume, build, run.

An agent's command module (e.g. `commands/train_crl.py` for CRL) defines
  Args(RunArgs) with `agent: Annotated[<AgentConfig>, tyro.conf.OmitArgPrefixes]` and `kind` = its name,
  AGENT: the agent class, built as AGENT(config, env_spec),
  PRESETS: name -> Args,
and `main = command.run`. `load_run` finds the module of a run directory through its config's `kind`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import tyro

from depthrl.envs.episodic import check_goal_env
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.errors import ConfigError
from depthrl.training import runner
from depthrl.training.loop import TrainConfig, Trainer


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


def command_module(kind: str):
    from depthrl.cli import COMMANDS

    if ("train", kind) not in COMMANDS:
        known = sorted(s for g, s in COMMANDS if g == "train")
        raise ConfigError("kind", kind, f"unknown agent; known: {', '.join(known)}")
    return importlib.import_module(COMMANDS[("train", kind)][0])


def validate(args: Any) -> None:
    """Every check that can fail, before any compute."""
    validate_config(args)
    runner.check_run_dir(Path(args.run_dir), args.overwrite, args.resume is not None)


def validate_config(args: Any) -> None:
    """The checks of the config itself (not of the run directory)."""
    args.env.validate()
    args.agent.validate()
    args.train.validate()
    _check_num_devices(args)
    check_args = getattr(command_module(args.kind), "validate_args", None)  # checks across sections
    if check_args is not None:
        check_args(args)
    if args.keep_checkpoints < 1:
        raise ConfigError("--keep-checkpoints", args.keep_checkpoints, "must be >= 1")
    from depthrl.training import wandb_log

    wandb_log.check(args)
    if not args.compile_cache_max_mb > 0:
        raise ConfigError("--compile-cache-max-mb", args.compile_cache_max_mb,
                          "must be > 0 (--no-compile-cache turns the cache off)")
    presets = getattr(command_module(args.kind), "PRESETS", {})
    if args.preset is not None and args.preset not in presets:
        raise ConfigError("--preset", args.preset, f"choose one of {', '.join(presets)}")


def require_goal_env(args: Any) -> None:
    """The `validate_args` of goal-conditioned agents (CRL, SAC/TD3 + HER): they relabel goals, and the reward
    envs (gymnax, probes) have none."""
    check_goal_env(args.env.env, args.kind)


def _check_num_devices(args: Any) -> None:
    """--num-devices splits the SGD batch of `Trainer`'s epoch: the batch must divide, the loop must be one."""
    num_devices = args.train.num_devices
    if num_devices == 1:
        return
    if not issubclass(getattr(command_module(args.kind), "TRAINER", Trainer), Trainer):
        raise ConfigError("--num-devices", num_devices, f"`depthrl train {args.kind}` runs on one device only")
    batch_size = getattr(args.agent, "batch_size", None)
    if batch_size is not None and batch_size % num_devices:
        raise ConfigError("--num-devices", num_devices, f"must divide --batch-size={batch_size}")


def resolve_resume(args: Any) -> Any:
    """With --resume, the run's own config.json is the config; a flag that conflicts with it is an error."""
    if args.resume is None:
        return args
    if args.overwrite:
        raise ConfigError("--overwrite", True, "not with --resume (--resume continues the run, --overwrite deletes it)")
    run_dir = Path(args.resume)
    stored_kind = _stored_kind(run_dir)
    if stored_kind is not None and stored_kind != args.kind:
        command_module(stored_kind)  # an agent this depthrl does not know: the error lists the known ones
        raise ConfigError("--resume", str(run_dir), f"holds a `depthrl train {stored_kind}` run; resume it with that "
                          f"command, not `depthrl train {args.kind}`")
    saved = runner.load_config(run_dir, type(args))
    default = type(args)()
    for section in ("env", "agent", "train"):
        given, stored, base = getattr(args, section), getattr(saved, section), getattr(default, section)
        for field in dataclasses.fields(given):
            g, s, d = (getattr(x, field.name) for x in (given, stored, base))
            if g != d and g != s:
                flag = "--" + field.name.replace("_", "-")
                raise ConfigError(flag, g, f"conflicts with the resumed run's config ({s!r}); drop the flag")
    # Flags of the shell (not of what is learned) may change on resume; given ones win, the rest are the run's.
    shell = {name: getattr(args, name) for name in _RESUMABLE_SHELL_FLAGS
             if getattr(args, name) != getattr(default, name)}
    # Paths come from --resume only: run_dir in config.json is never used to write (it cannot send files elsewhere).
    return dataclasses.replace(saved, resume=args.resume, run_dir=str(run_dir), overwrite=False,
                               progress=args.progress, plots=args.plots, **shell)


_RESUMABLE_SHELL_FLAGS = ("keep_checkpoints", "tensorboard", "skip_non_finite", "compile_cache", "compile_cache_max_mb",
                          "memory_check", "checkpoint_buffer", "wandb_project", "wandb_entity", "wandb_group",
                          "wandb_tags")


def _stored_kind(run_dir: Path) -> str | None:
    try:
        data = json.loads((run_dir / runner.CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None  # load_config reports a missing or unreadable config.json
    return data.get("kind") if isinstance(data, dict) else None


def build(args: Any) -> Trainer:
    train_env, eval_env = make_envs(args.env)
    module = command_module(args.kind)
    agent = module.AGENT(args.agent, train_env.spec)
    # A command may bring its own loop with Trainer's interface (DQN: transition replay; PPO: on-policy).
    trainer_cls = getattr(module, "TRAINER", Trainer)
    return trainer_cls(agent=agent, env=train_env, eval_env=eval_env, config=args.train)


def run(args: Any) -> int:
    """The body of `depthrl train AGENT`: validate, build, train (or resume), report."""
    from depthrl.training.plots import plot_run

    args = resolve_resume(args)
    validate(args)
    if args.compile_cache:
        from depthrl.training import compile_cache

        compile_cache.enable(max_mb=args.compile_cache_max_mb)
    trainer = build(args)
    est = _estimate(args, trainer)
    options = runner.RunOptions(run_dir=Path(args.run_dir), overwrite=args.overwrite, resume=args.resume is not None,
                                keep_checkpoints=args.keep_checkpoints, tensorboard=args.tensorboard,
                                plots=args.plots, progress=args.progress, skip_non_finite=args.skip_non_finite,
                                memory_check=args.memory_check, checkpoint_buffer=args.checkpoint_buffer)
    # The runner compiles the training programs, checks their exact memory (unless --no-memory-check) and
    # free disk, then allocates and trains.
    rows = _train_logged(args, trainer, options, plot_run, est)
    if rows:
        last = rows[-1]
        if "eval/success" in last:  # goal envs
            headline = (f"success {last['eval/success']:.3f}  time_at_goal {last['eval/time_at_goal']:.3f}  "
                        f"final_distance {last['eval/final_distance']:.3f}")
        else:  # reward envs (gymnax, probes): episode return and length
            headline = f"return {last['eval/return']:.3f}  length {last['eval/length']:.1f}"
        print(f"final eval: {headline}  ({last['env_steps']:,} env steps, {last['wall_time']:.0f} s)")
    print(f"run directory: {options.run_dir}  (plots in {options.run_dir / 'plots'})")
    return 0


def _train_logged(args: Any, trainer: Trainer, options: runner.RunOptions, plot_fn, est) -> list[dict]:
    """runner.train, with a W&B run next to TensorBoard when --wandb-project is given (its plots at the end)."""
    from depthrl.training import wandb_log

    if args.wandb_project is None:
        return runner.train(trainer, runner.to_dict(args), options, plot_fn=plot_fn, estimate=est)
    writer = wandb_log.start(args, runner.to_dict(args))
    try:
        rows = runner.train(trainer, runner.to_dict(args), dataclasses.replace(options, extra_writers=(writer,)),
                            plot_fn=plot_fn, estimate=est)
        writer.log_plots(options.run_dir / "plots")
    finally:
        writer.close()
    return rows


def _estimate(args: Any, trainer: Trainer):
    """Print the analytic cost estimate (no compile) and return it; None if it cannot be made. The refusal comes
    later, from the compiled programs' exact memory (`runner.train`)."""
    from depthrl.training import estimate

    try:
        est = estimate.estimate(args, trainer)
    except Exception as err:  # an estimate that cannot be made must never stop a run
        print(f"estimate unavailable ({type(err).__name__}: {err})", file=sys.stderr)
        return None
    print(est.line())
    return est


def load_run(run_dir: Path):
    """(args, trainer, state) of a run directory, restored from its newest valid checkpoint.

    Only JSON and arrays are read: nothing in a run directory can execute code.
    """
    config_path = Path(run_dir) / runner.CONFIG_FILE
    if not config_path.exists():
        raise ConfigError("RUN_DIR", str(run_dir), f"not a run directory (no {runner.CONFIG_FILE})")
    kind = _stored_kind(Path(run_dir)) or "crl"
    args = runner.load_config(Path(run_dir), command_module(kind).Args)
    validate_config(args)
    trainer = build(args)
    cfg = trainer.config
    found = runner.restore_state(trainer, runner.seed_keys(cfg.seed, cfg.num_seeds), Path(run_dir) / "checkpoints")
    if found is None:
        raise ConfigError("RUN_DIR", str(run_dir), "has no valid checkpoint")
    return args, trainer, found[1]
