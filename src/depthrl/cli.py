"""The `depthrl` command line: `depthrl GROUP [SUBCOMMAND] [FLAGS]`.

Each command is a module of `depthrl.commands` that exposes `Args` (a frozen dataclass whose fields are the
flags, each with a one-line docstring that `--help` shows) and `main(args) -> int`; `depthrl train AGENT`
takes its Args, help text and presets from the agent's registry entry (`depthrl.training.registry`).
Modules are imported lazily so that `depthrl --help` is instant and a command pulls in only what it needs.
"""

from __future__ import annotations

import importlib
import os
import sys

# (group, subcommand or None) -> (module, one-line description)
COMMANDS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("train", "crl"): ("depthrl.commands.train", "Train contrastive RL (goal-conditioned, reward-free)."),
    ("train", "sac"): ("depthrl.commands.train", "Train SAC + HER (MSE or classification critic)."),
    ("train", "td3"): ("depthrl.commands.train", "Train TD3 + HER (MSE or classification critic)."),
    ("train", "dqn"): ("depthrl.commands.train", "Train DQN, discrete actions (MSE or classification critic)."),
    ("train", "ppo"): ("depthrl.commands.train", "Train PPO, discrete actions (MSE or classification value)."),
    ("train", "crl-pair"): ("depthrl.commands.train", "Train a CRL learner on a CRL collector's data."),
    ("bench", "network"): ("depthrl.commands.bench.network", "Benchmark one residual network SGD step."),
    ("bench", "env"): ("depthrl.commands.bench.env", "Benchmark env steps/s of the jitted vmapped step."),
    ("bench", "update"): ("depthrl.commands.bench.update", "Benchmark one agent SGD step (vs the paper's structure)."),
    ("bench", "train"): ("depthrl.commands.bench.train",
                         "Benchmark one training epoch: collect / sample / update split."),
    ("bench", "buffer"): ("depthrl.commands.bench.buffer", "Benchmark replay sampling with early-terminated episodes."),
    ("plot", None): ("depthrl.commands.plot", "Write the plots of a run directory."),
    ("envs", None): ("depthrl.commands.envs", "List the registered environments."),
    ("presets", None): ("depthrl.commands.presets", "List the named presets with the papers' numbers."),
    ("estimate", None): ("depthrl.commands.estimate", "Estimate params, FLOPs and peak memory of a CRL run."),
    ("eval", None): ("depthrl.commands.eval", "Evaluate a saved policy, on its env or another."),
    ("render", None): ("depthrl.commands.render", "Animate a saved policy in its maze (GIF)."),
    ("compare", None): ("depthrl.commands.compare", "One table and one plot of several runs side by side."),
    ("doctor", None): ("depthrl.commands.doctor", "Versions, devices, compile cache and a 10 s self-check."),
    ("sweep", None): ("depthrl.commands.sweep",
                      "Run a grid of train runs (local processes or Ray), resumable; IQM + 95% CI."),
}


def _usage() -> str:
    lines = ["usage: depthrl COMMAND [SUBCOMMAND] [--help] [FLAGS]", "", "commands:"]
    for (group, sub), (_, desc) in COMMANDS.items():
        name = f"{group} {sub}" if sub else group
        lines.append(f"  {name:<16} {desc}")
    lines += ["", "Run `depthrl COMMAND [SUBCOMMAND] --help` for the flags of a command."]
    return "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[tuple[str, str | None], list[str]] | None:
    if not argv:
        return None
    group = argv[0]
    if len(argv) > 1 and (group, argv[1]) in COMMANDS:
        return (group, argv[1]), argv[2:]
    if group == "train" and len(argv) > 1 and not argv[1].startswith("-"):
        return ("train", argv[1]), argv[2:]  # an agent registered by the user's code, or an error naming the known
    if (group, None) in COMMANDS:
        return (group, None), argv[1:]
    return None


