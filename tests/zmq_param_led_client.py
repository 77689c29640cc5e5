#!/usr/bin/env python3
"""A pyzmq client of the Crazyflie client's parameter (REQ → 1213) and LED-ring (PUSH → 1214)
servers, as `examples/zmqclientparam.py` and `zmqclientled.py` of cfclient use them, run against
`depthpilot sitl --zmq-param ... --zmq-led ...`. Prints one JSON object with what came back; the
e2e test `sitl_zmq::param_and_led_servers_*` asserts on it.

Usage: zmq_param_led_client.py PARAM_ENDPOINT LED_ENDPOINT [--keys DIR --key NAME]
With --keys, both sockets use CURVE with the keys `depthpilot keygen` writes: DIR/NAME.key,
DIR/NAME.pub and the server's DIR/server.pub (one Z85 line each).
"""
import json
import sys
import time

import zmq
import zmq_curve

param_ep, led_ep = sys.argv[1], sys.argv[2]
opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))


def secure(sock):
    if "--keys" in opts:
        zmq_curve.secure(sock, opts["--keys"], opts.get("--key", "cfclient"))


ctx = zmq.Context()
req = ctx.socket(zmq.REQ)
secure(req)
req.setsockopt(zmq.RCVTIMEO, 5000)
req.setsockopt(zmq.LINGER, 0)
req.connect(param_ep)
push = ctx.socket(zmq.PUSH)
secure(push)
push.setsockopt(zmq.LINGER, 1000)
push.connect(led_ep)
out = {}


def ask(msg):
    if isinstance(msg, bytes):
        req.send(msg)
    else:
        req.send_json(msg)
    return req.recv_json()


toc = ask({"version": 1, "cmd": "toc"})
out["toc_len"] = len(toc.get("toc", []))
out["toc_has_effect"] = any(p.get("name") == "ring.effect" for p in toc.get("toc", []))
# Malformed requests get an error reply; the next good one works.
out["bad_json"] = ask(b"{not json")
out["bad_cmd"] = ask({"version": 1, "cmd": "fly"})
out["unknown_param"] = ask({"version": 1, "cmd": "set", "name": "nothere.atall", "value": "1"})
# Switch the ring to the LED memory effect (13), as a user of the LED server must.
out["set_effect"] = ask({"version": 1, "cmd": "set", "name": "ring.effect", "value": "13"})
out["set_float"] = ask({"version": 1, "cmd": "set", "name": "pid_rate.roll_kp", "value": 200.5})

# LED ring: a bad message (skipped), then a pattern.
push.send(b"garbage")
push.send_json({"version": 1, "rgbleds": [[1, 2]]})
pattern = [[0, 0, 0]] * 12
pattern[0] = [255, 0, 0]
pattern[3] = [0, 255, 0]
pattern[6] = [0, 0, 255]
pattern[9] = [255, 255, 255]
push.send_json({"version": 1, "rgbleds": pattern})
time.sleep(0.5)
out["pattern"] = pattern
print(json.dumps(out))
