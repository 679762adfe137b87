"""Commands around training: presets, estimate, eval, render, compare, doctor."""
