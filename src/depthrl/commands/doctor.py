"""Check this installation: versions, devices and backend, CUDA plugin, GPU memory preallocation, matmul
precision, compile cache, and a short self-check (a tiny network's SGD steps and a maze env's steps) ending in
a PASS or FAIL verdict (exit status 0 or 1).

Example: depthrl doctor
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata

PACKAGES = ("depthrl", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tyro", "numpy", "matplotlib",
            "tensorboardX", "brax", "mujoco", "gymnax")
ENV_VARS = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR",
            "XLA_FLAGS", "JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES", "JAX_DEFAULT_MATMUL_PRECISION",
            "NVIDIA_TF32_OVERRIDE")
SELF_CHECK_BUDGET_S = 10.0


@dataclasses.dataclass(frozen=True)
class Args:
    json: bool = False
    """Print one JSON object instead of the readable report."""


def versions() -> dict[str, str | None]:
    """Installed version of each package (None: not installed), and Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cuda_plugins() -> dict:
    """Installed JAX CUDA plugin packages (jax-cuda12-plugin, jax-cuda12-pjrt, ...) -> version; {} if none.

    JAX loads a plugin only if its version equals jaxlib's, so a mismatch silently leaves JAX on the CPU.
    """
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("jax-cuda") and (name.endswith("-plugin") or name.endswith("-pjrt")):
            found[name] = dist.version
    return dict(sorted(found.items()))


def memory_setting() -> dict:
    """How XLA takes GPU memory, from XLA_PYTHON_CLIENT_{PREALLOCATE,MEM_FRACTION,ALLOCATOR} (JAX's defaults:
    preallocate 75% of each GPU at its first use, BFC allocator)."""
    preallocate = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true").strip().lower() not in ("false", "0")
    fraction_text = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.75")
    allocator = os.environ.get("XLA_PYTHON_CLIENT_ALLOCATOR", "default").strip().lower()
    try:
        fraction = float(fraction_text)
    except ValueError:
        fraction = None
    if allocator == "platform":
        meaning = ("platform allocator: allocates exactly what each array needs and frees it at once (slow; "
                   "for finding true peak memory)")
    elif not preallocate:
        meaning = ("on demand: the pool grows as needed and is not returned to the GPU (depthrl's commands set this "
                   "unless XLA_PYTHON_CLIENT_PREALLOCATE is set; =true reserves memory up front)")
    elif fraction is None:
        meaning = f"XLA_PYTHON_CLIENT_MEM_FRACTION={fraction_text!r} is not a number: JAX will fail on a GPU"
    else:
        meaning = (f"preallocates {fraction:.0%} of each GPU's memory at its first use (nvidia-smi shows that, "
                   f"not what depthrl uses; other processes get the rest)")
    return {"preallocate": preallocate, "mem_fraction": fraction, "allocator": allocator, "meaning": meaning}


def matmul_precision() -> dict:
    """JAX's default float32 matmul precision (jax_default_matmul_precision / JAX_DEFAULT_MATMUL_PRECISION)."""
    import jax

    value = jax.config.jax_default_matmul_precision
    if value is None:
        meaning = "the backend's default: TF32 on A100/H100/H200 GPUs, one bfloat16 pass on TPUs, float32 on CPUs"
    elif value in ("highest", "float32", "F32_F32_F32"):
        meaning = "full float32"
    elif value in ("high", "tensorfloat32", "TF32_TF32_F32"):
        meaning = "TF32 on GPUs (3 bfloat16 passes on TPUs)"
    else:
        meaning = f"{value} (see jax.lax.Precision / DotAlgorithmPreset)"
    if os.environ.get("NVIDIA_TF32_OVERRIDE") == "0":
        meaning += "; NVIDIA_TF32_OVERRIDE=0 turns TF32 off in cuBLAS/cuDNN"
    return {"default": value, "meaning": meaning,
            "note": "`depthrl train --matmul-precision` sets it per run for every network and CRL's energy"}


def devices() -> dict:
    import jax

    from depthrl.training import estimate

    free, where = estimate.available_memory()
    return {"backend": jax.default_backend(),
            "devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()],
            "free_memory_bytes": free, "free_memory_source": where,
            "env": {name: os.environ.get(name) for name in ENV_VARS}}


def cache_info() -> dict:
    import jax

    from depthrl.training import compile_cache

    folder = compile_cache.default_dir()
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    # JAX stores one `<key>-cache` file per compiled program (plus a `<key>-atime` file when it evicts by age)
    entries = sum(1 for p in files if p.name.endswith("-cache"))
    return {"default_on_for_train": True, "folder": str(folder), "exists": folder.exists(), "entries": entries,
            "size_bytes": sum(p.stat().st_size for p in files),
            "this_process": jax.config.jax_compilation_cache_dir}


def _check_network() -> str:
    """20 jitted Adam steps of a depth-4, width-16 residual net on a fixed regression: the loss must fall."""
    import jax
    import jax.numpy as jnp
    import optax

    from depthrl.agents.optim import optimizer_step
    from depthrl.networks.heads import Encoder
    from depthrl.networks.torso import NetworkConfig

    net = Encoder(NetworkConfig(depth=4, width=16), out_dim=1)
    x_key, y_key, init_key = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(x_key, (64, 6))
    y = jnp.sin(x[:, :1]) + 0.1 * jax.random.normal(y_key, (64, 1))
    params = net.init(init_key, x)
    optimizer = optax.adam(1e-2)

    def loss_fn(p):
        return jnp.mean((net.apply(p, x) - y) ** 2)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p)
            return optimizer_step(optimizer, grads, opt_state, p), loss

        (p, _), losses = jax.lax.scan(step, (p, optimizer.init(p)), None, length=20)
        return losses, loss_fn(p)

    losses, final = jax.device_get(train(params))
    if not (bool(jnp.all(jnp.isfinite(losses))) and float(final) < 0.7 * float(losses[0])):
        raise AssertionError(f"loss did not fall: {float(losses[0]):.4f} -> {float(final):.4f}")
    return f"loss {float(losses[0]):.3f} -> {float(final):.3f} in 20 Adam steps"


