"""Output heads, tanh-Gaussian sampling, and the torso + head modules that agents use: every policy
(`GaussianPolicy`, `DeterministicPolicy`, `CategoricalPolicy`), every value network (`ValueNetwork`) and CRL's
`Encoder`.

Head init: every head is one Dense with the paper's variance-scaling(1/3, fan_in, uniform) kernel and zero
bias, the same init as the torso (the paper's code uses one init throughout): kernel variance
1 / (3 fan_in), so outputs start with a standard deviation of about rms(h) / sqrt(3), O(1) for normed
features.
Heads compute in float32 whatever the torso's dtype, so losses, log-probs and logits stay accurate
under a bfloat16 torso.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from depthrl.networks.torso import NetworkConfig, ResidualTorso, bias_init, kernel_init


def _head_dense(features: int, precision: str | None, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, dtype=jnp.float32, kernel_init=kernel_init, bias_init=bias_init,
                    precision=precision, name=name)


class RepresentationHead(nn.Module):
    """Linear map to a ``dim``-dimensional representation (CRL's phi(s, a) and psi(g)): ``[..., dim]``."""

    dim: int
    precision: str | None = None  # of the matmul: NetworkConfig.precision (None: JAX's default)

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        return _head_dense(self.dim, self.precision)(h.astype(jnp.float32))


def squash_log_std(z: jax.Array, log_std_min: float, log_std_max: float) -> jax.Array:
    """Raw head output z -> log σ = min + ½ (max − min)(tanh z + 1), smooth in (min, max).

    With the defaults −5 and 2: log σ = −5 + 3.5 (tanh z + 1), −1.5 at z = 0, as in the paper's code. Unlike a
    clip to [min, max], the gradient is never 0, so a saturated unit can come back. Written with
    ½ (tanh z + 1) = sigmoid(2z), each side from its own end, so that the gradient 3.5 sech² z stays non-zero
    in float32 where tanh z rounds to ±1 (|z| > 9; the tanh form's autodiff gives exactly 0 there).
    """
    span = log_std_max - log_std_min
    return jnp.where(z < 0, log_std_min + span * jax.nn.sigmoid(2.0 * z), log_std_max - span * jax.nn.sigmoid(-2.0 * z))


class TanhGaussianHead(nn.Module):
    """``(mean, log_std)``, each ``[..., action_dim]``, of a Gaussian squashed by tanh (SAC's policy).

    log_std is the log_std layer's output squashed into ``(log_std_min, log_std_max)`` by `squash_log_std`.
    """

    action_dim: int
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    precision: str | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = h.astype(jnp.float32)
        mean = _head_dense(self.action_dim, self.precision, name="mean")(h)
        z = _head_dense(self.action_dim, self.precision, name="log_std")(h)
        return mean, squash_log_std(z, self.log_std_min, self.log_std_max)


class CategoricalValueHead(nn.Module):
    """Logits ``[..., num_bins]`` of a categorical value distribution (HL-Gauss / two-hot / C51)."""

    num_bins: int
    precision: str | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        return _head_dense(self.num_bins, self.precision)(h.astype(jnp.float32))


class ScalarHead(nn.Module):
    """One scalar per example: ``[..., width] -> [...]``."""

    precision: str | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        return _head_dense(1, self.precision)(h.astype(jnp.float32))[..., 0]


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample ``a = tanh(u)``, ``u ~ N(mean, exp(log_std))``, and its log-density.

    ``mean, log_std: [..., action_dim]`` -> ``(action [..., action_dim], log_prob [...])``.
    log p(a) = log N(u) - sum log(1 - tanh(u)^2), with the stable identity
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) (SAC, Haarnoja et al. 2018, App. C).
    """
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian_log_prob = -0.5 * jnp.square(noise) - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.tanh(pre_tanh), jnp.sum(gaussian_log_prob - log_det, axis=-1)


def tanh_gaussian_mode(mean: jax.Array) -> jax.Array:
    """Deterministic action: ``tanh(mean)`` (used for evaluation)."""
    return jnp.tanh(mean)


class Encoder(nn.Module):
    """Residual torso + linear head: ``[..., in_dim] -> [..., out_dim]`` (CRL's phi(s, a) and psi(g))."""

    config: NetworkConfig
    out_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = ResidualTorso(self.config, name="torso")(x)
        return RepresentationHead(self.out_dim, self.config.precision, name="head")(h)


class GaussianPolicy(nn.Module):
    """Residual torso + tanh-Gaussian head: ``obs [..., in_dim] -> (mean, log_std) [..., action_dim]``."""

    config: NetworkConfig
    action_dim: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = ResidualTorso(self.config, name="torso")(obs)
        return TanhGaussianHead(self.action_dim, precision=self.config.precision, name="head")(h)


class DeterministicPolicy(nn.Module):
    """Residual torso + Dense + tanh (TD3's μ): ``obs [..., in_dim] -> action [..., action_dim]`` in [−1, 1]."""

    config: NetworkConfig
    action_dim: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = ResidualTorso(self.config, name="torso")(obs).astype(jnp.float32)
        return jnp.tanh(_head_dense(self.action_dim, self.config.precision, name="head")(h))


class CategoricalPolicy(nn.Module):
    """``obs [..., obs_dim] -> logits [..., num_actions]`` (PPO); the head starts at 1/100 of the usual scale, so
    the first policy is near uniform."""

    config: NetworkConfig
    num_actions: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = ResidualTorso(self.config, name="torso")(obs).astype(jnp.float32)
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.variance_scaling(1e-4 / 3, "fan_in", "uniform"),
                        precision=self.config.precision, name="head")(h)


class ValueNetwork(nn.Module):
    """Residual torso + one linear head: values as scalars (``num_bins = 0``) or as the logits of a categorical
    value over ``num_bins`` bins (HL-Gauss / two-hot / C51).

    ``x [..., in_dim]`` -> ``[..., num_outputs]`` or ``[..., num_outputs, num_bins]`` (e.g. one Q per discrete
    action), or, with ``num_outputs=None`` (one value per example), ``[...]`` or ``[..., num_bins]``.
    """

    config: NetworkConfig
    num_outputs: int | None = None
    num_bins: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = ResidualTorso(self.config, name="torso")(x)
        outputs = 1 if self.num_outputs is None else self.num_outputs
        out = CategoricalValueHead(outputs * max(self.num_bins, 1), self.config.precision, name="head")(h)
        shape = (() if self.num_outputs is None else (outputs,)) + ((self.num_bins,) if self.num_bins else ())
        return out.reshape(out.shape[:-1] + shape)
