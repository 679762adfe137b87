"""Weights & Biases logging, optional (`pip install -c requirements.lock -e '.[wandb]'`), next to TensorBoard.

`depthrl train ... --wandb-project P` logs what TensorBoard gets, every scalar of every evaluation row at
its env-step count, plus the run's config (config.json) and, at the end, the plots of RUN_DIR/plots. The
W&B files live in RUN_DIR/wandb; with WANDB_MODE=offline nothing leaves the machine (`wandb sync` uploads
them later). A resumed run continues the same W&B run (its id is kept in RUN_DIR/wandb_run_id).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from depthrl.errors import ConfigError

INSTALL = "pip install -c requirements.lock -e '.[wandb]'"
RUN_ID_FILE = "wandb_run_id"


def check(args: Any) -> None:
    """At start: the W&B flags are consistent and, when W&B is asked for, the wandb package is installed."""
    if args.wandb_project is None:
        for flag, value in (("--wandb-entity", args.wandb_entity), ("--wandb-group", args.wandb_group),
                            ("--wandb-tags", args.wandb_tags)):
            if value:
                raise ConfigError(flag, value, "only with --wandb-project")
        return
    if not args.wandb_project.strip():
        raise ConfigError("--wandb-project", args.wandb_project, "give a project name")
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError("--wandb-project", args.wandb_project,
                          f"needs the wandb extra, which is not installed: {INSTALL}") from None


class WandbWriter:
    """A W&B run with the interface the runner gives TensorBoard's writer: add_scalar(tag, value, step) and
    flush(); the scalars of one step go to W&B as one row. The W&B run starts at the first of them (after the
    runner has prepared RUN_DIR); close() finishes it."""

    def __init__(self, run_dir: Path, config: dict, project: str, entity: str | None = None,
                 group: str | None = None, tags: tuple[str, ...] = (), resume: bool = False):
        self.run_dir, self.resume = run_dir, resume
        self._init = dict(project=project, entity=entity, group=group, tags=list(tags) or None, config=config,
                          dir=str(run_dir), name=run_dir.name, resume="allow")
        self.run = None
        self._step: int | None = None
        self._row: dict[str, float] = {}

    def _start(self):
        if self.run is None:
            import wandb

            id_file = self.run_dir / RUN_ID_FILE
            resumed = self.resume and id_file.exists()
            run_id = id_file.read_text().strip() if resumed else secrets.token_hex(4)  # W&B ids: [a-z0-9]
            id_file.write_text(run_id + "\n")
            self.run = wandb.init(id=run_id, settings=wandb.Settings(console="off", silent=True), **self._init)
        return self.run

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if step != self._step:
            self.flush()
            self._step = step
        self._row[tag] = value

    def flush(self) -> None:
        if self._row:
            self._start().log(self._row, step=self._step)
            self._row = {}

    def log_plots(self, folder: Path) -> list[Path]:
        """Every PNG of `folder` as an image plots/NAME (at the last step); returns the files logged."""
        pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if pngs:
            import wandb

            self.flush()
            self._start().log({f"plots/{p.stem}": wandb.Image(str(p)) for p in pngs}, step=self._step)
        return pngs

    def close(self) -> None:
        """Finish the W&B run (none was started if nothing was logged)."""
        self.flush()
        if self.run is not None:
            self.run.finish()


def start(args: Any, config: dict) -> WandbWriter | None:
    """The W&B writer of a run (None without --wandb-project)."""
    if args.wandb_project is None:
        return None
    return WandbWriter(Path(args.run_dir), config, args.wandb_project, args.wandb_entity, args.wandb_group,
                       tuple(args.wandb_tags), resume=args.resume is not None)
