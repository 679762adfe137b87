"""Train contrastive RL (CRL): a goal-conditioned, reward-free agent with an InfoNCE critic, at any depth.

Example: depthrl train crl --env point-maze-u --depth 16 --total-env-steps 2000000 --run-dir runs/u_d16
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import tyro

from depthrl.agents.crl import CRL, CRLConfig
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.errors import ConfigError
from depthrl.training import runner
from depthrl.training.loop import TrainConfig, Trainer


@dataclasses.dataclass(frozen=True)
class Args:
    """Train contrastive RL (CRL) at any depth on a goal-conditioned env."""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = EnvConfig()
    agent: Annotated[CRLConfig, tyro.conf.OmitArgPrefixes] = CRLConfig()
    train: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig()
    run_dir: str = "runs/crl"
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
    plots: bool = True
    """Write plots to RUN_DIR/plots at the end."""
    progress: bool = True
    """Show a progress bar."""
    skip_non_finite: bool = False
    """On a non-finite loss or gradient, skip that epoch's update instead of stopping the run."""


PRESETS: dict[str, Args] = {
    # The README's main job: CRL on the embedded point-mass U-maze, ~minutes on a 2-core CPU.
    "quickstart": Args(
        env=EnvConfig(env="point-maze-u"),
        agent=CRLConfig(depth=4, width=64, batch_size=256),
        train=TrainConfig(num_envs=64, unroll_length=50, sgd_steps_per_collect=16, total_env_steps=1_500_000,
                          eval_every=100_000),
        run_dir="runs/quickstart",
    ),
}


def validate(args: Args) -> None:
    """Every check that can fail, before any compute."""
    args.env.validate()
    args.agent.validate()
    args.train.validate()
    if args.keep_checkpoints < 1:
        raise ConfigError("--keep-checkpoints", args.keep_checkpoints, "must be >= 1")
    if args.preset is not None and args.preset not in PRESETS:
        raise ConfigError("--preset", args.preset, f"choose one of {', '.join(PRESETS)}")


def resolve_resume(args: Args) -> Args:
    """With --resume, the run's own config.json is the config; conflicting flags are an error."""
    if args.resume is None:
        return args
    run_dir = Path(args.resume)
    saved = runner.load_config(run_dir, Args)
    for section in ("env", "agent", "train"):
        given, stored = getattr(args, section), getattr(saved, section)
        default = getattr(Args(), section)
        for field in dataclasses.fields(given):
            g, s, d = (getattr(x, field.name) for x in (given, stored, default))
            if g != d and g != s:
                flag = "--" + field.name.replace("_", "-")
                raise ConfigError(flag, g, f"conflicts with the resumed run's config ({s!r}); drop the flag")
    return dataclasses.replace(saved, resume=args.resume, run_dir=str(run_dir), overwrite=False,
                               progress=args.progress, plots=args.plots)


def build(args: Args) -> Trainer:
    train_env, eval_env = make_envs(args.env)
    agent = CRL(args.agent, train_env.spec)
    return Trainer(agent=agent, env=train_env, eval_env=eval_env, config=args.train)


def main(args: Args) -> int:
    from depthrl.training.plots import plot_run

    args = resolve_resume(args)
    validate(args)
    trainer = build(args)
    options = runner.RunOptions(run_dir=Path(args.run_dir), overwrite=args.overwrite, resume=args.resume is not None,
                                keep_checkpoints=args.keep_checkpoints, tensorboard=args.tensorboard,
                                plots=args.plots, progress=args.progress, skip_non_finite=args.skip_non_finite)
    rows = runner.train(trainer, runner.to_dict(args), options, plot_fn=plot_run)
    if rows:
        last = rows[-1]
        print(f"final eval: success {last['eval/success']:.3f}  time_at_goal {last['eval/time_at_goal']:.3f}  "
              f"final_distance {last['eval/final_distance']:.3f}  ({last['env_steps']:,} env steps, "
              f"{last['wall_time']:.0f} s)")
    print(f"run directory: {options.run_dir}  (plots in {options.run_dir / 'plots'})")
    return 0


def load_run(run_dir: Path):
    """(trainer, state) of a run directory, restored from its newest valid checkpoint (no code executed)."""
    import jax

    from depthrl.training import checkpoint as ckpt

    args = runner.load_config(run_dir, Args)
    trainer = build(args)
    cfg = trainer.config
    abstract = jax.eval_shape(jax.vmap(trainer.init), runner.seed_keys(cfg.seed, cfg.num_seeds))
    path = ckpt.latest_good(run_dir / "checkpoints")
    if path is None:
        raise ConfigError("RUN_DIR", str(run_dir), "has no valid checkpoint")
    return trainer, ckpt.restore(path, abstract)
