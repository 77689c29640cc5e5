#!/usr/bin/env python3
"""The peer's speed on the same job as `depthpilot bench scenes/hover_kinect.ron` (issue 22):
gym-pybullet-drones flying one Crazyflie (cf2x) to a 1 m hover for 12 s of simulated time with
its PID controller (DSLPIDControl), rendering a 512x424 depth image (the Kinect v2's size) 30
times a second with PyBullet's camera (`BaseAviary._getDroneImages`, the env's own vision path,
without the segmentation mask). Prints the real-time factor on one line.

Not a dependency of depthpilot: `scripts/peer_speed` runs it in a scratch venv.
"""

import sys
import time

import numpy as np
from gym_pybullet_drones.control.DSLPIDControl import DSLPIDControl
from gym_pybullet_drones.envs.CtrlAviary import CtrlAviary
from gym_pybullet_drones.utils.enums import DroneModel, Physics

SIM_S = 12.0
FPS = 30
WIDTH, HEIGHT = 512, 424


def main() -> int:
    pyb_hz = int(sys.argv[1]) if len(sys.argv) > 1 else 240
    env = CtrlAviary(
        drone_model=DroneModel.CF2X,
        num_drones=1,
        initial_xyzs=np.array([[0.0, 0.0, 0.05]]),
        physics=Physics.PYB,
        pyb_freq=pyb_hz,
        ctrl_freq=pyb_hz,
        gui=False,
        record=False,
        obstacles=False,
        user_debug_gui=False,
    )
    env.IMG_RES = np.array([WIDTH, HEIGHT])
    ctrl = DSLPIDControl(drone_model=DroneModel.CF2X)
    obs, _ = env.reset()
    target = np.array([0.0, 0.0, 1.0])
    action = np.zeros((1, 4))
    steps = int(SIM_S * env.CTRL_FREQ)
    every = max(1, round(env.CTRL_FREQ / FPS))
    frames = 0
    start = time.perf_counter()
    for i in range(steps):
        obs, _, _, _, _ = env.step(action)
        if i % every == 0:
            _, dep, _ = env._getDroneImages(0, segmentation=False)
            assert dep.shape == (HEIGHT, WIDTH), dep.shape
            frames += 1
        action[0, :], _, _ = ctrl.computeControlFromState(
            control_timestep=env.CTRL_TIMESTEP, state=obs[0], target_pos=target
        )
    wall = time.perf_counter() - start
    env.close()
    z = float(obs[0][2])
    print(
        f"gym-pybullet-drones: {SIM_S:.0f} s simulated in {wall:.2f} s wall = "
        f"{SIM_S / wall:.3f}x real time ({steps} PyBullet steps at {pyb_hz} Hz, {frames} depth "
        f"frames {WIDTH}x{HEIGHT}); final height {z:.3f} m"
    )
    return 0 if abs(z - 1.0) < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
