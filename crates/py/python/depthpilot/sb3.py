"""stable-baselines3 adapter: a ``VecEnv`` over depthpilot's native vector environment.

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from depthpilot.sb3 import DepthPilotSB3VecEnv

    venv = VecMonitor(DepthPilotSB3VecEnv("DepthPilot/Hover-v0", num_envs=16, obs="state"))
    model = PPO("MultiInputPolicy", venv).learn(200_000)

The worlds step in Rust across threads (``threads=``); the adapter keeps stable-baselines3's
``VecEnv`` conventions (those of its ``DummyVecEnv``):

- ``step_wait()`` returns ``(obs, rewards, dones, infos)``: ``obs`` a dict of arrays with one row
  per world, ``rewards`` float32, ``dones`` bool (terminated or truncated), ``infos`` a list of
  dicts. A world whose episode ended is reset in the same step: its row of ``obs`` is the new
  episode's first observation, ``infos[i]["terminal_observation"]`` the ending one (a dict of
  arrays) and ``infos[i]["end"]`` why it ended. ``infos[i]["TimeLimit.truncated"]`` is on every
  step: True only when the scene's duration cut the episode (not a crash). ``infos[i]["error_m"]``
  is the distance to the setpoint.
- ``seed(s)`` (world i gets ``s + i``) and ``set_options(...)`` apply at the next ``reset()``
  only; ``reset_infos[i]["flight_seed"]`` is world i's flight seed (updated on autoresets).
  Options are one set for all worlds (per-world options that differ raise ValueError); they
  persist across autoresets. ``reset_options=`` given to the constructor apply at every
  ``reset()`` (``set_options`` overrides its keys).
- Actions: with ``normalize_actions=True`` (the default, what PPO and SAC expect) the action
  space is ``Box(-1, 1, (4,), float32)`` and an action ``a`` (clipped to [-1, 1]) maps linearly to
  the environment's bounds: ``low + (a + 1) / 2 * (high - low)`` (``env_action_space``;
  :meth:`DepthPilotSB3VecEnv.denormalize` does it). With ``normalize_actions=False`` the action
  space is the environment's own Box (``send_setpoint``'s units). Either way actions have shape
  ``(num_envs, 4)`` (anything else raises ValueError) and NaN raises ValueError. The
  ``last_action`` observation stays in the environment's units.
- The worlds share one configuration: ``get_attr`` reads the native vector env's attribute (the
  same value for each world), ``set_attr`` and ``env_method`` raise AttributeError,
  ``env_is_wrapped`` is False (no gymnasium wrappers inside; use ``VecMonitor`` for episode
  statistics).

Needs ``pip install stable-baselines3`` (not a dependency of depthpilot).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from gymnasium import spaces

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv as _SB3VecEnv
except ImportError as e:  # pragma: no cover - depends on the user's install
    raise ImportError("depthpilot.sb3 needs stable-baselines3: pip install stable-baselines3") from e

from .envs import DepthPilotVectorEnv


class DepthPilotSB3VecEnv(_SB3VecEnv):
    """``num_envs`` depthpilot worlds as one stable-baselines3 ``VecEnv`` (see the module's
    docstring). Keyword arguments go to :class:`depthpilot.envs.DepthPilotVectorEnv` (``scene``,
    ``task``, ``action``, ``obs``, ``depth_downsample``, ``realism``, ``threads``); autoreset is
    always ``"same_step"``."""

    def __init__(
        self,
        env_id: Optional[str] = None,
        num_envs: int = 1,
        *,
        normalize_actions: bool = True,
        reset_options: Optional[dict] = None,
        **kwargs: Any,
    ):
        autoreset = kwargs.pop("autoreset", "same_step")
        if autoreset != "same_step":
            raise ValueError(f"autoreset {autoreset!r}: stable-baselines3 needs 'same_step'")
        self.venv = DepthPilotVectorEnv(int(num_envs), env_id=env_id, autoreset="same_step", **kwargs)
        self.normalize_actions = bool(normalize_actions)
        self.env_action_space: spaces.Box = self.venv.single_action_space
        self._low = self.env_action_space.low.astype(np.float64)
        self._high = self.env_action_space.high.astype(np.float64)
        self._reset_options_fixed = dict(reset_options) if reset_options else {}
        self._actions: Optional[np.ndarray] = None
        if self.normalize_actions:
            action_space = spaces.Box(-1.0, 1.0, shape=self.env_action_space.shape, dtype=np.float32)
        else:
            action_space = self.env_action_space
        super().__init__(int(num_envs), self.venv.single_observation_space, action_space)
        # VecEnv.__init__ sets metadata to {"render_modes": []}; keep the frame rate too.
        self.metadata = {"render_modes": [], "render_fps": self.venv.metadata["render_fps"]}
        try:
            import gymnasium as gym

            self.spec = None if env_id is None else gym.spec(env_id)
        except Exception:  # pragma: no cover - an unregistered id already failed above
            self.spec = None

    def denormalize(self, actions: np.ndarray) -> np.ndarray:
        """Maps normalised actions (clipped to [-1, 1]) to the environment's bounds, float64.
        The identity (as float64) with ``normalize_actions=False``."""
        a = np.asarray(actions, dtype=np.float64)
        if not self.normalize_actions:
            return a
        return self._low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (self._high - self._low)

    def reset(self):
        seeds = list(self._seeds)
        seed = None if all(s is None for s in seeds) else [None if s is None else int(s) for s in seeds]
        options = self._options_for_reset()
        obs, info = self.venv.reset(seed=seed, options=options)
        self.reset_infos = [{"flight_seed": int(s)} for s in info["flight_seed"]]
        self._reset_seeds()
        self._reset_options()
        self._actions = None
        return obs

    def _options_for_reset(self) -> Optional[dict]:
        per_world = [dict(o) if o else {} for o in self._options]
        if any(o != per_world[0] for o in per_world[1:]):
            raise ValueError("depthpilot worlds take one set of reset options for all; set_options() gave different ones per world")
        merged = {**self._reset_options_fixed, **per_world[0]}
        return merged or None

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions)
        if a.shape != (self.num_envs, 4):
            raise ValueError(f"actions must have shape ({self.num_envs}, 4), not {a.shape}")
        self._actions = np.ascontiguousarray(self.denormalize(a), dtype=np.float64)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        obs, rewards, terminated, truncated, infos = self.venv.step(actions)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        dones = np.logical_or(terminated, truncated)
        final = infos.get("final_obs")
        error_m = infos["error_m"]
        ends = infos["end"]
        out = []
        for i in range(self.num_envs):
            info: dict = {
                "error_m": float(error_m[i]),
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
            }
            if dones[i]:
                info["end"] = str(ends[i])
                if final is not None and final[i] is not None:
                    info["terminal_observation"] = {k: np.array(v, copy=True) for k, v in final[i].items()}
            out.append(info)
        if dones.any():
            seeds = self.venv._native.flight_seeds()
            for i in np.flatnonzero(dones):
                self.reset_infos[i] = {"flight_seed": int(seeds[i])}
        return obs, np.asarray(rewards, dtype=np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"depthpilot worlds share one configuration; cannot set {attr_name!r} per world")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        raise AttributeError(f"depthpilot worlds have no per-world method {method_name!r}; use .venv (the native vector env)")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list:
        return [False for _ in self._get_indices(indices)]
