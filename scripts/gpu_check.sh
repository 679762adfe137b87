#!/usr/bin/env bash
# One-command GPU check of depthrl (one H100/H200, under 8 minutes): prints one JSON line per measurement
# and a final verdict line (scripts/gpu_check.py describes each measurement).
#
#   scripts/gpu_check.sh                         install the CUDA + physics extras into .venv-gpu (network),
#                                                then measure
#   scripts/gpu_check.sh --offline-wheels DIR    a machine without network whose python3 already has jax
#                                                (CUDA), flax, optax, orbax, rich, matplotlib, numpy, scipy:
#                                                install the wheels of DIR (made by scripts/gpu_wheels.sh)
#                                                into a temporary folder, run depthrl from src/ (the
#                                                wheels are for Python 3.12, x86_64 Linux)
#   scripts/gpu_check.sh --tiny                  the same code at CPU sizes, to check the script on a machine
#                                                without GPU (with DEPTHRL_SKIP_INSTALL=1: as is)
#
# Other arguments go to scripts/gpu_check.py (--budget-s, --envs, --crl-env, --depths, --stages, ...).
# Exit status: 0 pass, 1 fail, 3 incomplete (stages skipped for time), 2 a usage error.
# Environment: PYTHON (default python3); DEPTHRL_VENV (default .venv-gpu; an existing venv with a
# .gpu-check-installed stamp is reused); DEPTHRL_SKIP_INSTALL=1 uses the current interpreter as is.
set -euo pipefail
cd "$(dirname "$0")/.."

tiny=0
wheels=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tiny) tiny=1; args+=("$1") ;;
    --offline-wheels)
      [[ $# -ge 2 ]] || { echo "--offline-wheels needs a folder of wheels" >&2; exit 2; }
      wheels="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

start=$(date +%s)
if [[ -n "$wheels" ]]; then
  compgen -G "$wheels/*.whl" > /dev/null || { echo "--offline-wheels $wheels: no .whl files there" >&2; exit 2; }
  py="${PYTHON:-python3}"
  site="$(mktemp -d "${TMPDIR:-/tmp}/depthrl-site.XXXXXX")"
  "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl >&2
  export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
elif [[ "${DEPTHRL_SKIP_INSTALL:-0}" == "1" ]]; then
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
echo "{\"measure\": \"install\", \"seconds\": $(( $(date +%s) - start )), \"wheels\": \"$wheels\"}"

if [[ $tiny == 1 ]]; then
  # A check of the script: compile fast (XLA optimisation level 0), on the CPU.
  export JAX_PLATFORMS=cpu
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
else
  "$py" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else "no GPU visible to JAX: use --tiny on CPU")'
fi
exec "$py" scripts/gpu_check.py "${args[@]}"
