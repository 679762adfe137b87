"""SAC and TD3 (agents/sac.py, agents/td3.py, agents/critics.py): known values on probe envs for every
critic loss, hand-computed TD pieces, TD3's delay and noise, flags, and HER learning on a small maze."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.agents import critics
from depthrl.agents.sac import SAC, SACConfig
from depthrl.agents.td3 import TD3, TD3Config
from depthrl.cli import main as cli_main
from depthrl.envs import probes
from depthrl.envs.base import EnvSpec
from depthrl.envs.registry import EnvConfig
from depthrl.errors import ConfigError
from depthrl.training import command, runner
from depthrl.training.command import validate
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS
from tiny_runs import OPTIMISED, TINY_ROOM, compile_runs_optimised

GAMMA = 0.8  # probes: far enough from 1 that V(s0) = γ of the two-step chain is told apart from 1

# --- probes: one agent learns all four at once ------------------------------------------------------
# Every probe (continuous actions) is one block of a combined task: state = (probe obs padded to 2 dims,
# one-hot probe id). The id block makes the four Q functions one function, so each agent × critic loss
# compiles one program; padding with zeros changes no known value.
PROBES = (probes.OneStepReward(continuous=True), probes.TwoStepChain(GAMMA, continuous=True),
          probes.ActionDependentReward(continuous=True), probes.ObsDependentReward(continuous=True))
# The observations of each probe whose values are checked (unpadded).
PROBE_OBS = ([[1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0]], [[-1.0], [1.0]])
PROBE_SPEC = EnvSpec(name="probes", obs_dim=2 + len(PROBES), action_dim=1, state_dim=2 + len(PROBES),
                     goal_indices=(), episode_length=2)
ACTION_GRID = jnp.linspace(-0.9, 0.9, 7)[:, None]
Q_TOLERANCE = 0.1  # max |Q − Q*| over the probes' observations × ACTION_GRID (values span [−1.96, 1])
ACTION_TOLERANCE = 0.1  # |μ(s) − 0.5| on the action-dependent probe


def _probe_state(probe_index: int, obs: jax.Array) -> jax.Array:
    """[N, d] probe obs -> [N, 2 + num_probes]: obs padded to 2, then the probe's one-hot id."""
    padded = jnp.pad(obs, ((0, 0), (0, 2 - obs.shape[-1])))
    one_hot = jnp.broadcast_to(jax.nn.one_hot(probe_index, len(PROBES)), (obs.shape[0], len(PROBES)))
    return jnp.concatenate([padded, one_hot], -1)


@functools.cache
def probe_transitions(seed: int = 0, num_envs: int = 64, steps: int = 8) -> dict[str, jax.Array]:
    """(state, action, reward, next_state, terminal) of every probe under uniform random actions, by
    running the envs themselves (their auto-reset makes next_state of a terminal step the next episode's
    first obs, which the terminal flag masks out). Cached: every probe test trains on the same data."""

    @jax.jit
    def collect(key):
        out = []
        for i, (env, env_key) in enumerate(zip(PROBES, jax.random.split(key, len(PROBES)), strict=True)):
            reset_key, action_key = jax.random.split(env_key)
            state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

            def one_step(state, k, env=env, i=i):
                action = jax.random.uniform(k, (num_envs, 1), minval=-1.0, maxval=1.0)
                nxt = jax.vmap(env.step)(state, action)
                return nxt, {"state": _probe_state(i, state.obs), "action": action, "reward": nxt.reward,
                             "next_state": _probe_state(i, nxt.obs),
                             "terminal": nxt.done * (1 - nxt.info["truncated"])}

            _, data = jax.lax.scan(one_step, state, jax.random.split(action_key, steps))
            out.append(jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), data))
        return jax.tree.map(lambda *x: jnp.concatenate(x), *out)

    return collect(jax.random.PRNGKey(seed))


@functools.cache
def probe_eval_points() -> tuple[jax.Array, jax.Array, jax.Array, list[str]]:
    """Every checked (state, action) of the probes and its known Q*: states [P, S], actions [P, 1], Q* [P]."""
    states, actions, known, names = [], [], [], []
    for i, (env, observations) in enumerate(zip(PROBES, PROBE_OBS, strict=True)):
        for obs in observations:
            obs = jnp.asarray(obs)
            states.append(_probe_state(i, jnp.broadcast_to(obs, (ACTION_GRID.shape[0], obs.shape[0]))))
            actions.append(ACTION_GRID)
            known.append(jax.vmap(lambda a, obs=obs, env=env: env.known_q(obs, a))(ACTION_GRID))
            names += [f"{type(env).__name__}{obs.tolist()} a={a:.1f}" for a in np.asarray(ACTION_GRID[:, 0])]
    return jnp.concatenate(states), jnp.concatenate(actions), jnp.concatenate(known), names


