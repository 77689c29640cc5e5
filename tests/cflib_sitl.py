#!/usr/bin/env python3
"""Drives `depthpilot sitl` with Bitcraze's own Python library (cflib 0.1.34 from PyPI), the way
a user would, and prints one JSON object with what it measured. The e2e test
`sitl::cflib_connects_logs_sets_params_and_flies` runs it and asserts on the figures.

Steps: scan finds the simulated Crazyflie; connect to fully-connected; read, write and read back
a parameter; stream stateEstimate.z at 50 Hz; unlock the thrust and climb; go silent for 2.5 s
and watch the firmware's watchdog cut the motors.
"""
import json
import sys
import threading
import time

import cflib.crtp
from cflib.crazyflie import Crazyflie
from cflib.crazyflie.log import LogConfig

uri = sys.argv[1] if len(sys.argv) > 1 else "udp://127.0.0.1:19850"
out = {"uri": uri}


def fail(msg):
    out["error"] = msg
    print(json.dumps(out))
    sys.exit(1)


cflib.crtp.init_drivers()
t0 = time.time()
found = [u[0] for u in cflib.crtp.scan_interfaces()]
out["scan"] = found
out["scan_s"] = round(time.time() - t0, 3)

cf = Crazyflie(rw_cache=None)
fully = threading.Event()
failed = []
cf.fully_connected.add_callback(lambda _uri: fully.set())
cf.connection_failed.add_callback(lambda _uri, msg: failed.append(msg))
cf.connection_lost.add_callback(lambda _uri, msg: failed.append("lost: " + msg))
t0 = time.time()
cf.open_link(uri)
if not fully.wait(20):
    fail("not fully connected within 20 s: %s" % failed)
out["connect_s"] = round(time.time() - t0, 3)
out["protocol_version"] = cf.platform.get_protocol_version()
out["log_toc_size"] = len(cf.log.toc.toc and [1 for g in cf.log.toc.toc.values() for _ in g])
out["param_toc_size"] = len([1 for g in cf.param.toc.toc.values() for _ in g])

# Parameter: read, write, read back from the Crazyflie (not from cflib's cache).
name = "ring.effect"
out["param_before"] = cf.param.get_value(name)
updates = []
got = threading.Event()


def on_update(n, v):
    updates.append((n, v))
    got.set()


cf.param.add_update_callback(group="ring", name="effect", cb=on_update)
cf.param.set_value(name, "7")
if not got.wait(5):
    fail("no confirmation of the param write")
got.clear()
cf.param.request_param_update(name)
if not got.wait(5):
    fail("no param read-back")
out["param_after"] = updates[-1][1]

# Log block: stateEstimate.z (and motors) every 20 ms.
samples = []
lc = LogConfig(name="z", period_in_ms=20)
lc.add_variable("stateEstimate.z", "float")
lc.add_variable("motor.m1", "uint32_t")
lc.add_variable("motor.m3", "uint32_t")
lc.data_received_cb.add_callback(lambda ts, data, _lc: samples.append((time.time(), ts, data)))
cf.log.add_config(lc)
lc.start()
time.sleep(2.0)
window = [s for s in samples if s[0] >= samples[0][0] + 0.5] if samples else []
if len(window) < 2:
    fail("no log data")
span_ms = window[-1][1] - window[0][1]
out["log_rate_hz"] = round((len(window) - 1) / (span_ms / 1000.0), 2)
out["log_wall_rate_hz"] = round((len(window) - 1) / (window[-1][0] - window[0][0]), 2)
out["z_start_m"] = round(samples[-1][2]["stateEstimate.z"], 4)

# Unlock (one zero-thrust packet), then 45000 for 1.5 s at 100 Hz: the quad must climb.
for _ in range(10):
    cf.commander.send_setpoint(0.0, 0.0, 0.0, 0)
    time.sleep(0.01)
t_climb = time.time()
while time.time() - t_climb < 1.5:
    cf.commander.send_setpoint(0.0, 0.0, 0.0, 45000)
    time.sleep(0.01)
out["z_after_climb_m"] = round(samples[-1][2]["stateEstimate.z"], 4)
out["motor_m1_climbing"] = samples[-1][2]["motor.m1"]

# Silence: the firmware levels after 0.5 s and cuts the motors after 2 s.
t_silent = time.time()
time.sleep(2.6)
cut = [s for s in samples if s[0] >= t_silent and s[2]["motor.m1"] == 0 and s[2]["motor.m3"] == 0]
out["motors_cut_after_s"] = round(cut[0][0] - t_silent, 3) if cut else None
out["motor_m1_end"] = samples[-1][2]["motor.m1"]
lc.stop()
cf.close_link()
print(json.dumps(out))
