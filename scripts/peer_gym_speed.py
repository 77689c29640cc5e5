#!/usr/bin/env python3
"""Issue 18: the peer's gymnasium env speed on this machine, with and without camera observations.

gym-pybullet-drones' single-agent RL env `HoverAviary` (a `BaseRLAviary`), gui=False, stepped with
random actions from its own action space (RPM actions, Box(-1, 1, (1, 4))), resetting on terminated
or truncated, for `--steps` steps (default 2000) after `--warmup` steps (default 50):

- obs=ObservationType.RGB: each drone's onboard camera, `BaseAviary._getDroneImages`, i.e.
  `pybullet.getCameraImage` at IMG_RES 64x48 with PyBullet's CPU TinyRenderer (DIRECT mode, no
  EGL plugin). The observation is the RGBA image only; the depth (z-) buffer is computed by the same
  call but is not part of the observation. gym-pybullet-drones has no depth observation type.
- obs=ObservationType.KIN: the kinematic state (+ action buffer), no images.

The env renders a new frame only when its PyBullet step counter is a multiple of pyb_freq/24 (a
24 Hz camera), and refuses (prints an error and calls exit(), status 0) unless that is a multiple of
pyb_freq/ctrl_freq: HoverAviary's default ctrl_freq=30 is rejected with obs=RGB. The default here,
ctrl_freq=24 with pyb_freq=240, renders a fresh image on every env step (10 physics steps each).
The same frequencies are used for KIN so the two differ only by the camera (and the 4 landmark
objects BaseRLAviary loads for RGB). `frames_rendered` counts the camera calls actually made.

`--num-envs K` runs K independent env processes (multiprocessing, one env each, started together
after their warm-up) and reports the aggregate steps/s: K * steps / (last finish - first start).

Prints one JSON line per observation type, with the 1-minute load average before and after.

Not a dependency of depthpilot: run it in a scratch venv. gym-pybullet-drones is not on PyPI, so it
installs from its GitHub source (a checkout, e.g. /tmp/gpd_src):
    python3 -m venv /tmp/gpd
    /tmp/gpd/bin/pip install pybullet numpy scipy transforms3d matplotlib gymnasium
    git clone https://github.com/utiasDSL/gym-pybullet-drones /tmp/gpd_src   # or use a checkout
    /tmp/gpd/bin/pip install --no-deps -e /tmp/gpd_src
    /tmp/gpd/bin/python scripts/peer_gym_speed.py --obs both --num-envs 1
    /tmp/gpd/bin/python scripts/peer_gym_speed.py --obs both --num-envs 2
"""

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import time

CAMERA_FPS = 24  # BaseAviary.IMG_FRAME_PER_SEC


def make_env(obs_name, ctrl_freq, pyb_freq):
    from gym_pybullet_drones.envs.HoverAviary import HoverAviary
    from gym_pybullet_drones.utils.enums import ActionType, ObservationType

    obs = ObservationType.RGB if obs_name == "rgb" else ObservationType.KIN
    # The env prints its URDF parameters on stdout; keep stdout for the JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            env = HoverAviary(
                pyb_freq=pyb_freq,
                ctrl_freq=ctrl_freq,
                gui=False,
                record=False,
                obs=obs,
                act=ActionType.RPM,
            )
        except SystemExit as e:  # BaseAviary calls exit() on incompatible frequencies
            raise RuntimeError(
                f"HoverAviary(obs={obs_name}, ctrl_freq={ctrl_freq}, pyb_freq={pyb_freq}) exited"
            ) from e
    return env


