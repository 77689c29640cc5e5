"""depthpilot from Python: fly a simulated Crazyflie 2.x seen by a synthetic Kinect v2.

The simulator is the Rust core of the `depthpilot` CLI (the same functions, the same
messages); long calls release the GIL.

    import depthpilot
    scene = depthpilot.load_scene("scenes/hover_kinect.ron")
    summary, log = depthpilot.fly(scene, seed=3)
    report, records = depthpilot.batch(scene, seeds=range(20))

and the gymnasium environments, registered on import under ``DepthPilot/...``:

    import gymnasium as gym
    env = gym.make("DepthPilot/HoverKinect-v0")
    envs = gym.make_vec("DepthPilot/Hover-v0", num_envs=64, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Optional, Sequence, Union

from . import _native
from ._native import Scene, registry, setpoint_packet, tunable_gains

__version__ = _native.__version__

__all__ = [
    "Scene",
    "load_scene",
    "fly",
    "batch",
    "score_gains",
    "tunable_gains",
    "setpoint_packet",
    "registry",
    "ids",
]

PathLike = Union[str, "os.PathLike[str]"]


def load_scene(path: PathLike) -> Scene:
    """Loads and checks a scene file (RON).

    Raises FileNotFoundError when the file does not exist and ValueError when it is not a valid
    scene; the message is the one the CLI prints (it names the file, line and field).
    """
    return _native.load_scene(os.fspath(path))


def _scene(scene: Union[Scene, PathLike]) -> Scene:
    return scene if isinstance(scene, Scene) else load_scene(scene)


def fly(scene: Union[Scene, PathLike], seed: Optional[int] = None, log: bool = True):
    """Flies a scene once, in virtual time, as ``depthpilot fly`` does.

    Returns ``(summary, log)``: the summary as a dict (the fields of ``fly --summary``), and the
    log as a dict of numpy arrays, one row per log period (``t_s``, ``pos_m`` (N, 3),
    ``vel_m_s``, ``rpy_rad``, ``setpoint_m``, ``estimate_m`` (NaN before the first estimate),
    ``cmd_roll_pitch_yawrate_thrust`` (N, 4), ``motors_pwm`` (N, 4) uint16,
    ``measurement_age_s``, ``detection_pixels`` (-1: none), ``safety``, ``firmware``); ``log``
    is None with ``log=False``.
    """
    summary, columns = _native.fly(_scene(scene), seed, log)
    return json.loads(summary), columns


def batch(scene: Union[Scene, PathLike], seeds: Iterable[int], jobs: Optional[int] = None):
    """Flies the scene once per seed (with its per-seed variations), ``jobs`` flights at a time
    (default: one per core), as ``depthpilot batch`` does.

    Returns ``(report, records)``: the aggregate report (dict) and one record per seed (list of
    dicts, sorted by seed).
    """
    seeds = [int(s) for s in seeds]
    report, records = _native.batch(_scene(scene), seeds, jobs)
    return json.loads(report), json.loads(records)


def score_gains(
    scenes: Sequence[Union[Scene, PathLike]],
    gains: dict,
    seeds: Iterable[int],
    jobs: Optional[int] = None,
) -> dict:
    """Scores cascade gains (name -> value; the others keep the first scene's values) on every
    scene x seed, and the first scene's own gains on the same flights, with ``depthpilot
    tune``'s objective. ``cost`` is lower for better gains; ``baseline_cost`` is the scene's
    gains' cost.
    """
    out = _native.score_gains([_scene(s) for s in scenes], dict(gains), [int(s) for s in seeds], jobs)
    return json.loads(out)


def ids() -> list:
    """The registered environment ids."""
    return [r[0] for r in registry()]


try:  # gymnasium is a dependency, but the flight functions work without it.
    from . import envs as _envs

    _envs.register_all()
except ImportError:  # pragma: no cover
    pass