def train_on_transitions(agent, data: dict[str, jax.Array], key: jax.Array, steps: int):
    """`steps` agent updates on uniform minibatches of fixed transitions (goal_dim 0). -> (state, last metrics)."""
    size = data["state"].shape[0]
    batch_size = agent.config.batch_size

    def one_update(agent_state, k):
        index_key, update_key = jax.random.split(k)
        batch = jax.tree.map(lambda x: x[jax.random.randint(index_key, (batch_size,), 0, size)], data)
        return agent.update(agent_state, {**batch, "goal": jnp.zeros((batch_size, 0))}, update_key)

    init_key, key = jax.random.split(key)
    state, metrics = jax.lax.scan(one_update, agent.init(init_key), jax.random.split(key, steps))
    return state, jax.tree.map(lambda m: m[-1], metrics)


def _probe_agent(kind: str, critic_loss: str):
    common = dict(depth=4, width=32, batch_size=64, discount=GAMMA, critic_lr=1e-3, actor_lr=1e-3, tau=0.05,
                  critic_loss=critic_loss, v_min=-3.0, v_max=3.0)
    if critic_loss != "mse":
        common["num_bins"] = 51
    if kind == "sac":
        # A small α keeps the soft-value bias γ·α·H(π) of the two-step chain far below the tolerance.
        return SAC(SACConfig(init_alpha=0.01, **common), PROBE_SPEC)
    return TD3(TD3Config(**common), PROBE_SPEC)


# Both agents and every critic head run by default (SAC: mse, c51; TD3: hl-gauss); two-hot differs from
# hl-gauss only in the target histogram (tests/losses), and the other pairs compile the same TwinCritic
# code under the other agent: those five are marked slow (about 12 s of CPU each, mostly compiling).
_FAST = {("sac", "mse"), ("sac", "c51"), ("td3", "hl-gauss")}
PROBE_CASES = [pytest.param(kind, loss, marks=() if (kind, loss) in _FAST else pytest.mark.slow)
               for kind in ("sac", "td3") for loss in ("mse", "hl-gauss", "two-hot", "c51")]


@pytest.mark.parametrize("kind,critic_loss", PROBE_CASES)
def test_probe_values_are_learned(kind, critic_loss):
    """Q(s, a) within Q_TOLERANCE of the known Q* of the one-step, two-step (bootstrapping through s1,
    no bootstrap at the end), action-dependent and observation-dependent probes, and the policy picks the
    best action 0.5 of the action-dependent probe."""
    agent = _probe_agent(kind, critic_loss)
    data = probe_transitions()
    states, actions, known, names = probe_eval_points()
    best_action_state = _probe_state(2, jnp.ones((1, 1)))  # the action-dependent probe

    # 2000 SGD steps in one program: its run time outweighs its compile time, so XLA's default code generation
    # (the suite compiles at level 0: 61 s of CPU for the three cases instead of 52 s, 2-core CPU).
    @functools.partial(jax.jit, compiler_options=OPTIMISED)
    def train_and_read(key):
        state, metrics = train_on_transitions(agent, data, key, 2000)
        q = agent.q_value(state.params, states, actions, jnp.zeros((states.shape[0], 0)))
        best = agent.act(state.params, best_action_state, key, deterministic=True)
        return q, best[0, 0], metrics

    q, best, metrics = train_and_read(jax.random.PRNGKey(1))
    errors = np.abs(np.asarray(q - known))
    assert errors.max() < Q_TOLERANCE, {names[i]: round(float(errors[i]), 3) for i in np.argsort(-errors)[:5]}
    assert abs(float(best) - 0.5) < ACTION_TOLERANCE, float(best)
    assert float(metrics["critic/out_of_support"]) == 0.0  # every target lies in [−3, 3]


# --- TD pieces by hand -----------------------------------------------------------------------------
MAZE_SPEC = EnvSpec(name="m", obs_dim=6, action_dim=2, state_dim=4, goal_indices=(0, 1), episode_length=10,
                    success_radius=0.5)


