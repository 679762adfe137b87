#!/usr/bin/env bash
# Download the wheels that `scripts/gpu_check.sh --offline-wheels .whl` installs on a GPU machine without
# network: the packages depthrl and the physics tasks import that such a machine lacks. The machine this is
# written for has Python 3.12 with jax 0.11.2 (+ the CUDA 13 plugin), flax, optax, orbax-checkpoint, rich,
# matplotlib, numpy, scipy and pytest, and none of the packages below.
#
#   scripts/gpu_wheels.sh [DIR]     (default DIR: .whl, ignored by git; prints the total size at the end)
#
# Versions are requirements.lock's, all of which install on Python 3.12 and import with jax 0.11.2 (checked
# in a Python 3.12 venv with jax 0.11.2: depthrl's modules import and every physics family builds and
# steps). The set is what `depthrl train crl` on a physics env imports, found by listing the modules loaded
# from these wheels; brax's other declared dependencies (flask, jaxopt, ml_collections, tensorboardX, ...)
# are not imported by depthrl's use of it. gymnax, tensorboardX, ray and the test tools are left out
# (gpu_check runs with --no-tensorboard and no gymnax env); `--no-deps` keeps pip from pulling a second
# jax. mujoco and glfw are the only platform wheels (manylinux x86_64); the rest are pure Python.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.whl}"
mkdir -p "$dir"

wheels=(
  # the CLI and configs (tyro and what it imports)
  tyro==1.0.16 docstring_parser==0.18.0 typeguard==4.6.1
  # the physics tasks: brax and MuJoCo/MJX (mujoco-mjx 3.17.0 with the mujoco it was released with)
  brax==0.14.2 mujoco==3.17.0 mujoco-mjx==3.17.0
  # imported by brax/mujoco/mjx when the envs are built (PyOpenGL: MuJoCo's rendering)
  trimesh==5.2.0 glfw==2.11.0 PyOpenGL==3.1.10
)
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dir" "${wheels[@]}"
ls -1 "$dir"/*.whl
du -ch "$dir"/*.whl | tail -1 | sed 's/total/total size of the wheels/'
