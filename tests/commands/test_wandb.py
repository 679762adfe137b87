"""Weights & Biases logging (--wandb-project): an offline run with every network connection refused writes
the metrics, config and plots into RUN_DIR/wandb next to TensorBoard; without the extra, or with a W&B flag
but no project, the command fails at start naming the flag."""

import dataclasses
import json
import socket
import sys
import time

import pytest

from depthrl import cli
from depthrl.training import runner, wandb_log
from depthrl.training.command import run as main


def test_without_the_extra_a_wandb_run_fails_at_start_naming_the_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    run_dir = tmp_path / "run"
    assert cli.main(["train", "crl", "--wandb-project", "p", "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--wandb-project" in err and wandb_log.INSTALL in err and "Traceback" not in err
    assert not run_dir.exists()  # nothing was started
    assert cli.main(["train", "crl", "--wandb-tags", "a", "b", "--run-dir", str(run_dir)]) == 2
    assert "--wandb-tags" in capsys.readouterr().err and not run_dir.exists()


def _record_log(path, needles: list[bytes], timeout_s: float = 60.0) -> bytes:
    """The record log's bytes once they hold every needle: W&B's service process may still be writing it when
    finish() returns (seen once on a loaded machine: only the 7-byte header was there). A log that never
    holds them is returned as is, and the test's assertions then fail."""
    deadline = time.monotonic() + timeout_s
    data = path.read_bytes()
    while not all(n in data for n in needles) and time.monotonic() < deadline:
        time.sleep(0.5)
        data = path.read_bytes()
    return data


def test_offline_wandb_run_logs_metrics_config_and_plots(make_tiny_args, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the W&B path needs the wandb extra (make test installs it)")
    real_connect = socket.socket.connect

    def local_only(sock, address):  # W&B's own service process is reached over a Unix socket
        if sock.family != socket.AF_UNIX:
            raise OSError(f"network access attempted during an offline run: {address}")
        return real_connect(sock, address)

    def no_network(*args, **kwargs):
        raise OSError("network access attempted during an offline run")

    monkeypatch.setattr(socket.socket, "connect", local_only)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    run_dir = tmp_path / "run"
    args = dataclasses.replace(make_tiny_args(run_dir), tensorboard=True, plots=True, wandb_project="depthrl-test",
                               wandb_group="tiny", wandb_tags=("offline-test",))
    assert main(args) == 0

    rows = runner.read_metrics(run_dir)
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run_id = (run_dir / wandb_log.RUN_ID_FILE).read_text().strip()
    (log,) = offline.glob(f"run-{run_id}.wandb")
    keys = ("eval/success", "eval/time_at_goal", "critic/loss", "compile_s")
    last = json.dumps(rows[-1]["eval/time_at_goal"]).encode()
    data = _record_log(log, [*(k.encode() for k in keys), last])  # W&B's record log: keys and JSON values as text
    for key in keys:
        assert key.encode() in data, key
    assert last in data  # the last evaluation's value
    assert b"point-maze" in data and b"offline-test" in data and b"tiny" in data  # config, tags, group
    plots = sorted(p.stem for p in (run_dir / "plots").glob("*.png"))
    media, deadline = offline / "files" / "media" / "images" / "plots", time.monotonic() + 60.0
    while len(list(media.glob("*.png"))) < len(plots) and time.monotonic() < deadline:  # written by W&B's service
        time.sleep(0.5)
    logged = sorted(p.name.split("_")[0] for p in media.glob("*.png"))
    assert plots and len(logged) == len(plots)
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))  # TensorBoard is written as before


def test_a_resumed_run_continues_its_wandb_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the W&B path needs the wandb extra (make test installs it)")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    (tmp_path / wandb_log.RUN_ID_FILE).write_text("abc123\n")
    writer = wandb_log.WandbWriter(tmp_path, {"kind": "crl"}, "depthrl-test", resume=True)
    writer.add_scalar("eval/success", 0.25, 100)
    writer.add_scalar("eval/success", 0.5, 200)
    writer.close()
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    assert offline.name.endswith("-abc123") and (tmp_path / wandb_log.RUN_ID_FILE).read_text() == "abc123\n"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    wandb_log.WandbWriter(fresh, {}, "depthrl-test").close()  # nothing logged: no W&B run is started
    assert not (fresh / "wandb").exists() and not (fresh / wandb_log.RUN_ID_FILE).exists()
