"""Value functions trained by classification (Farebrother et al., ICML 2024, "Stop Regressing").

Instead of regressing a scalar Q(s, a) onto the TD target y with MSE, the critic outputs logits over a
fixed set of bins covering [v_min, v_max] and is trained with cross-entropy against a *target
distribution* built from y (paper Sec. 3, "Value-Based RL with Classification"; section numbers
refer to arXiv:2403.03950):

    HL-Gauss (Sec. 3.1):        the mass of N(y, σ²) inside each bin, σ = 0.75 × bin width;
    two-hot  (Sec. 3.1):        all mass on the two bin centres around y, linear weights;
    C51      (Sec. 3.1; Bellemare et al. 2017): the distributional Bellman target r + γ·Z(s', a')
                                projected onto the bin centres.

The scalar value is read back as the expectation of the predicted distribution over bin centres (Sec. 3).

Conventions, shared by every function here:
- Per-example, optax style: shapes are in each docstring, leading axes `...` are arbitrary and the
  caller reduces (e.g. `jnp.mean`) over the batch.
- A `ValueSupport` is static (Python numbers, hashable): pass it to `jax.jit` as a static argument or
  close over it. Its arrays (`edges`, `centers`) are numpy constants.
- Bins live in *bin space*: the value space itself (`transform="none"`) or symlog(value)
  (`transform="symlog"`). Targets are mapped into bin space before binning and predictions are mapped
  back to values after the expectation.
- TD targets are constants: `cross_entropy` and `mse_loss` stop gradients through the target.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from depthrl.errors import ConfigError

CRITIC_LOSSES = ("mse", "hl-gauss", "two-hot", "c51")
VALUE_TRANSFORMS = ("none", "symlog")
# The losses `value_loss` accepts: a scalar TD target. C51's target is a distribution (see `value_loss`).
SCALAR_TARGET_LOSSES = ("mse", "hl-gauss", "two-hot")

_SQRT2 = math.sqrt(2.0)


def symlog(x: jax.Array) -> jax.Array:
    """sign(x)·log(1 + |x|), elementwise. Compresses large magnitudes; exactly inverted by `symexp`."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    """sign(x)·(exp(|x|) − 1), elementwise: the inverse of `symlog` on all of ℝ."""
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def _symlog_float(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


@dataclasses.dataclass(frozen=True)
class ValueSupport:
    """A fixed categorical support: `num_bins` equal-width bins covering [v_min, v_max].

    v_min, v_max: the value range, in value space (also with `transform="symlog"`).
    num_bins:     number of bins (= logits per value); >= 2 so two-hot and C51 have two neighbours.
    transform:    "none": bins are equal-width in value space.
                  "symlog": values y are mapped by symlog(y) = sign(y)·log(1 + |y|) before binning and
                  bins are equal-width in symlog space between symlog(v_min) and symlog(v_max);
                  `expected_value` maps the expectation back with symexp, the exact inverse (symlog is
                  a strictly increasing bijection of ℝ), so clipping and ordering of values are kept.
                  Note that the expectation is taken in symlog space, so the decoded value is
                  symexp(E[symlog V]), not E[V].

    Validated on construction (`validate`), so an invalid support fails at start.
    """

    v_min: float
    v_max: float
    num_bins: int
    transform: str = "none"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> ValueSupport:
        """Raise ConfigError naming the flag at fault; returns self so it can be chained."""
        if self.transform not in VALUE_TRANSFORMS:
            raise ConfigError(
                "--value-transform", self.transform, f"choose one of {', '.join(VALUE_TRANSFORMS)}"
            )
        if isinstance(self.num_bins, bool) or not isinstance(self.num_bins, (int, np.integer)):
            raise ConfigError("--num-bins", self.num_bins, "must be an integer >= 2")
        if self.num_bins < 2:
            raise ConfigError("--num-bins", self.num_bins, "must be an integer >= 2")
        for flag, value in (("--v-min", self.v_min), ("--v-max", self.v_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(flag, value, "must be a finite number")
            if not math.isfinite(value):
                raise ConfigError(flag, value, "must be a finite number")
        if not self.v_min < self.v_max:
            raise ConfigError("--v-max", self.v_max, f"must be greater than --v-min={self.v_min!r}")
        return self

    # --- bin space ---------------------------------------------------------------------------------
    @property
    def _bin_range(self) -> tuple[float, float]:
        if self.transform == "symlog":
            return _symlog_float(float(self.v_min)), _symlog_float(float(self.v_max))
        return float(self.v_min), float(self.v_max)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges in bin space: [num_bins + 1] float32, edges[0] = v_min, edges[-1] = v_max (mapped)."""
        lo, hi = self._bin_range
        return np.linspace(lo, hi, self.num_bins + 1, dtype=np.float64).astype(np.float32)

    @property
    def centers(self) -> np.ndarray:
        """Bin centres in bin space: [num_bins] float32, the atoms the expectation is taken over."""
        lo, hi = self._bin_range
        width = (hi - lo) / self.num_bins
        return (lo + width * (np.arange(self.num_bins, dtype=np.float64) + 0.5)).astype(np.float32)

    @property
    def bin_width(self) -> float:
        """Width of every bin, in bin space."""
        lo, hi = self._bin_range
        return (hi - lo) / self.num_bins

    @property
    def center_values(self) -> np.ndarray:
        """Bin centres mapped back to value space: [num_bins] float32 (= `centers` for "none")."""
        if self.transform == "symlog":
            return np.asarray(
                np.sign(self.centers) * np.expm1(np.abs(self.centers.astype(np.float64))), dtype=np.float32
            )
        return self.centers

    def to_bin_space(self, values: jax.Array) -> jax.Array:
        """values [...] -> [...] in bin space (symlog for transform="symlog", identity otherwise)."""
        return symlog(values) if self.transform == "symlog" else values

    def from_bin_space(self, z: jax.Array) -> jax.Array:
        """Inverse of `to_bin_space`: [...] -> [...] values."""
        return symexp(z) if self.transform == "symlog" else z


