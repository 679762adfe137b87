"""Test-session settings: one persistent compilation cache for the whole session (tests that build the
same tiny programs compile them once), in a temporary folder so every CI run starts clean."""

import pytest

from depthrl.training import compile_cache


@pytest.fixture(scope="session", autouse=True)
def _session_compile_cache(tmp_path_factory):
    compile_cache.enable(tmp_path_factory.mktemp("jax_cache"), min_compile_time_s=0.0)
