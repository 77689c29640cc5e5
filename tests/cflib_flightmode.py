#!/usr/bin/env python3
"""cflib 0.1.34 switches `flightmode.stabModeRoll` of `depthpilot sitl` between angle (1, the
default) and rate (0) mode and flies the same roll input both ways, logging the roll angle and
the roll rate (`stabilizer.roll`, `gyro.x`). Prints one JSON object; the e2e test
`sitl::cflib_switches_the_roll_axis_to_rate_mode` asserts on it.

In angle mode a roll input of 20 settles at a 20° angle; in rate mode the same kind of input is a
rate: 90 gives about 90 deg/s of roll rate.
"""
import json
import sys
import threading
import time

import cflib.crtp
from cflib.crazyflie import Crazyflie
from cflib.crazyflie.log import LogConfig

uri = sys.argv[1]
cflib.crtp.init_drivers()
cf = Crazyflie(rw_cache=None)
ready = threading.Event()
cf.fully_connected.add_callback(lambda _u: ready.set())
cf.open_link(uri)
if not ready.wait(20):
    print(json.dumps({"error": "not connected"}))
    sys.exit(1)

samples = []
lc = LogConfig(name="att", period_in_ms=10)
for v in ("stabilizer.roll", "gyro.x", "stateEstimate.z"):
    lc.add_variable(v, "float")
lc.data_received_cb.add_callback(lambda ts, d, _l: samples.append((ts, d)))
cf.log.add_config(lc)
lc.start()
out = {"stab_mode_roll_default": cf.param.get_value("flightmode.stabModeRoll")}


def fly(seconds, roll, thrust):
    t0 = time.time()
    while time.time() - t0 < seconds:
        cf.commander.send_setpoint(roll, 0.0, 0.0, thrust)
        time.sleep(0.01)


def window(t_from_ms, t_to_ms):
    return [d for ts, d in samples if t_from_ms <= ts <= t_to_ms]


def now_ms():
    return samples[-1][0]


got = threading.Event()
cf.param.add_update_callback(group="flightmode", name="stabModeRoll", cb=lambda n, v: got.set())

# Take off level in angle mode.
for _ in range(5):
    cf.commander.send_setpoint(0.0, 0.0, 0.0, 0)
    time.sleep(0.01)
fly(0.6, 0.0, 44000)
# Angle mode: roll input 20 for 0.5 s -> the angle settles at about 20 deg, the rate near 0.
t0 = now_ms()
fly(0.5, 20.0, 44000)
w = window(t0 + 300, now_ms())
out["angle_mode_roll_deg"] = round(sum(d["stabilizer.roll"] for d in w) / len(w), 2)
out["angle_mode_rate_deg_s"] = round(sum(d["gyro.x"] for d in w) / len(w), 2)
fly(0.5, 0.0, 44000)

# Rate mode: the same axis now takes a rate.
cf.param.set_value("flightmode.stabModeRoll", "0")
if not got.wait(5):
    print(json.dumps({"error": "param write not confirmed"}))
    sys.exit(1)
out["stab_mode_roll_after"] = cf.param.get_value("flightmode.stabModeRoll")
t0 = now_ms()
fly(0.4, 90.0, 44000)
w = window(t0 + 150, now_ms())
out["rate_mode_rate_deg_s"] = round(sum(d["gyro.x"] for d in w) / len(w), 2)
out["rate_mode_roll_change_deg"] = round(w[-1]["stabilizer.roll"] - w[0]["stabilizer.roll"], 2)
fly(0.2, 0.0, 0)
lc.stop()
cf.close_link()
print(json.dumps(out))
