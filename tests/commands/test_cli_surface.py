"""Golden test of the CLI surface: every command's `--help` (its flags, defaults and docs), and the config.json
keys and metric names of a tiny CRL run, against snapshots in tests/commands/snapshots/.

A change to a flag, a default or a metric shows here as a diff. When the change is intended, regenerate the
snapshots with `DEPTHRL_UPDATE_SNAPSHOTS=1 pytest tests/commands/test_cli_surface.py` and commit them.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from depthrl import cli

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("DEPTHRL_UPDATE_SNAPSHOTS") == "1"


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}: run with DEPTHRL_UPDATE_SNAPSHOTS=1 to create it"
    diff = "".join(difflib.unified_diff(path.read_text().splitlines(True), text.splitlines(True), "snapshot", "now"))
    assert not diff, f"{name} differs from its snapshot (DEPTHRL_UPDATE_SNAPSHOTS=1 to accept):\n{diff}"


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.fixture
def fixed_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # tyro wraps the help at the terminal width


def test_top_level_usage(capsys):
    assert cli.main(["--help"]) == 0
    _check("help/depthrl.txt", capsys.readouterr().out)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS, key=lambda c: (c[0], c[1] or "")),
                         ids=lambda c: f"{c[0]}-{c[1]}" if c[1] else c[0])
def test_help_matches_snapshot(command, capsys, fixed_width):
    group, sub = command
    argv = [group] + ([sub] if sub else [])
    text = _help(argv, capsys)
    assert f"usage: depthrl {' '.join(argv)}" in text
    _check(f"help/{'-'.join(argv)}.txt", text)


def test_a_list_flag_given_twice_keeps_the_values_of_both():
    import tyro

    from depthrl.commands import train

    args_cls = train.entry("crl").args  # env, train and agent flags are nested configs without prefix
    assert {"--wandb-tags", "--group-with"} <= cli._list_flags(args_cls)
    argv = cli.merge_repeated_lists(args_cls, ["--wandb-tags", "a", "b", "--depth", "8", "--wandb-tags=c",
                                               "--group-with", "runs/x", "--wandb-tags", "d"])
    assert argv == ["--wandb-tags", "a", "b", "c", "d", "--depth", "8", "--group-with", "runs/x"]
    args = tyro.cli(args_cls, args=argv)
    assert args.wandb_tags == ("a", "b", "c", "d") and args.group_with == ("runs/x",) and args.agent.depth == 8
    # A flag given once, and a scalar flag given twice (the last wins, as usual), pass through unchanged.
    once = ["--depth", "4", "--wandb-tags", "a", "--depth", "8"]
    assert cli.merge_repeated_lists(args_cls, once) == once


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys += _flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return keys


def test_tiny_crl_run_config_keys_and_metric_names(trained_runs):
    """The tiny CRL run of conftest.py (shared with the other commands' tests, so it costs nothing here)."""
    run_dir = trained_runs[0]
    config = json.loads((run_dir / "config.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    assert rows and config["kind"] == "crl"
    metrics = sorted(set().union(*(row.keys() for row in rows)))
    surface = {"config_keys": sorted(_flat_keys(config)), "metric_names": metrics}
    _check("train-crl-run.json", json.dumps(surface, indent=1) + "\n")
