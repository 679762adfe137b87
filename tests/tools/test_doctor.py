"""depthrl doctor: versions, devices, compile cache, and a self-check whose verdict follows its checks."""

import json

import jax

from depthrl import cli
from depthrl.tools import doctor


def test_doctor_passes_on_a_working_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the cache-folder check writes here, not in ~/.cache
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("verdict: PASS")
    assert f"jax {jax.__version__}" in out and "jaxlib" in out and "flax" in out and "optax" in out
    assert "backend: cpu" in out and str(tmp_path / "depthrl" / "jax_compilation_cache") in out
    for name in ("network SGD step", "env step", "compile cache folder"):
        assert f"[ok  ] {name}" in out


def test_doctor_fails_when_a_check_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def broken():
        raise RuntimeError("no luck")

    monkeypatch.setattr(doctor, "CHECKS", [("env step", doctor._check_env), ("broken", broken)])
    assert doctor.main(doctor.Args(json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "FAIL"
    assert [(c["check"], c["ok"]) for c in report["self_check"]] == [("env step", True), ("broken", False)]
    assert "RuntimeError: no luck" in report["self_check"][1]["detail"]
    assert report["versions"]["jax"] == jax.__version__ and report["devices"]["backend"] == "cpu"
    assert doctor.main(doctor.Args()) == 1
    assert "verdict: FAIL" in capsys.readouterr().out