def support_from_reward_range(
    r_min: float,
    r_max: float,
    gamma: float,
    num_bins: int,
    transform: str = "none",
    terminating: bool = False,
) -> ValueSupport:
    """The support [r_min/(1−γ), r_max/(1−γ)]: every discounted return of an endless episode.

    With `terminating=True` the range also covers returns of episodes that end after T >= 1 steps,
    Σ_{t<T} γ^t r_t, i.e. [min(r_min, r_min/(1−γ)), max(r_max, r_max/(1−γ))]. This matters only when
    all rewards share a sign: e.g. rewards in [1, 2] with termination give values as low as 1, far below
    r_min/(1−γ) = 100 at γ = 0.99.
    """
    if not 0.0 <= gamma < 1.0:
        raise ConfigError("--gamma", gamma, "must lie in [0, 1) to bound the discounted return")
    if not r_min <= r_max:
        raise ConfigError("--r-max", r_max, f"must be >= --r-min={r_min!r}")
    v_min, v_max = r_min / (1.0 - gamma), r_max / (1.0 - gamma)
    if terminating:
        v_min, v_max = min(r_min, v_min), max(r_max, v_max)
    return ValueSupport(v_min=v_min, v_max=v_max, num_bins=num_bins, transform=transform)


# --- targets -------------------------------------------------------------------------------------


def _as_float(y: jax.Array) -> jax.Array:
    # Targets are built in float32 at least: histogram differences lose their mass in bfloat16.
    y = jnp.asarray(y)
    return y.astype(jnp.promote_types(y.dtype, jnp.float32))


def _check_sigma_ratio(sigma_ratio: float) -> None:
    if isinstance(sigma_ratio, (int, float)) and not sigma_ratio > 0:
        raise ConfigError("--sigma-ratio", sigma_ratio, "must be > 0 (the paper uses 0.75)")