def _check_env() -> str:
    """8 point-mass U-mazes, reset and 50 random steps (vmapped, scanned): finite obs inside the maze."""
    import jax
    import jax.numpy as jnp

    from depthrl.envs.registry import EnvConfig, make_envs

    env, _ = make_envs(EnvConfig(env="point-maze-u"))
    spec = env.spec
    layout = EnvConfig(env="point-maze-u").maze_layout()

    @jax.jit
    def run(key):
        reset_key, step_key = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(reset_key, 8))

        def step(state, k):
            action = jax.random.uniform(k, (8, spec.action_dim), minval=-1.0, maxval=1.0)
            state = jax.vmap(env.step)(state, action)
            return state, state.obs

        return jax.lax.scan(step, state, jax.random.split(step_key, 50))[1]

    obs = jax.device_get(run(jax.random.PRNGKey(0)))
    if obs.shape != (50, 8, spec.obs_dim) or not bool(jnp.all(jnp.isfinite(obs))):
        raise AssertionError(f"bad observations: shape {obs.shape}, finite {bool(jnp.all(jnp.isfinite(obs)))}")
    xy = obs[..., :2]
    if not (bool(jnp.all(xy >= 0)) and bool(jnp.all(xy[..., 0] <= layout.width))
            and bool(jnp.all(xy[..., 1] <= layout.height))):
        raise AssertionError("the point mass left the maze")
    return f"8 envs × 50 steps, obs {spec.obs_dim}-d, all inside the {layout.width}×{layout.height} maze"


def _check_cache_folder() -> str:
    """The compile cache folder can be created and written."""
    from depthrl.training import compile_cache

    folder = compile_cache.default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".doctor_{os.getpid()}"
    probe.write_text("ok")
    probe.unlink()
    return f"{folder} is writable"


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("network SGD step", _check_network),
    ("env step", _check_env),
    ("compile cache folder", _check_cache_folder),
]


def self_check() -> list[dict]:
    results = []
    for name, check in CHECKS:
        start = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as err:  # a doctor reports every failure, it does not stop at the first
            detail, ok = f"{type(err).__name__}: {err}", False
        results.append({"check": name, "ok": ok, "seconds": time.perf_counter() - start, "detail": detail})
    return results


def _plugin_line(plugins: dict, jaxlib_version: str | None) -> str:
    if not plugins:
        return "none (JAX cannot use an NVIDIA GPU; pip install -e '.[cuda]' installs it)"
    line = ", ".join(f"{name} {version}" for name, version in plugins.items())
    stale = sorted(name for name, version in plugins.items() if name.endswith("-plugin") and version != jaxlib_version)
    return line + (f" (does not match jaxlib {jaxlib_version}: JAX will not load it)" if stale else "")


def main(args: Args) -> int:
    report = {"versions": versions(), "devices": devices(), "cuda_plugins": cuda_plugins(),
              "gpu_memory": memory_setting(), "matmul_precision": matmul_precision(), "compile_cache": cache_info()}
    checks = self_check()
    seconds = sum(c["seconds"] for c in checks)
    passed = all(c["ok"] for c in checks)
    report.update(self_check=checks, self_check_seconds=seconds, verdict="PASS" if passed else "FAIL")
    if args.json:
        print(json.dumps(report))
        return 0 if passed else 1
    v, d, c = report["versions"], report["devices"], report["compile_cache"]
    print("depthrl doctor")
    print("  versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None))
    missing = [k for k, val in v.items() if val is None]
    if missing:
        print(f"  not installed (optional): {', '.join(missing)}")
    print(f"  backend: {d['backend']}; {len(d['devices'])} visible device(s): {', '.join(d['devices'])}")
    if d["free_memory_bytes"] is not None:
        print(f"  free memory: {d['free_memory_bytes'] / 2**30:.1f} GiB ({d['free_memory_source']})")
    print(f"  CUDA plugin: {_plugin_line(report['cuda_plugins'], v.get('jaxlib'))}")
    m, p = report["gpu_memory"], report["matmul_precision"]
    print(f"  GPU memory: {m['meaning']} (XLA_PYTHON_CLIENT_PREALLOCATE={str(m['preallocate']).lower()}, "
          f"MEM_FRACTION={m['mem_fraction']}, ALLOCATOR={m['allocator']})")
    print(f"  matmul precision: {p['default'] or 'default'}: {p['meaning']} ({p['note']})")
    print("  environment: " + (", ".join(f"{k}={val}" for k, val in d["env"].items() if val is not None) or "-"))
    print(f"  compile cache: on by default for `depthrl train` (--no-compile-cache turns it off); folder "
          f"{c['folder']} ({c['entries']} entries, {c['size_bytes']:,} bytes = {c['size_bytes'] / 2**20:.1f} MiB)")
    for check in checks:
        mark = "ok  " if check["ok"] else "FAIL"
        print(f"  [{mark}] {check['check']:<22} {check['seconds']:5.1f} s  {check['detail']}")
    slow = f" (slower than {SELF_CHECK_BUDGET_S:.0f} s: is the machine busy?)" if seconds > SELF_CHECK_BUDGET_S else ""
    print(f"verdict: {report['verdict']} (self-check {seconds:.1f} s){slow}")
    sys.stdout.flush()
    return 0 if passed else 1
