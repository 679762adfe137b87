"""depthrl: scaling deep reinforcement learning in depth (contrastive RL, classification critics)."""

__version__ = "0.1.0"
