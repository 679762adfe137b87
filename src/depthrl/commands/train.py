"""`depthrl train AGENT [FLAGS]` for every agent of the registry (`depthrl.training.registry`): the flags are the
entry's `args` (the shell's + the agent config's), the help text its `description`, the body `command.run`.
`depthrl train --preset NAME` runs the agent whose preset NAME is.
"""

from __future__ import annotations

from typing import Any

from depthrl.training import command, registry


def entry(agent: str) -> registry.AgentEntry:
    """The registry entry of `depthrl train AGENT` (ConfigError listing the known agents)."""
    return registry.get(agent)


def main(args: Any) -> int:
    return command.run(args)
