"""Benchmark: does checkpointing a large replay buffer block the training loop?

Trains CRL epochs (the runner's own compiled, donated epoch program) with a replay buffer of --buffer-mib
MiB and checkpoints every --every epochs in three modes, printing one JSON line per mode:

  none   no checkpoints (the baseline);
  sync   `checkpoint.save` on the training thread: host copy, write, SHA-256 of every file, rename (what the
         runner did before checkpoints moved off the training thread);
  async  `checkpoint.AsyncCheckpointer.save` (what the runner does): the host copy on the training thread,
         the rest on a background thread, waited for before the next save and at the end.

Per mode: median seconds of an epoch without a save (all, and those after the first save, which may run next
to a background write), mean seconds the save call holds the training thread, mean seconds of an epoch
iteration that saves (the save call included), the loop's total seconds, the final wait (async: the last
write) and the checkpoint's size. Choose --every so that a write fits between two saves (a save waits for
the previous write), as a real run's --eval-every does: minutes apart.

    python scripts/bench_checkpoint.py                       # 512 MiB buffer, 24 epochs, a save every 8
    python scripts/bench_checkpoint.py --buffer-mib 64 --epochs 4   # a quick one
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# One transition of the point-mass maze in the trajectory buffer: state (4) + action (2) float32.
BYTES_PER_TRANSITION = (4 + 2) * 4


def build(buffer_mib: int, num_envs: int, depth: int, width: int, batch: int, sgd_steps: int):
    from depthrl.agents.crl import CRLConfig
    from depthrl.training.registry import AGENTS
    Args = AGENTS["crl"].args
    from depthrl.envs.registry import EnvConfig
    from depthrl.training import command
    from depthrl.training.loop import TrainConfig

    buffer_size = buffer_mib * 2**20 // BYTES_PER_TRANSITION
    args = Args(env=EnvConfig(env="point-maze-u"),
                agent=CRLConfig(depth=depth, width=width, batch_size=batch),
                train=TrainConfig(num_envs=num_envs, unroll_length=50, sgd_steps_per_collect=sgd_steps,
                                  buffer_size=buffer_size, num_eval_envs=8))
    return command.build(args)


def full_buffer(state):
    """`state` with its replay buffer full of random transitions: a checkpoint of zeros would compress to
    almost nothing, one of a trained run's buffer does not."""
    import jax
    import jax.numpy as jnp

    rows_per_env = next(iter(state.buffer.data.values())).shape[1]  # [seeds, rows, envs, ...]
    leaves, treedef = jax.tree.flatten(state.buffer)
    leaves = [jax.random.normal(jax.random.PRNGKey(i), x.shape, x.dtype) if jnp.issubdtype(x.dtype, jnp.floating)
              else jnp.full_like(x, rows_per_env)  # total_rows: every row written
              for i, x in enumerate(leaves)]
    return state.replace(buffer=jax.tree.unflatten(treedef, leaves))


def run_mode(mode: str, trainer, epoch_fn, epochs: int, every: int, directory: Path) -> dict:
    import jax

    from depthrl.training import checkpoint as ckpt
    from depthrl.training import runner

    keys = runner.seed_keys(0, 1)
    state = full_buffer(jax.jit(jax.vmap(trainer.init))(keys))
    state, _ = epoch_fn(state)  # one epoch outside the timing (first-call overheads)
    jax.block_until_ready(state)
    shutil.rmtree(directory, ignore_errors=True)
    saver = ckpt.AsyncCheckpointer(directory, keep=2, resume_hint="--resume RUN") if mode == "async" else None
    plain, after, saves, saving, waits, copies = [], [], [], [], [], []
    t_loop = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        state, metrics = epoch_fn(state)
        jax.device_get(metrics)  # the runner reads the metrics every epoch: this waits for the epoch
        t_save = time.perf_counter()
        if epoch % every == 0 and mode == "sync":
            ckpt.save(directory, epoch, state, keep=2)
        elif epoch % every == 0 and mode == "async":
            saver.save(epoch, state)
            waits.append(saver.wait_s)
            copies.append(saver.snapshot_s)
        if epoch % every == 0 and mode != "none":
            saves.append(time.perf_counter() - t_save)
            saving.append(time.perf_counter() - t)
        elif mode != "none" and epoch > every:
            after.append(time.perf_counter() - t)  # epochs that may run next to a background write
        else:
            plain.append(time.perf_counter() - t)
    t_wait = time.perf_counter()
    if saver is not None:
        saver.close()
    wait_s = time.perf_counter() - t_wait
    loop_s = time.perf_counter() - t_loop
    newest = ckpt.list_checkpoints(directory)[-1] if mode != "none" else None
    size = sum(p.stat().st_size for p in newest.rglob("*") if p.is_file()) if newest else 0
    shutil.rmtree(directory, ignore_errors=True)
    return {"mode": mode, "epochs": epochs, "checkpoint_every": every,
            "epoch_s_median": statistics.median(plain + after),
            "epoch_s_median_after_first_save": statistics.median(after) if after else None,
            "save_call_s_mean": statistics.mean(saves) if saves else None,
            "saving_epoch_s_mean": statistics.mean(saving) if saving else None,
            "save_wait_s_mean": statistics.mean(waits) if waits else None,  # async: held by the previous write
            "save_copy_s_mean": statistics.mean(copies) if copies else None,  # async: the host snapshot
            "loop_s": loop_s, "final_wait_s": wait_s, "checkpoint_mib": size / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffer-mib", type=int, default=512, help="replay buffer size in MiB")
    parser.add_argument("--epochs", type=int, default=24, help="timed epochs per mode")
    parser.add_argument("--every", type=int, default=8, help="checkpoint every this many epochs")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sgd-steps", type=int, default=16, help="SGD steps per epoch")
    parser.add_argument("--modes", default="none,sync,async")
    parser.add_argument("--work-dir", default=None, help="where checkpoints are written (default: a temp dir)")
    args = parser.parse_args()

    import jax

    from depthrl.training import checkpoint as ckpt
    from depthrl.training import runner

    trainer = build(args.buffer_mib, args.num_envs, args.depth, args.width, args.batch_size, args.sgd_steps)
    keys = runner.seed_keys(0, 1)
    abstract = runner.abstract_state(trainer, keys)
    t = time.perf_counter()
    epoch_fn, _, _ = runner.compile_programs(trainer, abstract)
    compile_s = time.perf_counter() - t
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_checkpoint_"))
    common = {"bench": "checkpoint", "buffer_mib": ckpt.nbytes(abstract.buffer) / 2**20,
              "state_mib": ckpt.nbytes(abstract) / 2**20, "num_envs": args.num_envs, "depth": args.depth,
              "width": args.width, "batch_size": args.batch_size, "sgd_steps": args.sgd_steps,
              "compile_s": compile_s, "device": f"{jax.devices()[0].platform}", "cpus": os.cpu_count()}
    for mode in args.modes.split(","):
        result = run_mode(mode, trainer, epoch_fn, args.epochs, args.every, work / mode)
        print(json.dumps({**common, **result, "load_avg_1m": os.getloadavg()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
