"""depthrl doctor: versions, devices, CUDA plugin, GPU memory setting, matmul precision, compile cache, and a
self-check whose verdict follows its checks."""

import json
import os
import subprocess
import sys

import jax

from depthrl import cli
from depthrl.commands import doctor


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


def _report(monkeypatch, capsys, tmp_path) -> tuple[str, dict]:
    """The readable report and the JSON one, without the self-check (tested above)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(doctor, "CHECKS", [])
    assert doctor.main(doctor.Args()) == 0
    text = capsys.readouterr().out
    assert doctor.main(doctor.Args(json=True)) == 0
    return text, json.loads(capsys.readouterr().out)


def test_doctor_reports_gpu_memory_preallocation(tmp_path, monkeypatch, capsys):
    for name in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR"):
        monkeypatch.delenv(name, raising=False)
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["gpu_memory"] == {**report["gpu_memory"], "preallocate": True, "mem_fraction": 0.75,
                                    "allocator": "default"}  # JAX's defaults when nothing is set
    assert "GPU memory: preallocates 75% of each GPU's memory at its first use" in text
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", ".5")
    assert "preallocates 50%" in _report(monkeypatch, capsys, tmp_path)[0]
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["gpu_memory"]["preallocate"] is False and "GPU memory: on demand" in text
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in text
    monkeypatch.setenv("XLA_PYTHON_CLIENT_ALLOCATOR", "platform")
    assert "GPU memory: platform allocator: allocates exactly" in _report(monkeypatch, capsys, tmp_path)[0]


def test_doctor_reports_the_default_matmul_precision(tmp_path, monkeypatch, capsys):
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["matmul_precision"]["default"] is None
    assert "matmul precision: default: the backend's default: TF32 on A100/H100/H200 GPUs" in text
    with jax.default_matmul_precision("highest"):
        text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["matmul_precision"]["default"] == "highest" and "matmul precision: highest: full float32" in text
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    with jax.default_matmul_precision("tensorfloat32"):
        text = _report(monkeypatch, capsys, tmp_path)[0]
    assert "tensorfloat32: TF32 on GPUs" in text and "NVIDIA_TF32_OVERRIDE=0 turns TF32 off" in text


def _fake_distribution(site, name, version):
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_doctor_reports_the_cuda_plugin_and_a_version_mismatch(tmp_path, monkeypatch, capsys):
    real = doctor.cuda_plugins()  # {} here; a GPU machine's own plugin stays in the report beside the fakes
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["cuda_plugins"] == real and ("CUDA plugin: none" in text) == (not real)
    site = tmp_path / "site"  # fake installed packages (dist-info folders), found through sys.path
    _fake_distribution(site, "jax-cuda99-plugin", jax.__version__)
    _fake_distribution(site, "jax_cuda99_pjrt", jax.__version__)
    monkeypatch.syspath_prepend(str(site))
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert report["cuda_plugins"] == {**real, "jax-cuda99-pjrt": jax.__version__, "jax-cuda99-plugin": jax.__version__}
    assert f"jax-cuda99-pjrt {jax.__version__}, jax-cuda99-plugin {jax.__version__}" in text
    assert "does not match" not in text or real
    _fake_distribution(site, "jax-cuda98-plugin", "0.0.1")
    text = _report(monkeypatch, capsys, tmp_path)[0]
    assert "jax-cuda98-plugin 0.0.1" in text
    assert f"(does not match jaxlib {jax.__version__}: JAX will not load it)" in text


def test_doctor_reports_compile_cache_size_and_entries(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "depthrl" / "jax_compilation_cache"
    folder.mkdir(parents=True)
    (folder / "jit_epoch-ab12-cache").write_bytes(b"x" * 1000)
    (folder / "jit_epoch-ab12-atime").write_bytes(b"t" * 8)  # written beside an entry when JAX evicts by age
    (folder / "jit_evaluate-cd34-cache").write_bytes(b"y" * 2000)
    text, report = _report(monkeypatch, capsys, tmp_path)
    assert (report["compile_cache"]["entries"], report["compile_cache"]["size_bytes"]) == (2, 3008)
    assert "(2 entries, 3,008 bytes = 0.0 MiB)" in text


def test_doctor_counts_visible_devices(tmp_path):
    """Two forced host devices show as two visible devices (what CUDA_VISIBLE_DEVICES does on a GPU machine)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    code = ("from depthrl.commands import doctor; d = doctor.devices(); "
            "print(len(d['devices']), d['env']['XLA_FLAGS'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "--xla_force_host_platform_device_count=2"]
