# depthrl: every target sets up what it needs (a .venv with pinned versions) and is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: quickstart test train soak bench clean-venv

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("depthrl needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

# What the tests need beyond the base install: the physics extra (brax, mujoco, mujoco-mjx) for the paper's
# Ant/Humanoid/arm tasks, the sweep extra (Ray) for the test that runs a sweep on a local Ray instance, and the
# wandb extra for the offline W&B run (about 90 MB, 17 s to install).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev,physics,sweep,wandb]'
	@touch $(TEST_STAMP)

## The main job: CRL on the embedded point-mass U-maze, with plots (runs/quickstart/plots).
quickstart: $(STAMP)
	$(BIN)/depthrl train crl --preset quickstart --run-dir runs/quickstart --overwrite

## The whole test suite plus ruff (with the physics, sweep and wandb extras, so the brax/MJX, Ray and W&B tests run). Two pytest workers:
## most of the suite's time is XLA compilation, which is single-threaded, so two cores run it twice as fast.
test: $(STAMP) $(TEST_STAMP)
	$(BIN)/ruff check src tests experiments
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## Reliability soak (~10 min on 2 CPU cores): SIGKILL and resume a training run at random moments, then check
## its metrics equal an uninterrupted run's exactly; prints PASS/FAIL (docs/reliability.md). SOAK_FLAGS=--help
soak: $(STAMP)
	$(BIN)/python scripts/soak.py $(SOAK_FLAGS)

clean-venv:
	rm -rf $(VENV)
