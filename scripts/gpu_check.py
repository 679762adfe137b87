"""The measurements of `scripts/gpu_check.sh`: one JSON line per measurement on stdout, then a verdict line.

  setup             jax version, devices, CUDA plugin, XLA preallocation and default matmul precision.
  precision         the critic's L2-energy logits (`depthrl.losses.contrastive.critic_logits`, as the CRL loss
                    computes them) on the device under the default matmul precision, against a float64 NumPy
                    reference, with φ and ψ shifted by a shared offset of norm 0, 50 and 100 (the L2 energy is
                    invariant to it; reduced-precision matmuls are not). Passes with the positives within
                    --precision-tol and every logit within 10x it.
  env_steps_per_s   env steps per second of every Table-1 task at 512 envs (a jitted scan of 100 random-action
                    steps; each task compiles in a thread while the next is traced, and runs once compiled;
                    compile_s of tasks compiled at the same time overlap).
  crl_epoch         one CRL epoch of the paper recipe (the `humanoid-d4` preset: 512 envs × 62 steps, SGD
                    steps of batch 512, width 256) on the Humanoid at depth 4, 64, 256 and 1024: compile time,
                    the time of the second epoch run, the compiled program's memory, the device's peak memory
                    and the analytic estimate (`depthrl estimate`). Depth 4 and 64 run the recipe's 800 SGD
                    steps; 256 and 1024 run 100 and 25 (their `paper_epoch_s` scales the SGD part up, an upper
                    bound since the collection is scaled with it).
  projected_hours   Humanoid at depth 4 and 64: compile + epochs of 100 M env steps × epoch time, next to the
                    paper's 1.48 h and 10.99 h (Wang et al. 2025; evaluation time not included).
  verdict           pass (every measurement ran, precision within tolerance, finite losses, peak memory
                    within the device's), fail (one of these did not hold) or incomplete (stages skipped).

Every stage runs in a child process with a time budget (a stage that would run past it is stopped, and its
remaining measurements are reported as skipped with a JSON line): its share of one overall budget
(--budget-s, default 420 s: with the install the whole check stays under 8 minutes), plus what earlier stages
left. The parent never imports jax, so the children get the whole device. `--tiny` runs the same code at CPU
sizes (few envs and steps, width 16).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

# Every Table-1 task, one per family first: if the stage runs out of time, each family was still measured.
TABLE1_ENVS = ("humanoid", "ant-u4-maze", "arm-push-easy", "humanoid-u-maze", "ant-u5-maze", "ant-big-maze",
               "ant-hardest-maze", "arm-push-hard", "arm-binpick-hard", "humanoid-big-maze")
DEPTHS = (4, 64, 256, 1024)
PAPER_SGD_STEPS = 800
SGD_STEPS = {4: 800, 64: 800, 256: 100, 1024: 25}  # the paper recipe's 800, cut for the deepest networks
PAPER_HOURS = {4: 1.48, 64: 10.99}  # Wang et al. 2025: Humanoid, 100 M env steps, one GPU
PROJECTED_STEPS = 100_000_000
# Seconds each stage may take at the default --budget-s (420); another budget scales them, and a stage also
# gets the time the stages before it left unused.
BUDGETS = {"setup": 30, "precision": 30, "envs": 120, "crl:4": 45, "crl:64": 65, "crl:256": 55, "crl:1024": 75}
TINY = dict(num_envs=4, steps=5, width=16, repr_dim=8, batch_size=16, unroll_length=10, sgd_steps=2,
            episode_length=20, buffer_size=400)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ---- the children: each prints JSON lines --------------------------------------------------------------
def _block(tree):
    import jax

    return jax.block_until_ready(tree)


def _device() -> str:
    import jax

    d = jax.devices()[0]
    return f"{d.platform}:{d.device_kind}"


def child_setup(args: argparse.Namespace) -> None:
    import importlib.metadata as md

    import jax

    plugins = {}
    for dist in md.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("jax-cuda") or name == "jaxlib":
            plugins[name] = dist.version
    emit({"measure": "setup", "jax": jax.__version__, "packages": plugins, "python": sys.version.split()[0],
          "devices": [str(d) for d in jax.devices()], "device": _device(), "tiny": args.tiny,
          "xla_python_client_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "default (true)"),
          "xla_python_client_mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "default (0.75)"),
          "default_matmul_precision": str(jax.config.jax_default_matmul_precision)})


def child_precision(args: argparse.Namespace) -> None:
    import jax
    import numpy as np

    from depthrl.losses import contrastive

    batch, dim = (64, 16) if args.tiny else (512, 64)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(batch, dim))
    near = base + 0.05 * rng.normal(size=(batch, dim))  # positives close, as a trained critic's are
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    logits_fn = jax.jit(lambda phi, psi: contrastive.critic_logits(phi, psi, "l2"))  # as the CRL loss
    for norm in (0.0, 50.0, 100.0):
        phi = (base + norm * direction).astype(np.float32)
        psi = (near + norm * direction).astype(np.float32)
        got = np.asarray(logits_fn(phi, psi), np.float64)
        diff = phi.astype(np.float64)[:, None, :] - psi.astype(np.float64)[None, :, :]
        want = -np.sqrt(np.sum(diff**2, -1))  # the same float32 inputs, in float64
        err = np.abs(got - want)
        positives = np.diag(err)
        floored = int(np.sum((got == 0.0) & (want < -1e-3)))  # distances rounded to 0: zero gradient
        emit({"measure": "precision", "energy": "l2", "offset_norm": norm, "batch": batch, "repr_dim": dim,
              "max_abs_err": float(err.max()), "mean_abs_err_positives": float(positives.mean()),
              "max_abs_err_positives": float(positives.max()), "floored_to_zero": floored,
              "tol_positives": args.precision_tol, "tol_all": 10 * args.precision_tol,
              # the positives carry the loss's signal (and equal the actor's Q): tol; off-diagonal logits are far
              # pairs whose relative error matters, 10 x tol (TF32-emulated on CPU: 5e-4 rounding, 1.7e-3 truncating)
              "ok": bool(positives.max() <= args.precision_tol and err.max() <= 10 * args.precision_tol
                         and floored == 0),
              "device": _device()})


def child_envs(args: argparse.Namespace) -> None:
    import concurrent.futures as cf

    import jax

    from depthrl.envs.registry import EnvConfig, batched_envs

    num_envs, steps = (TINY["num_envs"], TINY["steps"]) if args.tiny else (512, 100)

    def compile_both(reset, rollout):
        start = time.perf_counter()
        compiled = reset.compile(), rollout.compile()
        return compiled, time.perf_counter() - start

    pool = cf.ThreadPoolExecutor(max_workers=max(1, min(len(args.envs), (os.cpu_count() or 2) // 2)))
    pending = {}
    for name in args.envs:  # build and trace here (Python) while earlier tasks compile (XLA releases the GIL)
        start = time.perf_counter()
        env, _ = batched_envs(EnvConfig(env=name, episode_length=TINY["episode_length"] if args.tiny else None))
        action_dim = env.spec.action_dim

        def rollout(state, key, env=env, action_dim=action_dim):
            def one(state, step_key):
                action = jax.random.uniform(step_key, (num_envs, action_dim), minval=-1.0, maxval=1.0)
                state = env.step(state, action)
                return state, state.reward

            state, rewards = jax.lax.scan(one, state, jax.random.split(key, steps))
            return state, rewards.sum()

        keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
        reset = jax.jit(env.reset).lower(keys)
        lowered = jax.jit(rollout).lower(jax.eval_shape(env.reset, keys), jax.random.PRNGKey(1))
        pending[pool.submit(compile_both, reset, lowered)] = (name, keys, time.perf_counter() - start)
    for future in cf.as_completed(pending):  # each task runs (alone on the device) once compiled
        name, keys, trace_s = pending[future]
        (reset, rollout), compile_s = future.result()
        state = _block(reset(keys))
        state, _ = _block(rollout(state, jax.random.PRNGKey(1)))  # warm
        start = time.perf_counter()
        state, total = _block(rollout(state, jax.random.PRNGKey(2)))
        run_s = time.perf_counter() - start
        emit({"measure": "env_steps_per_s", "item": name, "env": name, "num_envs": num_envs, "steps": steps,
              "steps_per_s": round(num_envs * steps / run_s, 1), "run_s": round(run_s, 4),
              "build_and_trace_s": round(trace_s, 2), "compile_s": round(compile_s, 2),
              "finite": bool(math.isfinite(float(total))), "device": _device()})
    pool.shutdown()


def crl_args(depth: int, args: argparse.Namespace):
    """The paper recipe of the `humanoid-d4` preset at DEPTH (at --tiny: CPU sizes), on --crl-env."""
    import dataclasses

    from depthrl.training import presets
    from depthrl.training.registry import AGENTS
    Args = AGENTS["crl"].args

    base = presets.by_name()["humanoid-d4"]
    sgd_steps = SGD_STEPS[depth]
    env, agent, train = dataclasses.replace(base.env, env=args.crl_env), base.agent, base.train
    if args.tiny:
        sgd_steps = TINY["sgd_steps"]
        env = dataclasses.replace(env, episode_length=TINY["episode_length"])
        agent = dataclasses.replace(agent, width=TINY["width"], repr_dim=TINY["repr_dim"],
                                    batch_size=TINY["batch_size"])
        train = dataclasses.replace(train, num_envs=TINY["num_envs"], unroll_length=TINY["unroll_length"],
                                    buffer_size=TINY["buffer_size"], prefill_steps=0)
    agent = dataclasses.replace(agent, depth=depth)
    train = dataclasses.replace(train, sgd_steps_per_collect=sgd_steps)
    return Args(env=env, agent=agent, train=train, compile_cache=False, tensorboard=False, plots=False,
                progress=False), sgd_steps


def child_crl(depth: int, args: argparse.Namespace) -> None:
    import jax
    import numpy as np

    from depthrl.training import command, estimate, runner

    run, sgd_steps = crl_args(depth, args)
    command.validate_config(run)
    start = time.perf_counter()
    trainer = command.build(run)
    cost = estimate.estimate(run, trainer)
    keys = runner.seed_keys(0, 1)  # one seed, vmapped as `depthrl train` runs it
    state = _block(jax.jit(jax.vmap(trainer.init))(keys))
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    epoch = jax.jit(jax.vmap(trainer.epoch), donate_argnums=0).lower(state).compile()
    compile_s = time.perf_counter() - start
    analysis = epoch.memory_analysis()
    compiled_bytes = None
    if analysis is not None:
        compiled_bytes = int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
                             + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    start = time.perf_counter()
    state, metrics = _block(epoch(state))  # first run: the buffer gets its first rows
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = _block(epoch(state))
    epoch_s = time.perf_counter() - start
    stats = jax.devices()[0].memory_stats() or {}
    loss = float(np.asarray(metrics["critic/loss"])[0])
    train = run.train
    emit({"measure": "crl_epoch", "item": f"crl:{depth}", "env": run.env.env, "depth": depth,
          "width": run.agent.width, "batch_size": run.agent.batch_size, "num_envs": train.num_envs,
          "unroll_length": train.unroll_length, "sgd_steps": sgd_steps,
          "layout": run.agent.network(depth).resolved_layout(), "remat": run.agent.remat,
          "epoch_s": round(epoch_s, 4), "first_run_s": round(first_s, 4),
          "paper_epoch_s": round(epoch_s * PAPER_SGD_STEPS / sgd_steps, 4) if not args.tiny else round(epoch_s, 4),
          "compile_s": round(compile_s, 2), "init_s": round(init_s, 2), "critic_loss": loss,
          "finite": bool(math.isfinite(loss)), "params_m": round(cost.num_params / 1e6, 3),
          "estimate_peak_bytes": int(cost.peak_bytes), "compiled_bytes": compiled_bytes,
          "device_peak_bytes": stats.get("peak_bytes_in_use"), "device_limit_bytes": stats.get("bytes_limit"),
          "device": _device()})


def child(args: argparse.Namespace) -> int:
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # import notices of brax/MJX: keep stdout JSON only
        import jax  # noqa: F401
    stage = args.child
    if stage == "setup":
        child_setup(args)
    elif stage == "precision":
        child_precision(args)
    elif stage == "envs":
        child_envs(args)
    elif stage.startswith("crl:"):
        child_crl(int(stage.split(":")[1]), args)
    return 0


# ---- the parent: stages with budgets, projection, verdict -----------------------------------------------
def stage_items(stage: str, args: argparse.Namespace) -> list[str]:
    """The measurements a stage reports (one JSON line each; the ones missing when it stops are skipped)."""
    return list(args.envs) if stage == "envs" else [stage]


def run_stage(stage: str, args: argparse.Namespace, budget_s: float, argv: list[str]) -> list[dict]:
    """Run one stage in a child process for at most budget_s; relay its JSON lines; report what it missed."""
    items = stage_items(stage, args)
    if budget_s <= 1:
        return _skipped(stage, items, "no time left in --budget-s")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv, "--child", stage],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=budget_s)
        reason = None if proc.returncode == 0 else f"exit {proc.returncode}: {' '.join(err.split()[-40:])}"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        reason = f"stage budget of {budget_s:.0f} s reached"
    records = []
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        emit(record)
        records.append(record)
    done = {r.get("item", r.get("measure")) for r in records}
    missing = [i for i in items if i not in done and not (i == stage and records)]
    if missing:
        if reason is None:
            reason = "the child printed no line for it"
        if not reason.startswith("stage budget"):
            return records + [_error(stage, missing, reason, time.perf_counter() - start)]
        return records + _skipped(stage, missing, reason)
    return records


def _skipped(stage: str, items: list[str], reason: str) -> list[dict]:
    record = {"measure": "skipped", "stage": stage, "items": items, "reason": reason}
    emit(record)
    return [record]


def _error(stage: str, items: list[str], reason: str, seconds: float) -> dict:
    record = {"measure": "error", "stage": stage, "items": items, "reason": reason[-1500:],
              "seconds": round(seconds, 1)}
    emit(record)
    return record


def projections(records: list[dict], args: argparse.Namespace) -> list[dict]:
    """Hours of a 100 M-step Humanoid run at depth 4 and 64 from the measured epochs."""
    out = []
    for r in records:
        if r.get("measure") != "crl_epoch" or r["depth"] not in PAPER_HOURS:
            continue
        steps_per_epoch = r["num_envs"] * r["unroll_length"]
        epochs = math.ceil(PROJECTED_STEPS / steps_per_epoch)
        hours = (r["compile_s"] + epochs * r["paper_epoch_s"]) / 3600
        record = {"measure": "projected_hours", "env": r["env"], "depth": r["depth"], "env_steps": PROJECTED_STEPS,
                  "epochs": epochs, "hours": round(hours, 3), "paper_hours": PAPER_HOURS[r["depth"]],
                  "ratio_to_paper": round(hours / PAPER_HOURS[r["depth"]], 3), "tiny": args.tiny,
                  "note": "collection + SGD only (no evaluation); the paper's times are on its own GPU"}
        emit(record)
        out.append(record)
    return out


def verdict(records: list[dict], elapsed_s: float, args: argparse.Namespace) -> dict:
    failed, skipped = [], []
    for r in records:
        kind = r.get("measure")
        if kind == "skipped":
            skipped += [f"{r['stage']}:{i}" if i != r["stage"] else i for i in r["items"]]
        elif kind == "error":
            failed += [f"{r['stage']} ({r['reason'][-200:]})"]
        elif kind == "precision" and not r["ok"]:
            failed.append(f"precision at offset norm {r['offset_norm']:g}: max error {r['max_abs_err']:.2e} "
                          f"> {r['tol']:g} or {r['floored_to_zero']} distances floored to 0")
        elif kind in ("env_steps_per_s", "crl_epoch") and not r["finite"]:
            failed.append(f"{r['measure']} {r.get('item')}: non-finite result")
        elif kind == "crl_epoch" and r["device_limit_bytes"] and r["device_peak_bytes"] > r["device_limit_bytes"]:
            failed.append(f"crl depth {r['depth']}: peak memory above the device's limit")
    result = "fail" if failed else "incomplete" if skipped else "pass"
    record = {"measure": "verdict", "verdict": result, "failed": failed, "skipped": skipped,
              "measurements": sum(r.get("measure") not in ("skipped", "error") for r in records),
              "elapsed_s": round(elapsed_s, 1), "budget_s": args.budget_s, "tiny": args.tiny}
    emit(record)
    return record


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU sizes: checks the script on a machine without GPU")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="overall time budget in seconds; stages that do not fit are skipped (default 420)")
    parser.add_argument("--envs", default=",".join(TABLE1_ENVS),
                        help="comma-separated envs of the env steps/s stage (default: every Table-1 task)")
    parser.add_argument("--crl-env", default="humanoid", help="env of the CRL epochs (default humanoid)")
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                        help=f"depths of the CRL epochs, among {', '.join(map(str, DEPTHS))}")
    parser.add_argument("--stages", default="setup,precision,envs,crl",
                        help="stages to run, among setup, precision, envs, crl (default: all)")
    parser.add_argument("--precision-tol", type=float, default=1e-3,
                        help="largest absolute logit error the precision check accepts (default 1e-3)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raw = list(sys.argv[1:] if argv is None else argv)
    if "--child" in raw:
        i = raw.index("--child")
        raw = raw[:i] + raw[i + 2:]
    args.envs = [e for e in args.envs.split(",") if e]
    args.stages = [s for s in args.stages.split(",") if s]
    try:
        args.depths = [int(d) for d in args.depths.split(",") if d]
    except ValueError:
        parser.error(f"--depths {args.depths!r}: write depths as integers, e.g. 4,64")
    if bad := [d for d in args.depths if d not in SGD_STEPS]:
        parser.error(f"--depths {bad}: choose among {', '.join(map(str, DEPTHS))}")
    if bad := [s for s in args.stages if s not in ("setup", "precision", "envs", "crl")]:
        parser.error(f"--stages {bad}: choose among setup, precision, envs, crl")
    if args.budget_s <= 0:
        parser.error("--budget-s must be > 0")
    if not args.precision_tol > 0:
        parser.error("--precision-tol must be > 0")
    return args, raw


def main(argv: list[str] | None = None) -> int:
    args, raw = parse_args(argv)
    if args.child:
        return child(args)
    start = time.perf_counter()
    stages = [s for s in args.stages if s != "crl"] + ([f"crl:{d}" for d in args.depths] if "crl" in args.stages
                                                         else [])
    records: list[dict] = []
    for i, stage in enumerate(stages):  # each stage: its share of the time left (unused time rolls over)
        left = args.budget_s - (time.perf_counter() - start)
        budget = left * BUDGETS[stage] / sum(BUDGETS[s] for s in stages[i:])
        records += run_stage(stage, args, budget, raw)
    records += projections(records, args)
    result = verdict(records, time.perf_counter() - start, args)
    return {"pass": 0, "incomplete": 3, "fail": 1}[result["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
