"""The persistent compile cache's size cap: least-recently-used eviction (hand-built entries, and JAX itself
compiling programs into a capped folder), the --compile-cache-max-mb flag."""

import json
import subprocess
import sys

import pytest

from depthrl.errors import ConfigError
from depthrl.training import command, compile_cache
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`


def make_entry(folder, key, size, used_ns=None):
    entry = folder / f"{key}-cache"
    entry.write_bytes(b"x" * size)
    if used_ns is not None:
        compile_cache.touch(entry, used_ns)
    return entry


def names(folder):  # the entries' files (not JAX's .lockfile, which eviction holds)
    return sorted(p.name for p in folder.iterdir() if p.name != ".lockfile")


def test_eviction_deletes_the_least_recently_used_entries_first(tmp_path):
    make_entry(tmp_path, "a", 100, used_ns=1)
    make_entry(tmp_path, "b", 100, used_ns=3)
    make_entry(tmp_path, "c", 100, used_ns=2)
    assert compile_cache.evict(tmp_path, 300) == []  # fits: nothing deleted
    assert [p.name for p in compile_cache.evict(tmp_path, 250)] == ["a-cache"]  # 300 > 250: the oldest goes
    assert names(tmp_path) == ["b-atime", "b-cache", "c-atime", "c-cache"]
    compile_cache.touch(tmp_path / "c-cache", 4)  # c used after b: b is now the least recent
    assert [p.name for p in compile_cache.evict(tmp_path, 150)] == ["b-cache"]
    assert names(tmp_path) == ["c-atime", "c-cache"]


def test_entries_of_an_uncapped_cache_get_their_last_use_from_the_modification_time(tmp_path):
    old = make_entry(tmp_path, "old", 10)
    new = make_entry(tmp_path, "new", 10)
    import os

    os.utime(old, ns=(10**18, 10**18))
    os.utime(new, ns=(2 * 10**18, 2 * 10**18))
    assert [(t, s, p.name) for t, s, p in compile_cache.entries(tmp_path)] == [
        (10**18, 10, "old-cache"), (2 * 10**18, 10, "new-cache")]
    assert (tmp_path / "old-atime").exists()  # written in JAX's format, so JAX's own eviction can read it


# Compiles 4 different programs (each stored: no minimum compile time) one after the other into a cache capped
# at argv[2] MiB; prints the entry each one added, in order, and the entries left with their sizes.
SCRIPT = """
import json, sys
import numpy as np
import jax, jax.numpy as jnp
from depthrl.training import compile_cache
folder = compile_cache.enable(sys.argv[1], min_compile_time_s=0.0, max_mb=float(sys.argv[2]))
added, seen = [], set()
for k in range(4):
    jax.jit(lambda x, k=k: jnp.sin(x) * (k + 1) + jnp.arange(k + 2.0).sum())(np.ones(3 + k)).block_until_ready()
    names = {p.name for p in folder.glob("*-cache")}
    added += sorted(names - seen)
    seen |= names
print(json.dumps({"added": added, "left": [[p.name, s] for _, s, p in compile_cache.entries(folder)]}))
"""


def fill(folder, max_mb):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(max_mb)], capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_jax_keeps_the_capped_cache_under_its_size(tmp_path):
    uncapped = fill(tmp_path / "big", 1024)["left"]
    assert len(uncapped) == 4
    sizes = sorted(s for _, s in uncapped)
    cap_bytes = sizes[-1] + sizes[-2] + sizes[0] // 2  # room for two entries (sizes vary by bytes), not three
    capped = fill(tmp_path / "small", cap_bytes / 2**20)
    assert len(capped["added"]) == 4 and sum(s for _, s in capped["left"]) <= cap_bytes
    # Least recently used first: the two programs compiled last are kept, the first two evicted.
    assert [name for name, _ in capped["left"]] == capped["added"][2:]


def test_compile_cache_max_mb_flag():
    assert Args().compile_cache_max_mb == 1024.0
    with pytest.raises(ConfigError) as err:
        command.validate_config(Args(compile_cache_max_mb=0.0))
    assert err.value.flag == "--compile-cache-max-mb"