def hl_gauss_target(y: jax.Array, support: ValueSupport, sigma_ratio: float = 0.75) -> jax.Array:
    """Histogram loss with a Gaussian target (paper Sec. 3.1; Imani & White 2018).

    p_i = Φ((e_{i+1} − y)/σ) − Φ((e_i − y)/σ), σ = sigma_ratio × bin_width, e = bin edges,
    Φ(x) = (1 + erf(x/√2))/2 the standard normal CDF.

    The Gaussian's tails outside [v_min, v_max] would leave the histogram short of 1. We renormalise by
    the mass inside the support, Φ((e_B − y)/σ) − Φ((e_0 − y)/σ) (as the paper's reference code does),
    rather than folding the tail mass into the edge bins: folding would pile mass on the extreme bins
    and pull the decoded value towards the boundary. y is first clipped into [v_min, v_max] (in bin
    space), so a target beyond the support gives the same distribution as the nearest boundary.

    y:           [...] scalar targets (value space).
    sigma_ratio: σ / bin width; 0.75 is the paper's recommended default (Sec. 3.1).
    Returns [..., num_bins] probabilities summing to 1 (float32 or wider).
    """
    _check_sigma_ratio(sigma_ratio)
    edges = support.edges
    sigma = sigma_ratio * support.bin_width
    z = jnp.clip(support.to_bin_space(_as_float(y)), edges[0], edges[-1])
    # erf instead of Φ: the factor 1/2 and the +1 cancel in the differences and in the normaliser.
    cdf = jax.scipy.special.erf((jnp.asarray(edges) - z[..., None]) / (sigma * _SQRT2))
    mass = cdf[..., 1:] - cdf[..., :-1]
    inside = cdf[..., -1:] - cdf[..., :1]
    return mass / inside


def _split_between_centers(z: jax.Array, support: ValueSupport) -> jax.Array:
    """Linear interpolation of z (bin space) onto the bin centres. z [...] -> [..., num_bins].

    z is clipped to [c_0, c_{B−1}]; with position u = (z − c_0)/Δ and k = ⌊u⌋ (at most B − 2), centre k
    gets 1 − (u − k) and centre k + 1 gets u − k. Built from the fractional position rather than from
    |z − c_i|/Δ so that the two weights sum to exactly 1 in floating point.
    """
    centers, num_bins = support.centers, support.num_bins
    z = jnp.clip(z, centers[0], centers[-1])
    position = (z - centers[0]) / support.bin_width
    lower = jnp.clip(jnp.floor(position), 0, num_bins - 2)
    upper_weight = jnp.clip(position - lower, 0.0, 1.0)[..., None]
    lower_index = lower.astype(jnp.int32)
    return (
        jax.nn.one_hot(lower_index, num_bins, dtype=z.dtype) * (1.0 - upper_weight)
        + jax.nn.one_hot(lower_index + 1, num_bins, dtype=z.dtype) * upper_weight
    )


def two_hot_target(y: jax.Array, support: ValueSupport) -> jax.Array:
    """Two-hot target (paper Sec. 3.1; Schrittwieser et al. 2020).

    y (in bin space) is clipped to [c_0, c_{B−1}] (first and last bin centre) and split between its two
    neighbouring centres c_k <= y <= c_{k+1} with weights (c_{k+1} − y)/Δ and (y − c_k)/Δ, so that
    Σ_i p_i c_i = y exactly inside the clipped range.

    y: [...] scalar targets (value space).
    Returns [..., num_bins] probabilities summing to 1.
    """
    return _split_between_centers(support.to_bin_space(_as_float(y)), support)


def c51_project(
    next_probs: jax.Array, rewards: jax.Array, discounts: jax.Array, support: ValueSupport
) -> jax.Array:
    """Distributional Bellman target projected onto the support (Bellemare et al. 2017, Alg. 1).

    Each atom z_j of the next-state distribution (bin centre, value space) moves to r + γ·z_j, is
    clipped to [c_0, c_{B−1}] and its probability is split linearly between the two neighbouring
    centres:  (ΦTZ)_i = Σ_j p_j · max(0, 1 − |clip(T z_j) − c_i| / Δ).
    The atoms are the bin centres, so the extreme atoms sit half a bin inside [v_min, v_max].
    With transform="symlog" the moved atoms are symlog(r + γ·symexp(c_j)) and the split is done in
    symlog space.

    next_probs: [..., B] the target network's distribution at (s', a'), rows summing to 1.
    rewards:    [...] r.
    discounts:  [...] γ·(1 − terminated): 0 ends bootstrapping on termination (never on truncation).
    Returns [..., B] probabilities summing to 1 (the O(B²) [..., B, B] intermediate is small for
    B ≈ 100).
    """
    if next_probs.shape[-1] != support.num_bins:
        raise ValueError(f"next_probs has {next_probs.shape[-1]} bins, the support {support.num_bins}")
    atoms = jnp.asarray(support.center_values)
    rewards, discounts = _as_float(rewards), _as_float(discounts)
    moved = rewards[..., None] + discounts[..., None] * atoms  # [..., B_src]
    weights = _split_between_centers(support.to_bin_space(moved), support)  # [..., B_src, B_dst]
    return jnp.einsum("...j,...ji->...i", _as_float(next_probs), weights)


