"""The run warns once when TD targets fall outside a categorical critic's support; logging needs no network."""

import dataclasses
import socket
import struct

import jax
import numpy as np
import pytest

from depthrl.losses import value_dist as vd
from depthrl.training import runner
from depthrl.training.command import run as main


def test_out_of_support_warning_on_synthetic_targets():
    support = vd.ValueSupport(v_min=-5.0, v_max=5.0, num_bins=51)
    wide = 10.0 * jax.random.normal(jax.random.PRNGKey(0), (20_000,))  # N(0, 10²): P(|y| > 5) = 0.617
    inside = jax.random.uniform(jax.random.PRNGKey(1), (20_000,), minval=-4.9, maxval=4.9)
    wide_fraction = float(vd.out_of_support_fraction(wide, support))
    assert wide_fraction == pytest.approx(0.617, abs=0.01)
    assert float(vd.out_of_support_fraction(inside, support)) == 0.0

    warned: set[str] = set()
    row = {"critic/out_of_support": wide_fraction, "critic/loss": 3.0, "eval/success": 0.9}
    (message,) = runner.out_of_support_warnings(row, warned)
    assert "critic/out_of_support" in message and "62%" in message and "--v-min" in message
    assert runner.out_of_support_warnings(row, warned) == []  # once per run
    calm = {"critic/out_of_support": float(vd.out_of_support_fraction(inside, support)),
            "q2/out_of_support": runner.OUT_OF_SUPPORT_WARNING}  # at the threshold: no warning
    assert runner.out_of_support_warnings(calm, set()) == []
    other = runner.out_of_support_warnings({"q2/out_of_support": 0.5}, warned)  # a second critic warns too
    assert len(other) == 1 and "q2/out_of_support" in other[0]


def _read_scalars(path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of a TensorBoard event file (TFRecord framing: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2

    data, offset, scalars = path.read_bytes(), 0, {}
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset: offset + 8])
        event = event_pb2.Event.FromString(data[offset + 12: offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_offline_run_writes_tensorboard_and_warns_once(make_tiny_args, tmp_path, monkeypatch, capsys):
    """With every socket refused, a run with TensorBoard on still trains and logs (nothing asks for a login
    or the network); a critic whose targets leave the support (a logged `critic/out_of_support` of 0.62 at
    every evaluation) is warned about once. The tiny run shares its compiled programs with the other tools
    tests (session compile cache)."""

    def no_network(*args, **kwargs):
        raise OSError("network access attempted during an offline run")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    evaluate_and_log = runner._evaluate_and_log

    def with_wide_targets(*args, **kwargs):  # as a categorical critic on N(0, 10²) targets, support [-5, 5]
        row = evaluate_and_log(*args, **kwargs)
        row["critic/out_of_support"] = 0.617
        return row

    monkeypatch.setattr(runner, "_evaluate_and_log", with_wide_targets)
    args = dataclasses.replace(make_tiny_args(tmp_path / "offline"), tensorboard=True)
    assert main(args) == 0
    rows = runner.read_metrics(tmp_path / "offline")

    assert len(rows) == 2
    assert capsys.readouterr().err.count("critic/out_of_support") == 1  # warned once, not at every evaluation
    events = list((tmp_path / "offline" / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 1_000
    scalars = _read_scalars(events[0])
    assert [step for step, _ in scalars["eval/success"]] == [r["env_steps"] for r in rows]
    assert [value for _, value in scalars["eval/success"]] == pytest.approx([r["eval/success"] for r in rows])
    assert np.isfinite([value for _, value in scalars["compile_s"]]).all()
    assert np.isfinite(rows[-1]["time/epoch_s"]) and rows[-1]["time/epoch_s"] > 0
