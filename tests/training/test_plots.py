"""The critic's heat-map function (training/plots.py): which states the critic is asked about."""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.envs.crawler import CrawlerMaze
from depthrl.training.plots import critic_energy_fn


def _trainer(env, q_value):
    """A trainer stub: the policy acts 0.5 in every dimension; the critic is `q_value(states, actions, goals)`."""
    agent = SimpleNamespace(
        act=lambda params, obs, key, deterministic: jnp.full((obs.shape[0], env.spec.action_dim), 0.5),
        q_value=lambda params, states, actions, goals: q_value(states, actions, goals))
    return SimpleNamespace(eval_env=env, agent=agent)


def test_crawler_heatmap_asks_about_reset_bodies_at_each_position():
    env = CrawlerMaze("u4")
    positions = np.array([[1.5, 1.5], [3.25, 2.0], [1.5, 3.75]], np.float32)
    # cos² θ + sin² θ = 1 for a real heading; a zeroed body (the old heat-map's) gives 0.
    heading_norm = critic_energy_fn(_trainer(env, lambda s, a, g: s[:, 2] ** 2 + s[:, 3] ** 2), None, (3.5, 3.5))
    np.testing.assert_allclose(heading_norm(positions), 1.0, atol=1e-5)
    # x, y are the positions; the goal and the policy's action reach the critic.
    place = critic_energy_fn(_trainer(env, lambda s, a, g: s[:, 0] + 10 * s[:, 1] + 100 * g[:, 0] + a[:, 3]),
                             None, (3.5, 1.5))
    np.testing.assert_allclose(place(positions), positions[:, 0] + 10 * positions[:, 1] + 350.5, rtol=1e-6)
    # Joint angles come from resets (|q| <= reset_angle, not all zero) and velocities are a reset's (zero).
    joints = critic_energy_fn(_trainer(env, lambda s, a, g: jnp.max(jnp.abs(s[:, 4:8]), -1)), None, (3.5, 3.5))
    assert 0.0 < float(joints(positions)[0]) <= env.reset_angle
    speeds = critic_energy_fn(_trainer(env, lambda s, a, g: jnp.sum(jnp.abs(s[:, 8:12]), -1)), None, (3.5, 3.5))
    np.testing.assert_array_equal(speeds(positions), 0.0)


def test_heatmap_energy_is_the_mean_over_bodies_and_scales_physics_cells():
    env = CrawlerMaze("u4")
    cos_heading = lambda s, a, g: s[:, 2]  # noqa: E731
    one = critic_energy_fn(_trainer(env, cos_heading), None, (3.5, 3.5), num_bodies=1)(np.zeros((1, 2)))
    many = critic_energy_fn(_trainer(env, cos_heading), None, (3.5, 3.5), num_bodies=64)(np.zeros((1, 2)))
    assert abs(float(one[0])) > 0.0  # one random heading
    assert abs(float(many[0])) < 0.25  # uniform headings: E[cos θ] = 0, the mean of 64 is near it
    # A physics maze's positions and goal are in cells; its states in metres (cell_size per cell).
    trainer = _trainer(env, lambda s, a, g: s[:, 0] + 10 * g[:, 1])
    trainer.eval_env = SimpleNamespace(env=SimpleNamespace(cell_size=4.0), spec=env.spec, reset=env.reset)
    fn = critic_energy_fn(trainer, None, (3.5, 1.5))
    np.testing.assert_allclose(fn(np.array([[1.5, 2.0]])), [4.0 * 1.5 + 10 * 4.0 * 1.5], rtol=1e-6)
    with pytest.raises(ValueError):
        critic_energy_fn(_trainer(env, cos_heading), None, (3.5, 3.5), num_bodies=0)
