"""Residual networks scaled in depth: the torso (``torso``), output heads and torso + head modules
(``heads``), and cheap jittable diagnostics (``diagnostics``)."""

from depthrl.networks.heads import (
    CategoricalPolicy,
    CategoricalValueHead,
    DeterministicPolicy,
    Encoder,
    GaussianPolicy,
    RepresentationHead,
    ScalarHead,
    TanhGaussianHead,
    ValueNetwork,
    sample_tanh_gaussian,
    tanh_gaussian_mode,
)
from depthrl.networks.torso import (
    NetworkConfig,
    NetworkFlags,
    ResidualBlock,
    ResidualTorso,
    check_depth,
    stack_block_params,
    unstack_block_params,
)

__all__ = [
    "CategoricalPolicy",
    "CategoricalValueHead",
    "DeterministicPolicy",
    "Encoder",
    "GaussianPolicy",
    "NetworkConfig",
    "NetworkFlags",
    "RepresentationHead",
    "ResidualBlock",
    "ResidualTorso",
    "ScalarHead",
    "TanhGaussianHead",
    "ValueNetwork",
    "check_depth",
    "sample_tanh_gaussian",
    "stack_block_params",
    "tanh_gaussian_mode",
    "unstack_block_params",
]
