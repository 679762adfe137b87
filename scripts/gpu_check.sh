#!/usr/bin/env bash
# GPU check of depthrl's physics tasks and deep CRL (one H100/H200, under ~8 minutes).
#
#   scripts/gpu_check.sh            install the CUDA + physics extras into .venv-gpu, then measure:
#                                   brax env steps/s (ant, humanoid; 1024 envs) and one CRL epoch on the
#                                   Ant at depth 4, 64 and 256 (scan + remat, batch 512, width 256).
#   scripts/gpu_check.sh --tiny     the same code at CPU sizes (a few envs, width 16), to check the script
#                                   on a machine without a GPU (installs only the physics extra).
#
# Every measurement prints one JSON line on stdout (setup first); copy them into docs/benchmarks.md with
# the GPU named. Environment: PYTHON (default python3); DEPTHRL_VENV (default .venv-gpu; an existing venv
# with a .gpu-check-installed stamp is reused); DEPTHRL_SKIP_INSTALL=1 uses the current interpreter as is.
set -euo pipefail
cd "$(dirname "$0")/.."

tiny=0
for arg in "$@"; do
  [[ "$arg" == "--tiny" ]] && tiny=1
done

if [[ "${DEPTHRL_SKIP_INSTALL:-0}" == "1" ]]; then
  py="${PYTHON:-python3}"
else
  venv="${DEPTHRL_VENV:-.venv-gpu}"
  extras="cuda,physics"
  [[ $tiny == 1 ]] && extras="physics"
  stamp="$venv/.gpu-check-installed-$extras"
  if [[ ! -f "$stamp" ]]; then
    echo "installing depthrl[$extras] into $venv ..." >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q -c requirements.lock -e ".[$extras]" >&2
    touch "$stamp"
  fi
  py="$venv/bin/python"
fi

if [[ $tiny == 1 ]]; then
  JAX_PLATFORMS=cpu exec "$py" scripts/gpu_check.py "$@"
fi
"$py" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else "no GPU visible to JAX: use --tiny on CPU")'
exec "$py" scripts/gpu_check.py "$@"
