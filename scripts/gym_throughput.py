#!/usr/bin/env python3
"""Steps per second of depthpilot's native vector environment against the number of worlds, in
the form of crazyflow's published chart: num_envs 1, 16, 64, 256, with depth and without.

    .venv/bin/python scripts/gym_throughput.py                 # the table in README "Python"
    .venv/bin/python scripts/gym_throughput.py --seconds 5 --num-envs 1 16

A step is one radio period (10 ms of flight; the physics runs 10 steps of 1 ms under it).
"state": DepthPilot/Hover-v0, obs="state" (nothing is rendered). "depth": DepthPilot/HoverKinect-v0
with the depth observation (the synthetic Kinect renders every frame at 30 Hz and the vision runs
on it; --stride takes every k-th pixel of the 512 x 424 image into the observation).
Random actions within the residual action space (the cascade flies; episodes rarely end early).
Prints one JSON line per configuration, then a Markdown table.
"""

import argparse
import json
import os
import time

import numpy as np

from depthpilot.envs import DepthPilotVectorEnv


def measure(obs, num_envs, seconds, threads, stride):
    env_id = "DepthPilot/Hover-v0" if obs == "state" else "DepthPilot/HoverKinect-v0"
    kw = {"obs": "state"} if obs == "state" else {"obs": "depth", "depth_downsample": stride}
    venv = DepthPilotVectorEnv(num_envs, env_id=env_id, action="residual", threads=threads, **kw)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = venv.single_action_space.low, venv.single_action_space.high
    actions = lambda: rng.uniform(low * 0.1, high * 0.1, size=(num_envs, 4))
    for _ in range(5):  # warm-up
        venv.step(actions())
    steps, t0 = 0, time.perf_counter()
    while True:
        venv.step(actions())
        steps += 1
        wall = time.perf_counter() - t0
        if wall >= seconds and steps >= 3:
            break
    pixels = 0
    if obs == "depth":
        rows, cols = venv.description["depth_shape"]
        pixels = rows * cols
    venv.close()
    return {
        "obs": obs,
        "num_envs": num_envs,
        "threads": venv.threads if hasattr(venv, "threads") else threads,
        "depth_pixels": pixels,
        "vector_steps": steps,
        "wall_s": round(wall, 3),
        "env_steps_per_s": round(steps * num_envs / wall, 1),
        "sim_seconds_per_s": round(steps * num_envs * 0.01 / wall, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--obs", nargs="+", default=["state", "depth"], choices=["state", "depth"])
    ap.add_argument("--seconds", type=float, default=10.0, help="wall time per configuration")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--stride", type=int, default=1, help="depth subsampling (1: 512 x 424)")
    args = ap.parse_args()
    rows = []
    for obs in args.obs:
        for n in args.num_envs:
            r = measure(obs, n, args.seconds, min(args.threads, n), args.stride)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print()
    print(f"| num_envs | state: steps/s | depth ({rows[-1]['depth_pixels'] if args.obs[-1] == 'depth' else '-'} px): steps/s |")
    print("|---|---|---|")
    for n in args.num_envs:
        cells = []
        for obs in ("state", "depth"):
            m = [r for r in rows if r["obs"] == obs and r["num_envs"] == n]
            cells.append(f"{m[0]['env_steps_per_s']:,.0f}" if m else "-")
        print(f"| {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
