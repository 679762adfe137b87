"""Analysis 8 — classification vs regression critics × depth (Farebrother et al. 2024, "Stop Regressing":
a value function trained by cross-entropy on a categorical distribution — HL-Gauss above all — keeps
improving as the network grows where MSE regression stalls or degrades).

Two sweeps, critic loss × depth, each aggregated on its own:
  dqn   (discrete actions)   cpu: CartPole (return, max 500), 60 k env steps      paper: MinAtar Breakout, 5 M
  sac / td3 (continuous, HER) cpu: point-mass U-maze (time at goal), 0.6 M steps  paper: Ant U4-maze, 100 M

    .venv/bin/python experiments/value_classification.py   # → experiments/out/value_classification/{dqn,sac}/
"""

from __future__ import annotations

import dataclasses

import tyro

from common import Options, run
from depthrl.errors import ConfigError

LOSSES = ("mse", "hl-gauss", "two-hot", "c51")
AGENTS = ("dqn", "sac", "td3")


@dataclasses.dataclass(frozen=True)
class ValueOptions(Options):
    agents: tuple[str, ...] = ("dqn", "sac")
    """Agents to sweep (dqn, sac, td3), one sweep each."""
    losses: tuple[str, ...] = LOSSES
    """Critic losses compared (mse = regression; hl-gauss, two-hot, c51 = classification)."""
    depths: tuple[int, ...] | None = None
    """Critic depths (default: 4 and 16 at cpu scale, 4, 16 and 64 at paper scale)."""
    actor_critic_losses: tuple[str, ...] = ("mse", "hl-gauss")
    """Critic losses of the SAC / TD3 sweeps (each cell costs minutes on a CPU; all four at paper scale)."""

    def validate(self) -> None:
        super().validate()
        for agent in self.agents:
            if agent not in AGENTS:
                raise ConfigError("--agents", agent, f"choose among {', '.join(AGENTS)}")
        for loss in (*self.losses, *self.actor_critic_losses):
            if loss not in LOSSES:
                raise ConfigError("--losses", loss, f"choose among {', '.join(LOSSES)}")


def dqn_fixed(opts: ValueOptions) -> dict:
    if not opts.paper:  # `depthrl train dqn`'s own defaults: CartPole in about a minute at depth 4
        return {"env": "cartpole", **({"total_env_steps": opts.total_env_steps} if opts.total_env_steps else {})}
    return {"env": "minatar-breakout", "width": 256, "v_min": 0.0, "v_max": 50.0, "lr": 3e-4, "batch_size": 128,
            "target_update_period": 1000, "epsilon_decay_steps": 250_000, "num_envs": 16, "unroll_length": 8,
            "sgd_steps_per_collect": 8, "total_env_steps": opts.total_env_steps or 5_000_000,
            "buffer_size": 200_000, "prefill_steps": 10_000, "eval_every": 100_000, "num_eval_envs": 32,
            "plots": False}


def main(opts: ValueOptions) -> None:
    opts.validate()
    depths = opts.depths or ((4, 16, 64) if opts.paper else (4, 16))
    for agent in opts.agents:
        if agent == "dqn":
            run("value_classification/dqn", opts, "dqn", {"critic_loss": opts.losses, "depth": depths},
                dqn_fixed(opts), metric="return", baseline="mse" if "mse" in opts.losses else None,
                title="DQN: critic loss × depth, IQM greedy episode return")
        else:
            losses = opts.losses if opts.paper else opts.actor_critic_losses
            env = "ant-u4-maze" if opts.paper else "point-maze-u"
            run(f"value_classification/{agent}", opts, agent, {"critic_loss": losses, "depth": depths},
                {"env": env, **opts.train_flags()}, baseline="mse" if "mse" in losses else None,
                title=f"{agent.upper()} + HER ({env}): critic loss × depth, IQM time at goal")


if __name__ == "__main__":
    main(tyro.cli(ValueOptions))
