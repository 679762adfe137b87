"""List the registered environments: name, observation and action sizes, description."""

from __future__ import annotations

import dataclasses
import json as jsonlib


@dataclasses.dataclass(frozen=True)
class Args:
    json: bool = False
    """Print one JSON object per env instead of a table."""


def main(args: Args) -> int:
    from depthrl.envs.registry import list_envs

    rows = list_envs()
    if args.json:
        for name, obs_dim, action_dim, description in rows:
            print(
                jsonlib.dumps(
                    {"name": name, "obs_dim": obs_dim, "action_dim": action_dim, "description": description}
                )
            )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="depthrl environments")
    for column in ("name", "obs", "action", "description"):
        table.add_column(column)
    for name, obs_dim, action_dim, description in rows:
        table.add_row(name, str(obs_dim), str(action_dim), description)
    Console().print(table)
    return 0