def main(argv: list[str] | None = None) -> int:
    import tyro

    from depthrl.errors import CheckpointError, ConfigError, DivergenceError

    # GPU memory is allocated on demand instead of JAX's default (75% of the GPU at start), so several runs can
    # share a GPU and memory_stats() shows what a run uses. Set before any command imports jax; a user's
    # own setting wins (docs/cost.md).
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "train" and len(argv) > 1 and argv[1].startswith("-") and _preset_name(argv[1:]):
        # `depthrl train --preset NAME`: the agent is the preset's
        from depthrl.training import registry

        found = registry.find_preset(_preset_name(argv[1:]))
        if found is None:
            print(f"depthrl train: unknown --preset {_preset_name(argv[1:])!r}; `depthrl presets` lists them",
                  file=sys.stderr)
            return 2
        argv = ["train", found[0].name, *argv[1:]]
    resolved = _resolve(argv)
    if resolved is None:
        subs = sorted(s for (g, s) in COMMANDS if g == argv[0] and s)
        if subs:
            print(f"depthrl {argv[0]}: choose a subcommand: {', '.join(subs)}", file=sys.stderr)
        else:
            print(f"depthrl: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    (group, sub), rest = resolved
    prog = f"depthrl {group}" + (f" {sub}" if sub else "")
    if group == "train":
        from depthrl.commands import train

        try:
            entry = train.entry(sub)
        except ConfigError as err:
            print(f"depthrl train: error: {err}", file=sys.stderr)
            return 2
        args_cls, description, main_fn, presets = entry.args, entry.description, train.main, entry.preset_args()
    else:
        module = importlib.import_module(COMMANDS[(group, sub)][0])
        args_cls, description, main_fn = module.Args, module.__doc__, module.main
        presets = getattr(module, "PRESETS", None)  # commands that take a train command's --preset
    default = None
    name = _preset_name(rest)
    if presets is not None and name is not None:
        if name not in presets:
            print(f"{prog}: --preset={name!r} is invalid: choose one of {', '.join(presets)}", file=sys.stderr)
            return 2
        import dataclasses

        default = dataclasses.replace(presets[name], preset=name)
    rest = merge_repeated_lists(args_cls, rest)
    try:
        args = tyro.cli(args_cls, args=rest, prog=prog, description=description, default=default)
        return int(main_fn(args) or 0)
    except ConfigError as err:  # invalid values fail before any compute, naming the flag
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except DivergenceError as err:  # the runner kept the last good checkpoint and wrote divergence.json
        print(f"{prog}: diverged: {err}", file=sys.stderr)
        return 3
    except CheckpointError as err:  # a checkpoint could not be written; the earlier ones are intact
        print(f"{prog}: checkpoint failed: {err}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:  # the runner already said which checkpoint is kept and how to resume
        return 130


def _list_flags(args_cls: type, prefix: str = "") -> set[str]:
    """The flags of `args_cls` that take several values (`tuple[X, ...]` fields, nested dataclasses included)."""
    import dataclasses
    import typing

    import tyro

    hints = typing.get_type_hints(args_cls, include_extras=True)
    flags: set[str] = set()
    for field in dataclasses.fields(args_cls):
        hint, extras = hints[field.name], ()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            omit = any(e is tyro.conf.OmitArgPrefixes for e in extras)
            flags |= _list_flags(hint, prefix if omit else f"{prefix}{field.name}.")
        elif any(typing.get_origin(t) is tuple and typing.get_args(t)[-1:] == (Ellipsis,)
                 for t in (hint, *typing.get_args(hint))):  # tuple[X, ...] or tuple[X, ...] | None
            flags.add("--" + (prefix + field.name).replace("_", "-"))
    return flags


def merge_repeated_lists(args_cls: type, argv: list[str]) -> list[str]:
    """`--fixed a=1 --fixed b=2` -> `--fixed a=1 b=2`: a flag that takes several values, given more than once,
    keeps the values of every occurrence, at its first place (tyro alone silently keeps the last occurrence)."""
    flags = _list_flags(args_cls)
    parts: list[list[str]] = []  # each part: one plain argument, or a list flag followed by all its values
    first: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        name, eq, inline = argv[i].partition("=")
        i += 1
        if name not in flags:
            parts.append([argv[i - 1]])
            continue
        values = [inline] if eq else []
        while not eq and i < len(argv) and not (argv[i].startswith("--") or argv[i] == "-h"):
            values.append(argv[i])
            i += 1
        if name in first:
            first[name] += values
        else:
            first[name] = [name, *values]
            parts.append(first[name])
    return [arg for part in parts for arg in part]


def _preset_name(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    sys.exit(main())
