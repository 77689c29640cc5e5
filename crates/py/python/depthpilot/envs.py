"""gymnasium environments on the simulated Crazyflie.

One step is one radio period of the scene's link (10 ms at the default 100 Hz); the physics runs
at 1 kHz under it, the firmware model at its own rates, the synthetic Kinect at 30 Hz.

Actions (``action=``), a Box of 4:

- ``"rpyt"`` (default): ``[roll_deg, pitch_deg, yaw_rate_deg_s, thrust]``, exactly the
  arguments of cflib's ``Commander.send_setpoint``; the step puts the same CRTP packet on the
  simulated radio (``env.unwrapped.last_packet``; ``depthpilot.setpoint_packet`` builds one).
  Thrust is rounded to an integer count. ``reset`` sends cfclient's thrust unlock (one zero
  setpoint) before the first action.
- ``"position"``: ``[x_m, y_m, z_m, yaw_deg]`` to the firmware's own estimator and position
  controller (the on-board architecture; the vision's positions go up as external positions).
- ``"residual"``: added (in ``send_setpoint``'s units) to the packet the scene's cascade sends.

Out-of-range actions are clamped to the Box; NaN or infinite values raise ValueError and leave the
environment unchanged; an action of the wrong shape raises ValueError.

Observations (``obs=``): a Dict. ``"state"`` gives ``state`` (position, velocity, attitude
quaternion w x y z, body rates: 13), ``target`` (the setpoint now: 3) and ``last_action`` (4), and
renders nothing (a Kinect scene is sensed by an oracle of the same rate and latency). ``"depth"``
(the default of the Kinect ids) gives ``depth`` (uint16 mm, 0 = no return, every
``depth_downsample``-th pixel of the 512 x 424 frame, as the frame reaches the host after the
camera's latency), ``frame_age`` (s since the newest frame's capture), ``frame_new`` (1 when a frame
arrived during the step), ``vision`` (``[valid, x, y, z, age_s]``), ``estimate`` (the off-board
estimator: ``[valid, x, y, z, vx, vy, vz]``), ``target`` and ``last_action``. Or a list of those
keys.

Reward: ``exp(-(e / 0.3 m)^2)`` for the distance e to the setpoint; a crash, touching the floor
(tasks that start in the air) or straying 2 m ends the episode (terminated) with -10. The scene's
duration truncates it.

Seeding: episode k after ``reset(seed=s)`` flies seed ``s`` for k = 0 and a seed derived from
(s, k) after; the vector env's world i after ``reset(seed=s)`` is the single env after
``reset(seed=s + i)``, bit for bit, at any thread count.

Domain randomisation: ``reset(options={...})`` with ``randomise`` (True: mass, camera latency
and noise, battery drawn per episode from ``depthpilot tune --randomise``'s ranges),
``mass_factor``, ``latency_extra_s``, ``noise_factor``, ``battery_start_v``, ``realism``
(e.g. ``"Bench"``), ``initial_position_m``, ``initial_attitude_deg``. Options persist until a
reset passes other options (so autoresets keep them).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native

try:  # gymnasium >= 1.1
    from gymnasium.vector import AutoresetMode
except ImportError:  # pragma: no cover
    AutoresetMode = None

ObsArg = Union[None, str, Sequence[str]]


def _keys(obs: ObsArg) -> Optional[list]:
    if obs is None:
        return None
    if isinstance(obs, str):
        return [obs]
    return list(obs)


def _spaces(d: dict):
    low = np.array(d["action_low"], dtype=np.float32)
    high = np.array(d["action_high"], dtype=np.float32)
    action = spaces.Box(low=low, high=high, dtype=np.float32)
    parts = {}
    for key in d["keys"]:
        if key == "depth":
            rows, cols = d["depth_shape"]
            parts[key] = spaces.Box(0, 65535, shape=(rows, cols), dtype=np.uint16)
        elif key == "frame_age":
            parts[key] = spaces.Box(0.0, 1e6, shape=(1,), dtype=np.float32)
        elif key == "frame_new":
            parts[key] = spaces.MultiBinary(1)
        elif key == "last_action":
            parts[key] = spaces.Box(low=low, high=high, dtype=np.float32)
        else:
            lim = np.array(_LIMITS[key], dtype=np.float32)
            parts[key] = spaces.Box(-lim, lim, dtype=np.float32)
    return action, spaces.Dict(parts)


# Bounds of the float observations: generous physical limits (the episode ends 2 m from the
# setpoint; a Crazyflie's gyro saturates at 2000 deg/s, 35 rad/s).
_LIMITS = {
    "vision": [1.0, 100.0, 100.0, 100.0, 1e6],
    "estimate": [1.0, 100.0, 100.0, 100.0, 1e3, 1e3, 1e3],
    "state": [100.0] * 3 + [1e3] * 3 + [1.0] * 4 + [1e4] * 3,
    "target": [100.0] * 3,
}


def _check_args(env_id, scene, render_mode) -> None:
    if render_mode is not None:
        raise ValueError(f"render_mode {render_mode!r}: depthpilot environments do not render; the depth observation is the camera's image")
    if env_id is None and scene is None:
        raise ValueError("give env_id (a registered id) or scene (a scene file)")


class DepthPilotEnv(gym.Env):
    """One simulated Crazyflie (see the module's docstring for actions, observations, reward)."""

    metadata = {"render_modes": [], "render_fps": 100}

    def __init__(
        self,
        env_id: Optional[str] = None,
        scene: Optional[str] = None,
        task: Optional[str] = None,
        action: str = "rpyt",
        obs: ObsArg = None,
        depth_downsample: int = 1,
        realism: Optional[str] = None,
        render_mode: Optional[str] = None,
    ):
        _check_args(env_id, scene, render_mode)
        self._native = _native.NativeEnv(
            env_id, None if scene is None else str(scene), task, action, _keys(obs), int(depth_downsample), realism
        )
        self.description = self._native.describe()
        self.action_space, self.observation_space = _spaces(self.description)
        self.metadata = dict(self.metadata, render_fps=round(1.0 / self.description["step_s"]))
        self.render_mode = None

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        obs = self._native.reset(seed, options)
        return obs, {"flight_seed": self._native.flight_seed()}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (4,):
            raise ValueError(f"an action has shape (4,) ({', '.join(self.description['action_names'])}), not {a.shape}")
        return self._native.step(a)

    @property
    def last_packet(self) -> bytes:
        """The CRTP bytes (header included) the last step put on the simulated radio link."""
        return self._native.last_packet()

    @property
    def flight_seed(self) -> int:
        return self._native.flight_seed()


class DepthPilotVectorEnv(VectorEnv):
    """N simulated Crazyflies stepped across threads in Rust (the GIL is released while they
    step). Autoreset: ``"next_step"`` (gymnasium's default) or ``"same_step"``
    (``infos["final_obs"]`` holds the ending observations, as stable-baselines3 expects)."""

    def __init__(
        self,
        num_envs: int = 1,
        env_id: Optional[str] = None,
        scene: Optional[str] = None,
        task: Optional[str] = None,
        action: str = "rpyt",
        obs: ObsArg = None,
        depth_downsample: int = 1,
        realism: Optional[str] = None,
        threads: Optional[int] = None,
        autoreset: str = "next_step",
        render_mode: Optional[str] = None,
    ):
        _check_args(env_id, scene, render_mode)
        self._native = _native.NativeVecEnv(
            int(num_envs),
            env_id,
            None if scene is None else str(scene),
            task,
            action,
            _keys(obs),
            int(depth_downsample),
            realism,
            threads,
            autoreset,
        )
        self.description = self._native.describe()
        self.num_envs = int(num_envs)
        self.single_action_space, self.single_observation_space = _spaces(self.description)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        mode = self.description["autoreset"]
        self.metadata = {
            "render_modes": [],
            "render_fps": round(1.0 / self.description["step_s"]),
            "autoreset_mode": (
                mode if AutoresetMode is None else (AutoresetMode.NEXT_STEP if mode == "next_step" else AutoresetMode.SAME_STEP)
            ),
        }
        self.render_mode = None

    @property
    def threads(self) -> int:
        return self.description["threads"]

    def reset(self, *, seed: Union[None, int, Sequence[Optional[int]]] = None, options: Optional[dict] = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            seed = [None if s is None else int(s) for s in seed]
            if len(seed) != self.num_envs:
                raise ValueError(f"{len(seed)} seeds for {self.num_envs} worlds")
        elif seed is not None:
            seed = int(seed)
        if isinstance(seed, int):
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
        obs = self._native.reset(seed, options)
        return obs, {"flight_seed": np.array(self._native.flight_seeds(), dtype=np.uint64)}

    def step(self, actions):
        a = np.ascontiguousarray(actions, dtype=np.float64)
        if a.shape != (self.num_envs, 4):
            raise ValueError(f"actions must have shape ({self.num_envs}, 4), not {a.shape}")
        obs, rewards, terminated, truncated, raw = self._native.step(a)
        n = self.num_envs
        everyone = np.ones(n, dtype=bool)
        infos: dict[str, Any] = {
            "error_m": raw["error_m"],
            "_error_m": everyone,
            "end": np.array(raw["end"], dtype=object),
            "_end": np.array([e != "" for e in raw["end"]], dtype=bool),
        }
        if "final_obs" in raw:
            ended = np.logical_or(terminated, truncated)
            final = np.empty(n, dtype=object)
            fo = raw["final_obs"]
            for i in np.flatnonzero(ended):
                final[i] = {k: v[i] for k, v in fo.items()}
            infos["final_obs"] = final
            infos["_final_obs"] = ended
        return obs, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs):
        self._native = None


def register_all() -> None:
    """Registers every ``DepthPilot/...`` id with gymnasium (done on ``import depthpilot``)."""
    for env_id, _scene, _task, _depth, _summary in _native.registry():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="depthpilot.envs:DepthPilotEnv",
            vector_entry_point="depthpilot.envs:DepthPilotVectorEnv",
            kwargs={"env_id": env_id},
            disable_env_checker=False,
        )
