"""List the named presets: what each runs, the number the paper reports for it, and the command.

Run one with `depthrl train --preset NAME` (or `depthrl train AGENT --preset NAME`); flags given after the
preset override it. Example: depthrl presets --scale cpu
"""

from __future__ import annotations

import dataclasses
import json

from depthrl.errors import check_choice

SCALES = ("all", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class Args:
    scale: str = "all"
    """Which presets: all, cpu (point-mass mazes, minutes to an hour on a laptop) or gpu (the paper's tasks)."""
    json: bool = False
    """Print one JSON object per preset (with its full config) instead of the table."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One preset of one agent, with the args `depthrl train AGENT --preset NAME` starts from."""

    kind: str
    name: str
    args: object  # the train command's Args
    scale: str
    experiment: str
    description: str
    paper: str

    @property
    def command(self) -> str:
        return f"depthrl train {self.kind} --preset {self.name}"


def entries() -> list[Entry]:
    """Every preset of every registered agent (`depthrl train AGENT`), the built-in ones in their listing order."""
    from depthrl.training import presets, registry

    order = {p.name: i for i, p in enumerate(presets.all_presets())}
    out = [Entry(entry.name, p.name, args, p.scale, p.experiment, p.description, p.paper)
           for entry in registry.AGENTS.values() for p, args in zip(entry.presets(), entry.preset_args().values(),
                                                                    strict=True)]
    return sorted(out, key=lambda e: (order.get(e.name, len(order)), e.kind, e.name))


def main(args: Args) -> int:
    check_choice("--scale", args.scale, SCALES)
    shown = [e for e in entries() if args.scale in ("all", e.scale)]
    if args.json:
        from depthrl.training.runner import to_dict

        for e in shown:
            print(json.dumps({"name": e.name, "kind": e.kind, "scale": e.scale, "experiment": e.experiment,
                              "description": e.description, "paper": e.paper, "command": e.command,
                              "config": to_dict(e.args)}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="depthrl presets (paper numbers: time at goal out of 1000 steps, Wang et al. 2025 "
                        "Table 1; depthrl logs it as a fraction)", show_lines=True)
    for column in ("preset", "agent", "scale", "experiment", "what it runs", "the paper reports"):
        table.add_column(column, overflow="fold")
    for e in shown:
        table.add_row(e.name, e.kind, e.scale, e.experiment, e.description, e.paper)
    Console(width=max(150, Console().width)).print(table)
    if not any(e.scale == "gpu" for e in entries()):
        print("No gpu presets yet: they come with the brax/MJX physics envs (ant, humanoid, arm) of the paper.")
    print("Run one: depthrl train --preset NAME [flags that override it]")
    return 0
