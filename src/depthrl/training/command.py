"""The shell shared by every `depthrl train AGENT` command: validation, resume, build, run.

What differs between agents is declared once, in the agent's `registry.AgentEntry` (its config, agent, trainer,
replay, checks, presets). The functions here take a run's args, made by the entry's `args` class, which carries
the entry (`type(args).entry`): nothing is looked up by name. The args record the entry's name as `kind` in
config.json, through which `runs.load`, the sweeps and `--resume` find the entry of a run directory.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from depthrl.envs.registry import make_envs
from depthrl.errors import ConfigError, DivergenceError
from depthrl.training import registry, runner
from depthrl.training.loop import Trainer


def validate(args: Any) -> None:
    """Every check that can fail, before any compute."""
    validate_config(args)
    runner.check_run_dir(Path(args.run_dir), args.overwrite, args.resume is not None)


def validate_config(args: Any) -> None:
    """The checks of the config itself (not of the run directory)."""
    args.env.validate()
    args.agent.validate()
    args.train.validate()
    entry = entry_of(args)
    _check_num_devices(args, entry)
    if entry.validate is not None:  # checks across sections
        entry.validate(args)
    if args.keep_checkpoints < 1:
        raise ConfigError("--keep-checkpoints", args.keep_checkpoints, "must be >= 1")
    from depthrl.training import wandb_log

    wandb_log.check(args)
    if not args.compile_cache_max_mb > 0:
        raise ConfigError("--compile-cache-max-mb", args.compile_cache_max_mb,
                          "must be > 0 (--no-compile-cache turns the cache off)")
    presets = [p.name for p in entry.presets()]
    if args.preset is not None and args.preset not in presets:
        raise ConfigError("--preset", args.preset, f"choose one of {', '.join(presets)}")


def entry_of(args: Any) -> registry.AgentEntry:
    """The agent entry whose `args` class made `args` (`registry.RunArgs.entry`)."""
    entry = type(args).entry
    if entry is None:
        raise TypeError(f"{type(args).__name__} is not the args of an agent entry (make them with entry.args)")
    return entry


def _check_num_devices(args: Any, entry: registry.AgentEntry) -> None:
    """--num-devices splits the SGD batch of `Trainer`'s epoch: the batch must divide, the loop must be one."""
    num_devices = args.train.num_devices
    if num_devices == 1:
        return
    if not issubclass(entry.trainer, Trainer):
        raise ConfigError("--num-devices", num_devices, f"`depthrl train {entry.name}` runs on one device only")
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
    their_kind, name = stored_kind(run_dir), entry_of(args).name
    if their_kind is not None and their_kind != name:
        registry.get(their_kind)  # an agent this depthrl does not know: the error lists the known ones
        raise ConfigError("--resume", str(run_dir), f"holds a `depthrl train {their_kind}` run; resume it with that "
                          f"command, not `depthrl train {name}`")
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


_RESUMABLE_SHELL_FLAGS = ("group_with", "keep_checkpoints", "tensorboard", "skip_non_finite", "compile_cache",
                          "compile_cache_max_mb", "memory_check", "checkpoint_buffer", "wandb_project", "wandb_entity",
                          "wandb_group", "wandb_tags")


