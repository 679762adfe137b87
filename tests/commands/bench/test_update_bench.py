"""`depthrl bench update` / `bench train` and the paper-structure reference at tiny sizes: keys, positivity,
FLOP counts by hand, O(1) sampling (no timing thresholds)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tyro

from depthrl import cli
from depthrl.commands.bench import reference
from depthrl.commands.bench import train as bench_train
from depthrl.commands.bench import update as bench_update
from depthrl.errors import ConfigError

TINY = dict(depth=4, width=16, batch_size=8, steps_per_call=2, repeats=2, warmup=1)


def test_crl_update_with_reference_json(capsys):
    assert bench_update.main(bench_update.Args(**TINY, reference=True, json=True)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    for key in ("compile_s", "step_ms", "step_ms_min", "step_cpu_ms", "sgd_steps_per_s", "gflops_per_s",
                "peak_gflops_per_s", "mfu", "peak_memory_mb", "reference_step_ms", "reference_compile_s",
                "speedup_vs_reference", "speedup_vs_reference_cpu"):
        assert r[key] > 0, key
    assert r["env_shapes"] == [29, 2, 8]  # the paper's Ant by default
    assert r["step_ms_min"] <= r["step_ms"] and r["resolved_layout"] == "unrolled"


def test_model_flops_by_hand():
    """CRL: 3 × actor + 5 × φ + 3 × ψ forward passes, plus 3 × the [B, D] × [D, B] logits product."""
    from depthrl.agents.crl import CRL, CRLConfig
    from depthrl.envs.base import EnvSpec

    spec = EnvSpec(name="t", obs_dim=5, action_dim=2, state_dim=3, goal_indices=(0, 1), episode_length=10)
    agent = CRL(CRLConfig(depth=4, width=8, repr_dim=4, batch_size=6), spec)
    params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params
    forward = lambda in_dim, out_dim: 2 * (in_dim * 8 + 4 * 8 * 8 + 8 * out_dim)  # noqa: E731
    expected = 6 * (3 * forward(5, 2 + 2) + 5 * forward(5, 4) + 3 * forward(2, 4)) + 3 * 2 * 6 * 6 * 4
    assert bench_update.model_flops("crl", params, 6, 4) == expected


def test_another_agent_compile_only(capsys):
    """sac (td3 takes the same generic path: its train command's AGENT and config)."""
    assert bench_update.main(bench_update.Args(**TINY, agent="sac", compile_only=True, json=True)) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["compile_s"] > 0 and r["peak_memory_mb"] > 0 and r["model_flops_per_step"] > 0
    assert "step_ms" not in r


def test_update_bad_args_name_the_flag(capsys):
    for kwargs, flag in ((dict(agent="sac", reference=True), "--reference"), (dict(depth=6), "--depth"),
                         (dict(batch_size=1), "--batch-size"), (dict(agent="ppo"), "--agent"),
                         (dict(env="nope"), "--env"), (dict(steps_per_call=0), "--steps-per-call")):
        with pytest.raises(ConfigError) as err:
            bench_update.run(bench_update.Args(**kwargs))
        assert err.value.flag == flag
    assert cli.main(["bench", "update", "--depth", "6", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("depthrl bench update: error:") and "--depth" in err


def test_train_epoch_split_with_reference_json(capsys):
    args = bench_train.Args(env="point-maze", episode_length=20, depth=4, width=16, norm="none", batch_size=16,
                            num_envs=8, unroll_length=10, sgd_steps_per_collect=3, buffer_size=400, repeats=2,
                            reference=True, json=True)
    with pytest.raises(ConfigError, match="--layout"):  # point-maze needs its maze
        bench_train.run(args)
    args = dataclasses.replace(args, env="point-maze-open")
    assert bench_train.main(args) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("epoch_compile_s", "epoch_ms", "collect_ms", "sample_ms", "update_ms", "reference_sample_ms",
                "reference_update_ms", "update_cpu_ms", "speedup_vs_reference_cpu", "env_steps_per_s",
                "sgd_steps_per_s", "peak_memory_mb"):
        assert r[key] > 0, key
    assert r["collect_fraction"] + r["sample_fraction"] + r["update_fraction"] == pytest.approx(1.0)
    assert r["env_steps_per_epoch"] == 80 and r["episode_length"] == 20


def test_flags_round_trip_through_the_command_line():
    args = bench_train.Args(depth=8, remat=True, episode_length=1000, num_seeds=3, barrier="/tmp")
    assert tyro.cli(bench_train.Args, args=bench_train._flags(args)) == args


def _sampling_temp_bytes(episode_length: int, paper: bool) -> int:
    """Temporary bytes of the compiled sampling of one epoch's batches (4 × 32) from a 64-env buffer."""
    from depthrl.buffers import trajectory as buf

    rows, envs = 2 * episode_length, 64
    state = buf.init({"state": jnp.zeros((29,)), "action": jnp.zeros((8,))}, rows, envs)
    state = state.replace(total_rows=jnp.asarray(rows, jnp.int32))
    key = jax.random.PRNGKey(0)
    if paper:
        fn = lambda s, k: reference.sample_epoch_batches(k, s.data, s.total_rows, episode_length, 4, 32, 0.99,  # noqa: E731
                                                         (0, 1))
    else:
        fn = lambda s, k: jax.vmap(  # noqa: E731
            lambda kk: buf.sample_with_future(s, kk, 32, 0.99))(jax.random.split(k, 4))
    return jax.jit(fn).lower(state, key).compile().memory_analysis().temp_size_in_bytes


def test_sampling_memory_does_not_grow_with_episode_length_but_the_papers_does():
    ours_short, ours_long = _sampling_temp_bytes(50, False), _sampling_temp_bytes(1000, False)
    paper_short, paper_long = _sampling_temp_bytes(50, True), _sampling_temp_bytes(1000, True)
    assert ours_long <= ours_short * 1.01 + 1024  # O(batch): the buffer is an argument, not a temporary
    assert paper_long > 100 * paper_short  # its [T, T] matrices per env: (1000 / 50)² = 400×
    assert paper_long > 64 * 1000 * 1000 * 4  # at least one float32 [64, 1000, 1000] tensor


def test_paper_relabelling_draws_a_later_step_of_the_same_episode():
    states = jnp.arange(12.0)[:, None] * jnp.ones((1, 3))
    episode_id = jnp.asarray([0] * 6 + [1] * 6)
    goals = jax.vmap(lambda k: reference.relabel_trajectory(k, states, episode_id, 0.9, (0,)))(
        jax.random.split(jax.random.PRNGKey(0), 200))[..., 0]  # [200, 12]: the step index of each goal
    steps = np.arange(12)
    for t in steps:
        last_of_episode = t in (5, 11)
        drawn = np.asarray(goals[:, t])
        if last_of_episode:  # no future step: only the 1e-5 diagonal is left
            assert np.all(drawn == t)
        else:
            assert np.all(drawn > t) and np.all(drawn // 6 == t // 6)
    # γ = 0.9: the next step is the most likely future goal
    assert np.mean(np.asarray(goals[:, 0]) == 1) > np.mean(np.asarray(goals[:, 0]) == 5)


def test_paper_step_runs_and_learns_nothing_nonfinite():
    paper = reference.PaperCRL(state_dim=3, goal_dim=2, action_dim=2, width=8, depth=4)
    state = paper.init(jax.random.PRNGKey(0))
    batches = {"state": jnp.ones((2, 6, 3)), "action": jnp.zeros((2, 6, 2)), "goal": jnp.ones((2, 6, 2))}
    new_state, metrics = jax.jit(paper.sgd_steps)(state, batches, jax.random.PRNGKey(1))
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(metrics))
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state["critic"], new_state["critic"])
    assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.parametrize("module", [bench_update, bench_train])
def test_bench_spells_every_network_flag_as_train_does(module):
    args = tyro.cli(module.Args, args=["--network-layout", "scan", "--norm", "rmsnorm", "--depth", "8",
                                       "--no-skip", "--matmul-precision", "highest"])
    config = bench_update.bench_agent_config(args)
    assert (config.network_layout, config.norm, config.depth, config.skip, config.matmul_precision) == (
        "scan", "rmsnorm", 8, False, "highest")
    with pytest.raises(SystemExit):
        tyro.cli(module.Args, args=["--layout", "scan"])  # the old spelling is gone
    with pytest.raises(ConfigError, match="--network-layout"):
        bench_update.Args(network_layout="pipelined").validate()
