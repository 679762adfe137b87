"""The measurements of `scripts/gpu_check.sh`: one JSON line per measurement on stdout.

  env_steps_per_s  brax env steps per second (jit of a scan over steps, batched envs, random actions)
                   for ant and humanoid (the paper's spring pipeline) at --num-envs envs.
  crl_epoch_s      one CRL training epoch (collect 512 envs x 62 env steps, then 50 SGD steps at batch 512,
                   width 256) at depth 4, 64 and 256, scan layout and remat, on the Ant: compile time and
                   the steady-state time of one epoch (the fastest of 3).

--tiny runs the same code at CPU sizes (a few envs and steps, width 16) to check the script without a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def block(tree):
    import jax

    return jax.tree.map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def env_steps_per_s(name: str, num_envs: int, steps: int, device: str) -> None:
    import jax

    from depthrl.envs.registry import EnvConfig, batched_envs

    env, _ = batched_envs(EnvConfig(env=name))
    spec = env.spec

    @jax.jit
    def rollout(state, key):
        def one(state, step_key):
            action = jax.random.uniform(step_key, (num_envs, spec.action_dim), minval=-1.0, maxval=1.0)
            state = env.step(state, action)
            return state, state.reward

        state, rewards = jax.lax.scan(one, state, jax.random.split(key, steps))
        return state, rewards.sum()

    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    start = time.perf_counter()
    state = block(jax.jit(env.reset)(keys))
    state, _ = block(rollout(state, jax.random.PRNGKey(1)))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    state, _ = block(rollout(state, jax.random.PRNGKey(2)))
    run_s = time.perf_counter() - start
    emit({"measure": "env_steps_per_s", "env": name, "backend": "spring", "num_envs": num_envs, "steps": steps,
          "steps_per_s": round(num_envs * steps / run_s, 1), "run_s": round(run_s, 3),
          "compile_s": round(compile_s, 2), "device": device})


def crl_epoch_s(depth: int, args: argparse.Namespace, device: str) -> None:
    import jax

    from depthrl.agents.crl import CRLConfig
    from depthrl.envs.registry import EnvConfig
    from depthrl.training import command, runner
    from depthrl.training.loop import TrainConfig
    from depthrl.training.train_cli import Args

    run = Args(env=EnvConfig(env="ant", episode_length=args.episode_length),
               agent=CRLConfig(depth=depth, width=args.width, batch_size=args.batch_size, network_layout="scan",
                               remat=True),
               train=TrainConfig(num_envs=args.num_envs_train, unroll_length=args.unroll_length,
                                 sgd_steps_per_collect=args.sgd_steps, buffer_size=args.buffer_size),
               compile_cache=False)
    command.validate_config(run)
    trainer = command.build(run)
    keys = runner.seed_keys(0, 1)  # one seed, as `depthrl train` vmaps seeds
    start = time.perf_counter()
    state = block(jax.jit(jax.vmap(trainer.init))(keys))
    init_s = time.perf_counter() - start
    epoch = jax.jit(jax.vmap(trainer.epoch), donate_argnums=0)
    start = time.perf_counter()
    state, _ = block(epoch(state))
    first_s = time.perf_counter() - start
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        state, metrics = block(epoch(state))
        times.append(time.perf_counter() - start)
    epoch_s = min(times)
    loss = float(metrics["critic/loss"][0])
    emit({"measure": "crl_epoch_s", "env": "ant", "depth": depth, "width": args.width, "layout": "scan",
          "remat": True, "batch_size": args.batch_size, "num_envs": args.num_envs_train,
          "unroll_length": args.unroll_length, "sgd_steps": args.sgd_steps, "epoch_s": round(epoch_s, 4),
          "compile_s": round(first_s - epoch_s, 2),
          "init_s": round(init_s, 2), "critic_loss": round(loss, 4), "device": device})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU-sized run that checks the script itself")
    parser.add_argument("--skip-envs", action="store_true", help="skip the env steps/s measurements")
    parser.add_argument("--skip-crl", action="store_true", help="skip the CRL epoch measurements")
    args = parser.parse_args()
    tiny = args.tiny
    args.num_envs, args.steps = (4, 5) if tiny else (1024, 200)
    args.depths = (4, 64, 256)
    args.width = 16 if tiny else 256
    args.batch_size = 16 if tiny else 512
    args.num_envs_train, args.unroll_length = (4, 10) if tiny else (512, 62)
    args.sgd_steps = 2 if tiny else 50
    args.episode_length = 20 if tiny else 1000
    args.buffer_size = 4 * 40 if tiny else 512 * 2000
    args.epochs = 1 if tiny else 3

    import jax

    with contextlib.redirect_stdout(sys.stderr):  # mujoco.mjx prints import notices: keep stdout JSON only
        import brax  # noqa: F401
        from mujoco import mjx  # noqa: F401
    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    emit({"measure": "setup", "jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "device": device,
          "tiny": tiny})
    if not args.skip_envs:
        for name in ("ant", "humanoid"):
            env_steps_per_s(name, args.num_envs, args.steps, device)
    if not args.skip_crl:
        for depth in args.depths:
            crl_epoch_s(depth, args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