def worker(idx, args, obs_name, barrier, out):
    import numpy as np

    env = make_env(obs_name, args.ctrl_freq, args.pyb_freq)
    frames = [0]
    if hasattr(env, "_getDroneImages"):
        inner = env._getDroneImages

        def counted(*a, **kw):
            frames[0] += 1
            return inner(*a, **kw)

        env._getDroneImages = counted
    env.action_space.seed(args.seed + idx)
    with contextlib.redirect_stdout(sys.stderr):
        obs, _ = env.reset(seed=args.seed + idx)

    def run(n):
        nonlocal obs
        resets = 0
        reset_s = 0.0
        for _ in range(n):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                t = time.perf_counter()
                obs, _ = env.reset()
                reset_s += time.perf_counter() - t
                resets += 1
        return resets, reset_s

    run(args.warmup)
    frames[0] = 0
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes on Linux
    resets, reset_s = run(args.steps)
    end = time.perf_counter()
    res = dict(
        start=start,
        end=end,
        resets=resets,
        reset_s=reset_s,
        frames=frames[0],
        obs_shape=list(np.shape(obs)),
        obs_dtype=str(np.asarray(obs).dtype),
        img_res=[int(v) for v in env.IMG_RES] if getattr(env, "VISION_ATTR", False) else None,
        ctrl_freq=int(env.CTRL_FREQ),
        pyb_freq=int(env.PYB_FREQ),
        env_class=type(env).__name__,
        bases=[c.__name__ for c in type(env).__mro__[1:3]],
    )
    env.close()
    if out is None:
        return res
    out.put((idx, res))


def measure(args, obs_name):
    load_before = os.getloadavg()
    k = args.num_envs
    if k == 1:
        results = [worker(0, args, obs_name, None, None)]
    else:
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(k)
        out = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(i, args, obs_name, barrier, out)) for i in range(k)]
        for p in procs:
            p.start()
        results = [out.get()[1] for _ in range(k)]
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"worker exited with {p.exitcode}")
    load_after = os.getloadavg()
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    total = k * args.steps
    r0 = results[0]
    reset_s = sum(r["reset_s"] for r in results)
    line = dict(
        peer="gym-pybullet-drones",
        env_class=r0["env_class"],
        env_bases=r0["bases"],
        obs_type=obs_name.upper(),
        obs_shape=r0["obs_shape"],
        obs_dtype=r0["obs_dtype"],
        image=(
            dict(w=r0["img_res"][0], h=r0["img_res"][1], pixels=r0["img_res"][0] * r0["img_res"][1])
            if r0["img_res"]
            else None
        ),
        frames_rendered=sum(r["frames"] for r in results),
        ctrl_freq=r0["ctrl_freq"],
        pyb_freq=r0["pyb_freq"],
        num_envs=k,
        steps=total,
        warmup_steps=args.warmup,
        wall_s=round(wall, 4),
        steps_per_s=round(total / wall, 1),
        per_env_steps_per_s=[round(args.steps / (r["end"] - r["start"]), 1) for r in results],
        resets=sum(r["resets"] for r in results),
        reset_s=round(reset_s, 4),
        steps_per_s_excl_reset=round(total / (wall - reset_s / k), 1),
        loadavg_1m_before=round(load_before[0], 2),
        loadavg_1m_after=round(load_after[0], 2),
        cpus=os.cpu_count(),
    )
    print(json.dumps(line), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--obs", choices=["rgb", "kin", "both"], default="both")
    ap.add_argument("--steps", type=int, default=2000, help="measured steps per env")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--num-envs", type=int, default=1, help="independent env processes")
    ap.add_argument("--ctrl-freq", type=int, default=24, help="env steps per simulated second")
    ap.add_argument("--pyb-freq", type=int, default=240, help="PyBullet steps per simulated second")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.pyb_freq % args.ctrl_freq:
        ap.error("pyb_freq must be a multiple of ctrl_freq")
    if args.obs != "kin" and (args.pyb_freq // CAMERA_FPS) % (args.pyb_freq // args.ctrl_freq):
        ap.error(
            f"gym-pybullet-drones rejects obs=RGB at ctrl_freq={args.ctrl_freq}, "
            f"pyb_freq={args.pyb_freq}: pyb_freq/24 must be a multiple of pyb_freq/ctrl_freq"
        )
    for obs_name in (["rgb", "kin"] if args.obs == "both" else [args.obs]):
        measure(args, obs_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
