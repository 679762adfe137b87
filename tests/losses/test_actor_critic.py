"""Actor and temperature losses (SAC) against hand-computed small cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.losses import actor_critic as ac


def test_actor_and_alpha_losses():
    np.testing.assert_allclose(ac.actor_loss(jnp.array([-1.0]), jnp.array([2.0]), jnp.array(0.5)), [-2.5])
    # d/dlogα of −logα·(logπ + H̄): pushes α up when entropy is below target (logπ + H̄ > 0)
    grad = jax.grad(lambda la: jnp.mean(ac.alpha_loss(la, jnp.array([1.0]), -0.5)))(0.0)
    assert grad == pytest.approx(-0.5)
