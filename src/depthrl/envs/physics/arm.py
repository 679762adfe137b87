"""Franka Panda on MJX: push a cube to a goal (easy, hard), carry it between bins (hard, easy), reach a point.

The tasks are JaxGCRL's arm tasks (Bortkiewicz et al. 2025, `envs/manipulation/arm_*.py`), which the
1000-layer paper trains on; their numbers were read from JaxGCRL's public sources, the code is depthrl's.

Cube tasks (push, binpick):
  state (17) = cube position (3) ++ the 7 arm joint angles ++ end-effector position (3) and linear
               velocity (3) ++ distance between the fingers (1)
  goal (3)   = target cube position; goal_indices (0, 1, 2); success within 0.1 m of it
  action (5) = target angles of joints 1, 2, 4 and 6, each [-1, 1] mapped onto JaxGCRL's working range
               (joints 3 and 5 held at 0, joint 7 at 1.4487), and the gripper (> 0 closes, else opens)
Reach (the paper code's `arm_reach`: the Panda without fingers, no cube):
  state (13) = the 7 arm joint angles ++ end-effector position (3) and linear velocity (3)
  goal (3)   = a target for the end effector; goal_indices (7, 8, 9); success within 0.1 m of it
  action (4) = the four joint targets above (no gripper)

  task          cube start (x, y) ± noise     goal ± noise                 scene
  push-easy     (-0.1, 0.6) ± 0.1             (0.1, 0.6) ± 0.1             two 0.2 m pads on the table
  push-hard     (-0.25, 0.65) ± 0.25          (0.25, 0.65) ± 0.25          two 0.5 m pads
  binpick-hard  (-0.3, 0.6) ± 0.15            (0.3, 0.6) ± 0.15            two 0.39 m bins with 6.6 cm walls
  binpick-easy  (-0.15, 0.6) ± 0.09           (0.17, 0.6) ± 0.09           two 0.29 m bins at x = ∓0.17
  reach         no cube                       (0, 0.5, 0.3) ± 0.2 in x, y, z   a 0.4 m pad under the goal box

A cube's goal lies at z = 0.03 (the cube resting on the table). The cube is dropped from z = 0.07 m at
reset (it lands resting at 0.03 m). MJX settings as the paper's code: timestep 2 ms, 25 physics steps per
env step, 6 solver / 12 line-search iterations, implicit-fast integration.

The robot model is built here without meshes: MuJoCo Menagerie's Panda kinematics, joint limits, armature,
damping and inertias (Apache-2.0), with the paper's collision geoms (a capsule hand, box fingers), contact
pairs and actuators (scaling-crl `envs/assets/panda_*.xml`): position actuators whose gain differs from their
stiffness on joints 3-7 (gain 2000 against stiffness 3500 on joints 3-4, 1000 against 2000 on joints 5-7, so
without gravity those joints settle at 4/7 and 1/2 of their command) and fingers of range 0-0.08 m driven by
a 0..255 command with gain 0.15686 (255 opens them fully). brax fuses the joint-less hand into link 7, whose
explicit inertia then stands for both (so the hand adds no mass, in the paper's model as here). Differences
from the paper's model, in `docs/physics.md`: no visual meshes; no goal-marker body (the goal lives in the
env state, so q has 16 entries, not 23, and 7 for reach, not 14; the marker has no contacts and is not
observed).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp

from depthrl.envs.base import EnvSpec, State
from depthrl.envs.physics.locomotion import Physics, pipeline_module


@dataclasses.dataclass(frozen=True)
class ArmTask:
    cube_xy: tuple[float, float] | None  # None: no cube (reach)
    cube_noise: float
    goal_xy: tuple[float, float]
    goal_noise: float
    scene: str  # "pads", "bins" or "reach"
    region_half: float  # half width of each pad / bin
    regions_xy: tuple[tuple[float, float], tuple[float, float]] | None = None  # pad / bin centres (None: cube, goal)
    goal_z: float = 0.03  # the goal's height (a cube's: resting on the table; reach adds goal_noise to it)

    @property
    def cube(self) -> bool:
        """A cube task (push, binpick: a cube and fingers) rather than reach (the end effector is the goal)."""
        return self.cube_xy is not None


ARM_TASKS: dict[str, ArmTask] = {
    "push-easy": ArmTask((-0.1, 0.6), 0.1, (0.1, 0.6), 0.1, "pads", 0.1),
    "push-hard": ArmTask((-0.25, 0.65), 0.25, (0.25, 0.65), 0.25, "pads", 0.25),
    "binpick-hard": ArmTask((-0.3, 0.6), 0.15, (0.3, 0.6), 0.15, "bins", 0.195),
    "binpick-easy": ArmTask((-0.15, 0.6), 0.09, (0.17, 0.6), 0.09, "bins", 0.145, ((-0.17, 0.6), (0.17, 0.6))),
    "reach": ArmTask(None, 0.0, (0.0, 0.5), 0.2, "reach", 0.2, goal_z=0.3),
}

CUBE_DROP_Z = 0.07  # the cube's height at reset (the paper's XML), 4 cm above resting
ARM_START = (1.571, 0.742, 0.0, -1.571, 0.0, 3.054, 1.449)  # JaxGCRL: the hand above the table's work area
FINGER_START = 0.04
# Working range of the 7 joint targets (JaxGCRL): actions drive joints 1, 2, 4, 6; 3, 5 and 7 are fixed.
TARGET_LOW = (0.3491, 0.0, 0.0, -3.0718, 0.0, 2.3562, 1.4487)
TARGET_HIGH = (2.7925, 1.48353, 0.0, -0.0698, 0.0, 3.7525, 1.4487)
ACTED_JOINTS = (0, 1, 3, 5)
GRIPPER_OPEN, GRIPPER_CLOSED = 255.0, 0.0

# Panda links (MuJoCo Menagerie): name, pos, quat, joint range, inertial (mass, com, full inertia).
_LINKS = (
    ("link1", "0 0 0.333", None, None, (4.970684, "0.003875 0.002081 -0.04762",
                                        "0.70337 0.70661 0.009117 -0.000139 0.006772 0.019169")),
    ("link2", None, "1 -1 0 0", "-1.7628 1.7628", (0.646926, "-0.003141 -0.02872 0.003495",
                                                   "0.007962 0.02811 0.025995 -0.003925 0.010254 0.000704")),
    ("link3", "0 -0.316 0", "1 1 0 0", None, (3.228604, "0.027518 0.039252 -0.066502",
                                              "0.037242 0.036155 0.01083 -0.004761 -0.011396 -0.012805")),
    ("link4", "0.0825 0 0", "1 1 0 0", "-3.0718 -0.0698", (3.587895, "-0.05317 0.104419 0.027454",
                                                           "0.025853 0.019552 0.028323 0.007796 -0.001332 0.008641")),
    ("link5", "-0.0825 0.384 0", "1 -1 0 0", None, (1.225946, "-0.011953 0.041065 -0.038437",
                                                    "0.035549 0.029474 0.008627 -0.002117 -0.004037 0.000229")),
    ("link6", None, "1 1 0 0", "-0.0175 3.7525", (1.666555, "0.060149 -0.014117 -0.010517",
                                                  "0.001964 0.004354 0.005433 0.000109 -0.001158 0.000341")),
    ("link7", "0.088 0 0", "1 1 0 0", None, (0.735522, "0.010517 -0.004252 0.061597",
                                             "0.012516 0.010027 0.004815 -0.000428 -0.001196 -0.000741")),
)
# Position actuators (the paper's panda_*.xml): gain, stiffness, damping, force limit, control range (None = the
# default ±2.8973). force = gain * ctrl - stiffness * q - damping * qd.
_ACTUATORS = (
    (4500, 4500, 450, 87, None), (4500, 4500, 450, 87, "-1.7628 1.7628"), (2000, 3500, 350, 87, None),
    (2000, 3500, 350, 87, "-3.0718 -0.0698"), (1000, 2000, 200, 12, None), (1000, 2000, 200, 12, "-0.0175 3.7525"),
    (1000, 2000, 200, 12, None),
)
FINGER_RANGE = 0.08  # m per finger
FINGER_GAIN = 0.15686  # the paper's: command 255 -> 0.08 m against stiffness 500 (0.08 * 500 / 255)


def _el(parent: ET.Element, tag: str, **attrs) -> ET.Element:
    return ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items() if v is not None})


@functools.lru_cache(maxsize=8)
def panda_xml(task_name: str) -> str:
    """MJCF of the Panda, the table and the task's scene: the cube, the fingers and the pads or bins of a cube
    task; the hand without fingers over a pad for reach (collision by explicit pairs)."""
    task = ARM_TASKS[task_name]
    root = ET.Element("mujoco", model=f"panda-{task_name}")
    _el(root, "compiler", angle="radian", autolimits="true")
    _el(root, "option", integrator="implicitfast", impratio=10 if task.scene == "bins" else None)
    default = _el(_el(root, "default"), "default", **{"class": "panda"})
    _el(default, "joint", armature=0.1, damping=5, axis="0 0 1", range="-2.8973 2.8973")
    _el(default, "general", dyntype="none", biastype="affine", ctrlrange="-2.8973 2.8973", forcerange="-87 87")
    _el(default, "geom", contype=0, conaffinity=0)
    world = _el(root, "worldbody")
    _el(world, "light", pos="0 0 2", dir="0 0 -1")
    _el(world, "geom", name="table", type="plane", size="2.8 2.4 0.1", pos="0 0.2 0", friction="0.2 0.005 0.0001",
        contype=0, conaffinity=0)

    if task.cube:  # the cube first, so that q = (cube 7, arm 7, fingers 2) and the bodies are (cube, link1..7, fingers)
        cube = _el(world, "body", name="cube", pos=f"{task.cube_xy[0]} {task.cube_xy[1]} {CUBE_DROP_Z}")
        _el(cube, "freejoint", name="cube_joint")
        _el(cube, "geom", name="cube_geom", type="box", size="0.03 0.03 0.03", rgba="0 0.4 0 1", contype=0,
            conaffinity=0)
    parent = _el(world, "body", name="link0", childclass="panda")
    for name, pos, quat, joint_range, (mass, com, inertia) in _LINKS:
        parent = _el(parent, "body", name=name, pos=pos, quat=quat)
        _el(parent, "inertial", mass=mass, pos=com, fullinertia=inertia)
        _el(parent, "joint", name=f"joint{name[-1]}", range=joint_range)
    hand = _el(parent, "body", name="hand", pos="0 0 0.107", quat="0.9238795 0 0 -0.3826834")
    _el(hand, "geom", name="hand_geom", type="capsule", size="0.04 0.06", pos="0 0 0.035", quat="1 1 0 0")
    for side, quat in (("left", None), ("right", "0 0 0 1")) if task.cube else ():
        finger = _el(hand, "body", name=f"{side}_finger", pos="0 0 0.0584", quat=quat)
        _el(finger, "inertial", mass=0.015, pos="0 0 0", diaginertia="2.375e-6 2.375e-6 7.5e-7")
        _el(finger, "joint", name=f"{side}_finger_joint", type="slide", axis="0 1 0", range=f"0 {FINGER_RANGE}")
        _el(finger, "geom", name=f"{side}_finger_geom", type="box", size="0.015 0.005 0.04", pos="0 0.0055 0.035",
            friction="10 0.005 0.0001")

    colours = ("0 0.2 0.8 1", "0.8 0 0 1")
    regions = (task.goal_xy,) if not task.cube else task.regions_xy or (task.cube_xy, task.goal_xy)
    bin_walls = []
    for label, (x, y), rgba in zip("AB"[:len(regions)], regions, colours[:len(regions)], strict=True):
        region = _el(world, "body", name=f"region{label}", pos=f"{x} {y} 0")
        h = task.region_half
        if task.scene != "bins":  # pads, and reach's pad under the goal box: drawn, no contacts
            _el(region, "geom", name=f"pad{label}", type="box", size=f"{h} {h} 0.0005", pos="0 0 0.0005", rgba=rgba,
                contype=0, conaffinity=0)
            continue
        for i, (pos, size) in enumerate(((f"0 {-h + 0.005} 0.033", f"{h} 0.005 0.033"),
                                         (f"0 {h - 0.005} 0.033", f"{h} 0.005 0.033"),
                                         (f"{h - 0.005} 0 0.033", f"0.005 {h - 0.01} 0.033"),
                                         (f"{-h + 0.005} 0 0.033", f"0.005 {h - 0.01} 0.033"))):
            name = f"bin{label}{i}"
            _el(region, "geom", name=name, type="box", pos=pos, size=size, rgba=rgba, contype=0, conaffinity=0)
            bin_walls.append(name)

    if task.cube:
        equality = _el(root, "equality")
        _el(equality, "joint", joint1="left_finger_joint", joint2="right_finger_joint", solimp="0.95 0.99 0.001",
            solref="0.005 1")
    contact = _el(root, "contact")
    if task.cube:
        gripper = ("hand_geom", "left_finger_geom", "right_finger_geom")
        pairs = [("cube_geom", g) for g in ("table", *gripper, *bin_walls)]
        pairs += [("table", g) for g in gripper]
        pairs += [(g, w) for g in gripper for w in bin_walls]
        pairs += [("left_finger_geom", "right_finger_geom")]
    else:
        pairs = [("table", "hand_geom")]
    for a, b in pairs:
        _el(contact, "pair", geom1=a, geom2=b)

    actuators = _el(root, "actuator")
    for i, (gain, kp, kv, force, ctrl_range) in enumerate(_ACTUATORS, start=1):
        _el(actuators, "general", **{"class": "panda"}, name=f"actuator{i}", joint=f"joint{i}", gainprm=gain,
            biasprm=f"0 {-kp} {-kv}", forcerange=f"{-force} {force}", ctrlrange=ctrl_range)
    for side in ("left", "right") if task.cube else ():  # 0 (closed) .. 255 (open) -> 0 .. 0.08 m per finger
        _el(actuators, "general", **{"class": "panda"}, name=f"{side}_finger_actuator", joint=f"{side}_finger_joint",
            forcerange="-500 500", ctrlrange="0 255", gainprm=f"{FINGER_GAIN} 0 0", biasprm="0 -500 -50")
    return ET.tostring(root, encoding="unicode")


@functools.lru_cache(maxsize=8)
def load_system(task_name: str):
    from brax.io import mjcf

    # Concrete arrays even when first called inside a jit trace (cached: a tracer here would leak).
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore", UserWarning)  # brax's notice that its own pipelines are unmaintained
        sys = mjcf.loads(panda_xml(task_name))
        return sys.tree_replace({"opt.timestep": 0.002, "opt.iterations": 6, "opt.ls_iterations": 12})


@dataclasses.dataclass(frozen=True)
class Arm:
    """A JaxGCRL arm task on MJX; see the module docstring. info: `distance` (cube or end effector to goal),
    `at_goal`."""

    task: str
    name: str
    backend: str = "mjx"
    success_radius: float = 0.1
    episode_length: int = 1000
    n_frames: int = 25

    def __post_init__(self):
        if self.task not in ARM_TASKS:
            raise ValueError(f"task {self.task!r} is not one of {tuple(ARM_TASKS)}")
        if self.backend != "mjx":
            raise ValueError("the arm tasks run on the mjx backend only (as JaxGCRL's)")

    @property
    def system(self):
        return load_system(self.task)

    @property
    def spec(self) -> EnvSpec:
        if ARM_TASKS[self.task].cube:
            return EnvSpec(name=self.name, obs_dim=20, action_dim=5, state_dim=17, goal_indices=(0, 1, 2),
                           episode_length=self.episode_length, success_radius=self.success_radius)
        return EnvSpec(name=self.name, obs_dim=16, action_dim=4, state_dim=13, goal_indices=(7, 8, 9),
                       episode_length=self.episode_length, success_radius=self.success_radius)

    @property
    def dt(self) -> float:
        return float(self.system.opt.timestep) * self.n_frames

    def init_physics(self, q: jax.Array, qd: jax.Array, goal: jax.Array) -> Physics:
        return Physics(pipeline=pipeline_module("mjx").init(self.system, q, qd), goal=goal)

    def reset(self, key: jax.Array) -> State:
        task = ARM_TASKS[self.task]
        cube_key, goal_key = jax.random.split(key)
        goal = self.goal(goal_key)
        q = jnp.asarray(ARM_START)
        if task.cube:
            cube_xy = jnp.asarray(task.cube_xy) + task.cube_noise * jax.random.uniform(cube_key, (2,), minval=-1.0)
            cube = jnp.concatenate([cube_xy, jnp.array([CUBE_DROP_Z, 1.0, 0.0, 0.0, 0.0])])
            q = jnp.concatenate([cube, q, jnp.full(2, FINGER_START)])
        physics = self.init_physics(q, jnp.zeros(self.system.qd_size()), goal.astype(jnp.float32))
        return self._state(physics)

    def goal(self, key: jax.Array) -> jax.Array:
        """[3] a goal drawn from `key`: the task's goal centre plus uniform noise in [-goal_noise, goal_noise] on x
        and y (a cube's goal), or on x, y and z (reach)."""
        task = ARM_TASKS[self.task]
        centre = jnp.array([*task.goal_xy, task.goal_z])
        if not task.cube:
            return centre + task.goal_noise * jax.random.uniform(key, (3,), minval=-1.0)
        goal_xy = centre[:2] + task.goal_noise * jax.random.uniform(key, (2,), minval=-1.0)
        return jnp.concatenate([goal_xy, centre[2:]])

    def controls(self, action: jax.Array) -> jax.Array:
        """Actuator controls from an action in [-1, 1]: the 7 joint angle targets, then for a cube task ([5]
        action) the 2 finger openings ([9] in all)."""
        low, high = jnp.asarray(TARGET_LOW), jnp.asarray(TARGET_HIGH)
        unit = jnp.zeros(7).at[jnp.asarray(ACTED_JOINTS)].set(action[:4])
        targets = (low + high) / 2 + unit * (high - low) / 2
        if not ARM_TASKS[self.task].cube:
            return targets
        grip = jnp.where(action[4] > 0, GRIPPER_CLOSED, GRIPPER_OPEN)
        return jnp.concatenate([targets, jnp.stack([grip, grip])])

    def step(self, state: State, action: jax.Array) -> State:
        action = jnp.clip(jnp.where(jnp.isfinite(action), action, 0.0), -1.0, 1.0)
        ctrl = self.controls(action)
        pipeline, sys = pipeline_module("mjx"), self.system

        def physics_step(pipeline_state, _):
            return pipeline.step(sys, pipeline_state, ctrl), None

        next_pipeline, _ = jax.lax.scan(physics_step, state.physics.pipeline, None, length=self.n_frames)
        return self._state(state.physics.replace(pipeline=next_pipeline))

    def arm_state(self, pipeline_state) -> jax.Array:
        """The state part of the observation (see the module docstring): [17] for a cube task, [13] for reach."""
        # bodies after brax fuses joint-less ones: (cube,) link1..7 (+hand), (fingers)
        links, vel = pipeline_state.x.pos, pipeline_state.xd.vel
        if not ARM_TASKS[self.task].cube:
            eef = 6
            return jnp.concatenate([pipeline_state.q[:7], links[eef], vel[eef]])
        eef, left, right = 7, 8, 9
        finger_distance = jnp.linalg.norm(links[right] - links[left])[None]
        return jnp.concatenate([pipeline_state.q[:3], pipeline_state.q[7:14], links[eef], vel[eef], finger_distance])

    def _state(self, physics: Physics) -> State:
        arm_state = self.arm_state(physics.pipeline).astype(jnp.float32)
        first = self.spec.goal_indices[0]
        reached = arm_state[first:first + 3]  # the cube's or the end effector's position
        distance = jnp.sqrt(jnp.sum((reached - physics.goal) ** 2))
        at_goal = (distance < self.success_radius).astype(jnp.float32)
        obs = jnp.concatenate([arm_state, physics.goal])
        info = {"distance": distance, "at_goal": at_goal}
        return State(obs=obs, reward=at_goal, done=jnp.zeros((), jnp.float32), info=info, physics=physics)
