"""train crl-pair: the collector acts during training, the learner is evaluated, both learn from every batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.agents.crl_pair import CollectorLearner, PairConfig
from depthrl.envs.registry import make_envs
from depthrl.errors import ConfigError
from tiny_runs import tiny_env


@pytest.fixture(scope="module")
def pair():
    env, _ = make_envs(tiny_env())
    agent = CollectorLearner(PairConfig(depth=4, collector_depth=8, width=16, repr_dim=8, batch_size=16), env.spec)
    return agent, agent.init(jax.random.PRNGKey(0)), env.spec


def _num_params(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def test_collector_and_learner_have_their_own_depths(pair):
    agent, state, _ = pair
    assert agent.collector.config.depth == 8 and agent.learner.config.depth == 4
    assert _num_params(state.collector.params.actor) > _num_params(state.learner.params.actor)


def test_training_actions_come_from_the_collector_and_evaluation_from_the_learner(pair):
    agent, state, spec = pair
    obs = jax.random.uniform(jax.random.PRNGKey(1), (5, spec.state_dim + spec.goal_dim))
    key = jax.random.PRNGKey(2)
    params = state.params
    np.testing.assert_array_equal(agent.act(params, obs, key, deterministic=False),
                                  agent.collector.act(params.collector, obs, key, deterministic=False))
    np.testing.assert_array_equal(agent.act(params, obs, key, deterministic=True),
                                  agent.learner.act(params.learner, obs, key, deterministic=True))
    assert not np.allclose(agent.act(params, obs, key, deterministic=True),
                           agent.collector.act(params.collector, obs, key, deterministic=True))


def test_one_update_trains_both_on_the_same_batch(pair):
    agent, state, spec = pair
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    batch = {"state": jax.random.uniform(keys[0], (16, spec.state_dim)),
             "action": jax.random.uniform(keys[1], (16, spec.action_dim), minval=-1, maxval=1),
             "next_state": jax.random.uniform(keys[2], (16, spec.state_dim)),
             "goal": jax.random.uniform(keys[3], (16, spec.goal_dim))}
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(4))
    assert "critic/loss" in metrics and "collector/critic/loss" in metrics
    for role in ("collector", "learner"):
        before, after = getattr(state, role).params.sa_encoder, getattr(new, role).params.sa_encoder
        delta = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), before, after)
        assert max(float(d) for d in jax.tree.leaves(delta)) > 0


def test_collector_depth_is_validated():
    with pytest.raises(ConfigError) as err:
        PairConfig(collector_depth=6).validate()
    assert err.value.flag == "--collector-depth"
