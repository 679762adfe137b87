"""Evaluate a saved policy: on its training env or another one (e.g. the stitching protocol's long pairs).

Prints the episode metrics and writes them to RUN_DIR/eval/ as JSON. With the defaults (the run's env, its
--num-eval-envs and its evaluation keys) the numbers equal the run's own evaluation at that checkpoint in
metrics.jsonl. Example: depthrl eval runs/quickstart --stitching --episodes 512
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Annotated

import tyro

from depthrl.errors import ConfigError, check_positive


@dataclasses.dataclass(frozen=True)
class Args:
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """The run directory (written by `depthrl train`)."""
    checkpoint: int | None = None
    """Checkpoint to evaluate, by epoch (None: the newest intact one)."""
    env: str | None = None
    """Evaluate on this registered env instead of the run's (same observation and action sizes)."""
    layout: str | None = None
    """Maze for --env point-maze: a built-in name, a file, or ASCII rows separated by '/'."""
    episode_length: int | None = None
    """Steps per episode (None: the run's setting, or the new env's default with --env)."""
    success_radius: float | None = None
    """Distance (cells) within which the mass is at the goal (None: the run's setting)."""
    stitching: bool = False
    """Evaluate on the stitching protocol's long start/goal pairs (a run trained with --stitching always is)."""
    stitch_train_max: int | None = None
    """With --stitching: largest training pair distance (cells; None: the run's, default 3)."""
    stitch_eval_min: int | None = None
    """With --stitching: smallest evaluation pair distance in cells (None: the run's, default 4)."""
    stitch_eval_max: int | None = None
    """With --stitching: largest evaluation pair distance in cells (None: the run's, default 6)."""
    episodes: int | None = None
    """Episodes per seed (None: the run's --num-eval-envs)."""
    seed: int | None = None
    """Evaluation seed (None: the keys the run itself evaluated this checkpoint with)."""
    out: str | None = None
    """JSON file to write (None: RUN_DIR/eval/epoch_<N>_<env>_<hash of the env flags>.json)."""
    json: bool = False
    """Print one JSON object instead of the readable summary."""

    def validate(self) -> Args:
        if self.checkpoint is not None and self.checkpoint < 1:
            raise ConfigError("--checkpoint", self.checkpoint, "must be an epoch >= 1 (see RUN_DIR/checkpoints)")
        if self.episodes is not None:
            check_positive("--episodes", self.episodes)
        if self.layout is not None and self.env not in (None, "point-maze"):
            raise ConfigError("--layout", self.layout, "only with --env point-maze (or a run on point-maze)")
        return self


def eval_env_config(run_env, args: Args):
    """The run's EnvConfig with the flags given to `depthrl eval` replaced (validated)."""
    changes = {}
    if args.env is not None:  # evaluate on --env itself, not on the run's --eval-env
        changes.update(eval_env=None)
    if args.env is not None and args.env != run_env.env:
        changes.update(env=args.env, layout=None, episode_length=None)
    for name in ("layout", "episode_length", "success_radius", "stitch_train_max", "stitch_eval_min",
                 "stitch_eval_max"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.stitching:
        changes.update(stitching=True, random_start=False, eval_env=None)
    return dataclasses.replace(run_env, **changes).validate()


def evaluate(args: Args) -> dict:
    """Run the evaluation and return the record (no printing, no files)."""
    import jax
    import numpy as np

    from depthrl.envs.registry import make_envs
    from depthrl.training import runner, runs

    args.validate()
    run_args = runs.run_args(Path(args.run_dir))
    env_config = eval_env_config(run_args.env, args)  # flags are checked before the checkpoint is read
    loaded = runs.load(args.run_dir, args.checkpoint)
    trainer = loaded.trainer
    _, eval_env = make_envs(env_config)
    trained, new = trainer.env.spec, eval_env.spec
    for field in ("obs_dim", "action_dim", "state_dim", "goal_indices"):
        if getattr(trained, field) != getattr(new, field):
            raise ConfigError("--env", env_config.env, f"its {field} is {getattr(new, field)} but the run's policy "
                              f"was trained with {getattr(trained, field)}")
    cfg = trainer.config
    episodes = args.episodes or cfg.num_eval_envs
    trainer = dataclasses.replace(trainer, eval_env=eval_env,
                                  config=dataclasses.replace(cfg, num_eval_envs=episodes))
    keys = runner.eval_keys(cfg.seed if args.seed is None else args.seed, cfg.num_seeds, loaded.epoch)
    metrics, _, _ = runner.programs(trainer).evaluate(loaded.state.agent.params, keys)  # the run's own program
    metrics = {k: np.asarray(v, dtype=np.float64) for k, v in jax.device_get(metrics).items()}  # [seeds, E]
    per_seed = {k: v.mean(axis=-1) for k, v in metrics.items()}
    return {
        "run_dir": str(loaded.run_dir), "checkpoint_epoch": loaded.epoch,
        "env_steps": int(np.asarray(loaded.state.env_steps)[0]), "env": dataclasses.asdict(env_config),
        "episodes": episodes, "num_seeds": cfg.num_seeds, "seed": args.seed,
        "metrics": {k: float(v.mean()) for k, v in per_seed.items()},
        "metrics_std_over_seeds": {k: float(v.std()) for k, v in per_seed.items()},
        "per_seed": {k: [float(x) for x in v] for k, v in per_seed.items()},
    }


def default_out(record: dict) -> Path:
    env = record["env"]
    digest = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:8]
    return Path(record["run_dir"]) / "eval" / f"epoch_{record['checkpoint_epoch']:08d}_{env['env']}_{digest}.json"


def main(args: Args) -> int:
    record = evaluate(args)
    out = Path(args.out) if args.out else default_out(record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    if args.json:
        print(json.dumps(record))
        return 0
    env = record["env"]
    where = env["env"] + (f" (layout {env['layout']})" if env["layout"] else "") + (
        f", stitching pairs {env['stitch_eval_min']}-{env['stitch_eval_max']} cells" if env["stitching"] else "")
    print(f"{record['run_dir']}: checkpoint epoch {record['checkpoint_epoch']} "
          f"({record['env_steps']:,} env steps) on {where}, {record['episodes']} episodes × {record['num_seeds']} "
          "seed(s)")
    for name, value in record["metrics"].items():
        spread = record["metrics_std_over_seeds"][name]
        print(f"  {name:<16} {value:8.3f}" + (f"  ± {spread:.3f} over seeds" if record["num_seeds"] > 1 else ""))
    print(f"wrote {out}", file=sys.stderr)
    return 0
