"""The optimizer step every agent (and the network benchmark) takes: one function, so the update rule reads the
same everywhere."""

from __future__ import annotations

from typing import Any

import optax


def optimizer_step(optimizer: optax.GradientTransformation, grads: Any, opt_state: Any,
                   params: Any) -> tuple[Any, Any]:
    """(new params, new optimizer state) after one step of `optimizer` on `grads` (pytrees shaped as params)."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