def stored_kind(run_dir: Path) -> str | None:
    """The agent (`kind`) a run directory's config.json records; None if it cannot be read."""
    try:
        data = json.loads((run_dir / runner.CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None  # load_config reports a missing or unreadable config.json
    return data.get("kind") if isinstance(data, dict) else None


def build(args: Any) -> Trainer:
    train_env, eval_env = make_envs(args.env)
    entry = entry_of(args)
    agent = entry.agent(args.agent, train_env.spec)
    # An agent may bring its own replay (DQN: flat transitions) or loop with Trainer's interface (PPO: on-policy).
    replay = {} if entry.replay is None else {"replay": entry.replay}
    return entry.trainer(agent=agent, env=train_env, eval_env=eval_env, config=args.train, **replay)


def resolve_group(args: Any) -> list[Any]:
    """The runs of one process: --resume's run, then each --group-with run (its config.json), checked to differ
    from the first only in --seed and the agent's traced hyper-parameters (`AgentEntry.hparams`)."""
    if not args.group_with:
        return [args]
    if args.resume is None:
        raise ConfigError("--group-with", list(args.group_with), "needs --resume RUN_DIR (the group's first run)")
    if args.wandb_project is not None:
        raise ConfigError("--group-with", list(args.group_with), "not with --wandb-project (one W&B run per process)")
    if args.skip_non_finite:
        raise ConfigError("--group-with", list(args.group_with), "not with --skip-non-finite (the runs share one "
                          "update program: a non-finite step of one run would skip the epoch of every run; "
                          "`depthrl sweep` runs such cells alone)")
    runs = [args]
    for run_dir in args.group_with:
        if Path(run_dir).resolve() in {Path(r.run_dir).resolve() for r in runs}:
            raise ConfigError("--group-with", run_dir, "is already a run of the group")
        other = resolve_resume(dataclasses.replace(type(args)(), resume=run_dir, progress=args.progress,
                                                   plots=args.plots))
        validate_config(other)
        conflicts = group_conflicts(args.kind, runner.to_dict(args), runner.to_dict(other))
        if conflicts:
            raise ConfigError("--group-with", run_dir, f"differs from {args.resume} in {', '.join(conflicts)}, which "
                              f"the program compiles in; it may differ only in --seed and "
                              f"{', '.join(registry.get(args.kind).hparams) or 'nothing else'}")
        runs.append(other)
    return runs


def group_conflicts(kind: str, a: dict, b: dict) -> list[str]:
    """The flags (as --names) in which two runs' configs (`runner.to_dict`) differ that keep them from training in
    one program: every field of env, agent and train but --seed and the agent's traced hyper-parameters."""
    free = {("train", "seed"), *(("agent", name) for name in registry.get(kind).hparams)}
    if a.get("kind") != b.get("kind"):
        return ["kind"]
    return ["--" + name.replace("_", "-") for section in ("env", "agent", "train")
            for name in sorted(set(a[section]) | set(b[section]))
            if (section, name) not in free and a[section].get(name) != b[section].get(name)]


def run(args: Any) -> int:
    """The body of `depthrl train AGENT`: validate, build, train (or resume), report."""
    from depthrl.training.plots import plot_run

    args = resolve_resume(args)
    runs = resolve_group(args)
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
    if len(runs) > 1:
        _train_group(runs, trainer, options, plot_run, est)
        return 0
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


def _train_group(runs: list[Any], trainer: Trainer, options: runner.RunOptions, plot_fn, est) -> None:
    """The runs of --group-with in one program (`runner.train_group`). A run that diverges is left out (its
    divergence.json and last good checkpoint kept) and the others continue from their last checkpoint, compiled
    again for the smaller group; DivergenceError at the end names the runs that diverged."""
    names = [n for n in registry.get(runs[0].kind).hparams if len({getattr(r.agent, n) for r in runs}) > 1]
    members = [runner.Member(Path(r.run_dir), runner.to_dict(r), r.train.seed, {n: getattr(r.agent, n) for n in names})
               for r in runs]
    print(f"{len(members)} runs share one program" + (f" (traced: {', '.join(names)})" if names else ""))
    diverged: list[str] = []
    while members:
        try:
            runner.train_group(trainer, members, options, plot_fn, est)
            break
        except DivergenceError as err:
            run_dir = getattr(err, "run_dir", None)
            if run_dir is None or len(members) == 1:
                raise
            print(f"{run_dir} diverged ({err}); the other runs of the group continue", file=sys.stderr)
            diverged.append(str(run_dir))
            members = [m for m in members if m.run_dir != run_dir]
    for m in members:
        print(f"run directory: {m.run_dir}")
    if diverged:
        raise DivergenceError(f"{len(diverged)} run(s) of the group diverged: {', '.join(diverged)} (see their "
                              "divergence.json); the others finished")


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