def test_her_reward_is_one_strictly_within_the_success_radius_and_maze_always_bootstraps():
    next_state = jnp.array([[1.0, 1.0, 9.0, 9.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    goal = jnp.array([[1.3, 1.3], [1.5, 1.0], [3.0, 3.0]])  # distances 0.42 (velocities ignored), 0.5, far
    batch = {"next_state": next_state, "goal": goal}
    reward, discount = critics.reward_and_discount(batch, MAZE_SPEC, 0.9)
    np.testing.assert_array_equal(reward, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(discount, [0.9, 0.9, 0.9])
    reward, discount = critics.reward_and_discount({"reward": jnp.array([2.0, 3.0]),
                                                    "terminal": jnp.array([1.0, 0.0])}, MAZE_SPEC, 0.9)
    np.testing.assert_allclose(reward, [2.0, 3.0])
    np.testing.assert_allclose(discount, [0.0, 0.9])
    with pytest.raises(ValueError, match="reward"):
        critics.reward_and_discount({"next_state": jnp.zeros((1, 2)), "goal": jnp.zeros((1, 0))},
                                    PROBE_SPEC, 0.9)


def test_polyak_and_masked_select():
    target, online = {"w": jnp.array([0.0, 10.0])}, {"w": jnp.array([1.0, 0.0])}
    np.testing.assert_allclose(critics.polyak(target, online, 0.1)["w"], [0.1, 9.0])
    np.testing.assert_allclose(critics.select_tree(jnp.bool_(False), online, target)["w"], [0.0, 10.0])


def _twin(loss: str) -> critics.TwinCritic:
    config = SACConfig(depth=4, width=8, critic_loss=loss, v_min=0.0, v_max=4.0,
                       num_bins=5 if loss != "mse" else 101)
    return config.twin_critic()


def test_td_target_uses_the_smaller_twin_reward_discount_and_bonus():
    """y = r + d·(min_i Q̄_i + bonus); out_of_support counts targets outside [v_min, v_max]."""
    twin = _twin("mse")
    params = jax.jit(twin.init, static_argnums=1)(jax.random.PRNGKey(0), 3)
    target_q = jnp.array([[1.0, 2.0, 3.0], [2.0, 1.5, 5.0]])  # [2, B]
    reward, discount, bonus = jnp.array([0.0, 1.0, 1.0]), jnp.array([0.5, 0.5, 1.0]), jnp.array([0.2, 0.0, 1.0])
    _, aux = jax.jit(twin.td_loss)(params, jnp.zeros((3, 3)), target_q, reward, discount, bonus)
    expected = np.array([0.5 * 1.2, 1.0 + 0.5 * 1.5, 1.0 + 3.0 + 1.0])  # [0.6, 1.75, 5.0]
    np.testing.assert_allclose(aux["critic/td_target"], expected.mean(), rtol=1e-6)
    np.testing.assert_allclose(aux["critic/out_of_support"], 1 / 3)  # 5.0 > v_max = 4


def test_c51_target_projects_the_smaller_twins_distribution_shifted_by_the_bonus():
    """C51: the target twin with the smaller expected value supplies the distribution; r + d·(z + bonus).

    Bins of [0, 4] with 5 bins: centres 0.4, 1.2, 2.0, 2.8, 3.6. Twin 0 puts all mass on 2.8, twin 1 on 1.2;
    with r = 0.3, d = 0.5, bonus = 0.2: atom 1.2 -> 0.3 + 0.5·(1.2 + 0.2) = 1.0, split 0.25 / 0.75 between
    0.4 and 1.2.
    """
    twin = _twin("c51")
    big = 30.0
    target_logits = jnp.full((2, 1, 5), -big).at[0, 0, 3].set(big).at[1, 0, 1].set(big)
    projected = np.array([0.25, 0.75, 0.0, 0.0, 0.0])
    # The loss of any critic is then its cross-entropy against that hand-projected target, summed over twins.
    params = jax.jit(twin.init, static_argnums=1)(jax.random.PRNGKey(0), 3)
    x = jnp.zeros((1, 3))
    loss, aux = jax.jit(twin.td_loss)(params, x, target_logits, jnp.array([0.3]), jnp.array([0.5]), jnp.array([0.2]))
    logits = jax.jit(twin.outputs)(params, x)  # [2, 1, 5]
    expected = -np.sum(projected * np.asarray(jax.nn.log_softmax(logits, -1)), -1).sum()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(aux["critic/td_target"], 0.3 + 0.5 * (1.2 + 0.2), rtol=1e-4)


# --- TD3 specifics ---------------------------------------------------------------------------------
def test_td3_delays_actor_and_target_updates_and_adds_exploration_noise():
    config = TD3Config(depth=4, width=16, batch_size=8, policy_delay=3, exploration_noise=0.1, tau=0.5)
    agent = TD3(config, MAZE_SPEC)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 5)
    batch = {"state": jax.random.normal(keys[0], (8, 4)), "action": jax.random.uniform(keys[1], (8, 2), minval=-1),
             "next_state": jax.random.normal(keys[2], (8, 4)), "goal": jax.random.normal(keys[3], (8, 2))}
    update = jax.jit(agent.update)
    leaf = lambda tree: np.asarray(jax.tree.leaves(tree)[0])
    changed = []
    for step in range(4):
        new, metrics = update(state, batch, jax.random.fold_in(keys[4], step))
        changed.append((not np.array_equal(leaf(new.params.actor), leaf(state.params.actor)),
                        not np.array_equal(leaf(new.target_actor), leaf(state.target_actor)),
                        not np.array_equal(leaf(new.target_critic), leaf(state.target_critic)),
                        not np.array_equal(leaf(new.params.critic), leaf(state.params.critic))))
        assert float(metrics["actor/updated"]) == float(step % 3 == 0)
        state = new
    # steps 0 and 3 move actor and targets; every step moves the critics
    assert changed == [(True, True, True, True), (False, False, False, True), (False, False, False, True),
                       (True, True, True, True)]

    obs = jnp.zeros((4096, 6))
    act = jax.jit(agent.act, static_argnums=3)
    deterministic = act(state.params, obs, jax.random.PRNGKey(2), True)
    noisy = act(state.params, obs, jax.random.PRNGKey(2), False)
    inside = np.abs(np.asarray(deterministic)) < 0.6  # away from the clip at ±1
    spread = np.std(np.asarray(noisy - deterministic)[inside])
    assert 0.09 < spread < 0.11, spread
    assert float(jnp.max(jnp.abs(noisy))) <= 1.0


# --- flags ---------------------------------------------------------------------------------------
def test_default_support_covers_the_returns_of_rewards_in_zero_one():
    support = SACConfig(discount=0.9, critic_loss="hl-gauss").support()
    assert (support.v_min, support.v_max, support.num_bins) == (0.0, pytest.approx(10.0), 101)
    assert SACConfig(critic_loss="c51", v_min=-1.0).support().v_min == -1.0


def _sac_args(**agent):
    Args = AGENTS["sac"].args

    return Args(env=EnvConfig(env="point-maze", layout=TINY_ROOM), agent=SACConfig(**agent), progress=False)


def _td3_args(**agent):
    Args = AGENTS["td3"].args

    return Args(env=EnvConfig(env="point-maze", layout=TINY_ROOM), agent=TD3Config(**agent), progress=False)


@pytest.mark.parametrize("make,field,value,flag", [
    (_sac_args, "critic_loss", "huber", "--critic-loss"),
    (_sac_args, "value_transform", "log", "--value-transform"),
    (_td3_args, "num_bins", 1, "--num-bins"),
    (_sac_args, "v_max", -1.0, "--v-max"),  # below the default v_min = 0
    (_sac_args, "v_min", 500.0, "--v-min"),  # above the default v_max = 100
    (_sac_args, "sigma_ratio", 0.0, "--sigma-ratio"),
    (_sac_args, "tau", 0.0, "--tau"),
    (_sac_args, "tau", 1.5, "--tau"),
    (_sac_args, "discount", 1.0, "--discount"),
    (_sac_args, "depth", 6, "--depth"),
    (_td3_args, "critic_depth", 5, "--critic-depth"),
    (_sac_args, "alpha_lr", 0.0, "--alpha-lr"),
    (_sac_args, "init_alpha", -0.1, "--init-alpha"),
    (_td3_args, "policy_delay", 0, "--policy-delay"),
    (_td3_args, "policy_noise", -0.2, "--policy-noise"),
    (_td3_args, "noise_clip", -1.0, "--noise-clip"),
    (_td3_args, "exploration_noise", -0.1, "--exploration-noise"),
])
def test_invalid_value_names_its_flag(make, field, value, flag):
    loss = {} if field in ("critic_loss", "sigma_ratio") else {"critic_loss": "hl-gauss"}
    with pytest.raises(ConfigError) as err:
        validate(make(**loss, **{field: value}))
    assert flag in str(err.value) and repr(value) in str(err.value)


@pytest.mark.parametrize("field,value,flag", [("num_bins", 51, "--num-bins"),
                                              ("value_transform", "symlog", "--value-transform"),
                                              ("sigma_ratio", 0.5, "--sigma-ratio")])
def test_classification_flags_are_refused_where_they_would_do_nothing(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        validate(_sac_args(critic_loss="mse", **{field: value}))
    if field == "sigma_ratio":  # σ is HL-Gauss only
        with pytest.raises(ConfigError, match=flag):
            validate(_sac_args(critic_loss="two-hot", sigma_ratio=value))
    validate(_sac_args(critic_loss="hl-gauss", **{field: value}))


@pytest.mark.parametrize("kind,extra", [("sac", ("--alpha-lr", "--init-alpha", "--target-entropy-scale")),
                                        ("td3", ("--policy-delay", "--policy-noise", "--noise-clip",
                                                 "--exploration-noise"))])
def test_help_lists_the_agent_flags(kind, extra, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", kind, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--critic-loss", "--v-min", "--v-max", "--num-bins", "--sigma-ratio", "--value-transform",
                 "--tau", "--depth", "--actor-depth", "--critic-depth", "--width", "--discount", "--num-envs",
                 "--run-dir", "--resume", *extra):
        assert flag in text, flag


def test_cli_rejects_a_bad_critic_loss_before_creating_the_run(tmp_path, capsys):
    assert cli_main(["train", "td3", "--critic-loss", "huber", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--critic-loss" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# --- learning on a maze with HER -----------------------------------------------------------------
def _maze_args(module, config, run_dir: Path, **train):
    train_config = dict(num_envs=32, unroll_length=50, sgd_steps_per_collect=16, total_env_steps=160_000,
                        eval_every=40_000, num_eval_envs=128)
    train_config.update(train)
    return module.args(env=EnvConfig(env="point-maze", layout=TINY_ROOM, episode_length=50), agent=config,
                       train=TrainConfig(**train_config), run_dir=str(run_dir), progress=False, plots=False,
                       tensorboard=False, compile_cache=False)


def test_sac_her_learns_a_small_room(tmp_path, monkeypatch):
    """SAC + HER (relabelled goals only, MSE critic) reaches and stays at the goal of the 3x4 room in 64k env
    steps (3 seeds of this config: success 1.0 and time at goal 0.63–0.68 from 48k steps on). Its epoch program
    compiles with XLA's default options (`OPTIMISED`): it runs 40 times, so its run time outweighs its compile time.
    The start, evaluation and diagnostics programs run once or twice and keep the suite's quick options (43 -> 31 s
    of CPU for this test, 2-core CPU)."""
    config = SACConfig(depth=4, width=64, batch_size=256, critic_loss="mse", tau=0.02, init_alpha=0.1)
    args = _maze_args(AGENTS["sac"], config, tmp_path / "sac", total_env_steps=64_000, eval_every=32_000)
    compile_runs_optimised(monkeypatch)
    assert command.run(args) == 0
    rows = runner.read_metrics(tmp_path / "sac")
    assert rows[-1]["eval/success"] >= 0.8 and rows[-1]["eval/time_at_goal"] >= 0.4, rows[-1]
    assert {"critic/out_of_support", "critic/q", "critic/reward", "alpha/value", "diag/critic_effective_rank",
            "diag/actor_dormant_ratio"} <= set(rows[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind,critic_loss", [("sac", "hl-gauss"), ("td3", "mse")])
def test_her_learns_a_small_room_slow(tmp_path, kind, critic_loss):
    """The classification critic (slower here: its values start at the middle of [0, 100]) and TD3."""

    module = AGENTS[kind]
    config = (SACConfig(depth=4, width=64, batch_size=256, critic_loss=critic_loss, tau=0.02, init_alpha=0.1)
              if kind == "sac" else
              TD3Config(depth=4, width=64, batch_size=256, critic_loss=critic_loss, tau=0.02, exploration_noise=0.3))
    args = _maze_args(module, config, tmp_path / kind, total_env_steps=160_000, eval_every=32_000,
                      prefill_steps=0 if kind == "sac" else 16_000)
    assert command.run(args) == 0
    rows = runner.read_metrics(tmp_path / kind)
    assert max(r["eval/success"] for r in rows[-2:]) >= 0.8, [r["eval/success"] for r in rows]


def test_replace_keeps_frozen_configs_hashable():
    """Agents are static arguments of jit: configs and agents must hash."""
    config = dataclasses.replace(TD3Config(), critic_loss="c51")
    assert hash(TD3(config, MAZE_SPEC)) == hash(TD3(config, MAZE_SPEC))
    assert hash(SAC(SACConfig(), MAZE_SPEC))