# --- losses and read-out -------------------------------------------------------------------------


def cross_entropy(logits: jax.Array, target_probs: jax.Array) -> jax.Array:
    """−Σ_i p_i log softmax(logits)_i (paper Sec. 3), target treated as a constant (stop_gradient).

    The gradient w.r.t. the logits is softmax(logits) − p: bounded, whatever the target's magnitude.

    logits:       [..., num_bins].
    target_probs: [..., num_bins] rows summing to 1.
    Returns [...].
    """
    target_probs = jax.lax.stop_gradient(target_probs)
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def expected_value(logits: jax.Array, support: ValueSupport) -> jax.Array:
    """The scalar value of a categorical prediction (paper Sec. 3): Σ_i softmax(logits)_i c_i, in bin
    space, then mapped back to value space (symexp for transform="symlog").

    logits: [..., num_bins].
    Returns [...].
    """
    probs = jax.nn.softmax(logits, axis=-1)
    return support.from_bin_space(jnp.sum(probs * jnp.asarray(support.centers), axis=-1))


def mse_loss(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """The regression baseline 0.5·(prediction − target)², target treated as a constant.

    prediction, target: [...]. Returns [...].
    """
    return 0.5 * jnp.square(prediction - jax.lax.stop_gradient(target))


def clip_range(support: ValueSupport, loss: str = "mse") -> tuple[float, float]:
    """The values (value space) a critic loss represents without clipping: [v_min, v_max] for "mse" and
    "hl-gauss" (HL-Gauss clips y to the support's edges), [c_0, c_{B−1}] for "two-hot" and "c51", whose
    targets are clipped to the first and last bin centre, half a bin inside the edges."""
    if loss in ("two-hot", "c51"):
        return float(support.center_values[0]), float(support.center_values[-1])
    return float(support.v_min), float(support.v_max)


def out_of_support_fraction(y: jax.Array, support: ValueSupport, loss: str = "mse") -> jax.Array:
    """Fraction of scalar targets strictly outside `clip_range(support, loss)`: those the loss clips.

    For "two-hot" and "c51" that includes the outer half-bins (c_{B−1}, v_max] and [v_min, c_0); for "c51"
    y is the scalar TD target r + γ·E[Z(s', a')], the mean of the distribution before its projection.
    A fraction well above 0 means the support is too narrow and the critic cannot represent the values:
    log it and warn the user. y: [...]. Returns [] float32 (mean over all elements).
    """
    y = _as_float(y)
    low, high = clip_range(support, loss)
    outside = (y < low) | (y > high)
    return jnp.mean(outside.astype(jnp.float32))


def value_loss(
    kind: str,
    prediction: jax.Array,
    target: jax.Array,
    support: ValueSupport | None,
    sigma_ratio: float = 0.75,
) -> jax.Array:
    """Critic loss against a scalar TD target y, one entry point for every `--critic-loss` but C51.

    kind:       "mse" (prediction: [...] scalars; support unused, may be None),
                "hl-gauss" or "two-hot" (prediction: [..., num_bins] logits).
    target:     [...] scalar TD targets, e.g. r + γ(1 − terminated)·V(s') (treated as constants).
    Returns [...] per-example losses.

    "c51" is not accepted: its target is a distribution, not a scalar. Build it with
    `c51_project(next_probs, rewards, discounts, support)` and train with
    `cross_entropy(logits, projected)`.
    """
    if kind == "mse":
        return mse_loss(prediction, target)
    if kind == "c51":
        raise ConfigError(
            "--critic-loss", kind, "c51 needs a distributional target: use c51_project + cross_entropy"
        )
    if kind not in SCALAR_TARGET_LOSSES:
        raise ConfigError("--critic-loss", kind, f"choose one of {', '.join(CRITIC_LOSSES)}")
    if support is None:
        raise ValueError(f"critic loss {kind!r} needs a ValueSupport")
    if prediction.shape[-1:] != (support.num_bins,) or prediction.shape[:-1] != jnp.shape(target):
        raise ValueError(
            f"{kind}: logits {prediction.shape} must be target.shape + (num_bins,) = "
            f"{jnp.shape(target) + (support.num_bins,)}"
        )
    if kind == "hl-gauss":
        target_probs = hl_gauss_target(target, support, sigma_ratio)
    else:
        target_probs = two_hot_target(target, support)
    return cross_entropy(prediction, target_probs)
