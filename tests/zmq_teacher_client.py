#!/usr/bin/env python3
"""Drives `depthpilot teach` the way the Crazyflie client's ZMQ input device is driven
(cfclient examples/zmqclientinput.py): PUSH + connect, JSON messages with a `ctrl` object.

Sends a good message, then each kind of bad message (not JSON, no `ctrl`, a wrong value type,
an oversized message), then another good message. Usage:

    zmq_teacher_client.py PORT                      # NULL, the full sequence
    zmq_teacher_client.py PORT --keys DIR --key NAME --roll DEG
        # CURVE (as `depthpilot keygen` writes keys: DIR/NAME.key, DIR/NAME.pub and the server's
        # DIR/server.pub, one Z85 line each): one good message with this roll, for 1 s
"""
import json
import sys
import time

import zmq
from zmq_curve import secure


def main() -> int:
    port = int(sys.argv[1])
    opts = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    if "--keys" in opts:
        secure(sock, opts["--keys"], opts.get("--key", "pilot"))
    sock.connect(f"tcp://127.0.0.1:{port}")
    if "--roll" in opts:
        msg = {"version": 1, "client_name": "depthpilot test", "ctrl": {"roll": float(opts["--roll"]), "thrust": 40.0}}
        sent = 0
        for _ in range(10):
            # A PUSH with no peer (a refused handshake) would block: do not wait for one.
            try:
                sock.send_string(json.dumps(msg), flags=zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                pass
            time.sleep(0.1)
        print(f"sent {sent} of 10")
        sock.close(linger=0)
        ctx.term()
        return 0
    time.sleep(0.3)  # let the connection settle (PUSH queues, but be kind to slow joiners)

    def send(obj):
        sock.send_string(json.dumps(obj))

    good1 = {"version": 1, "client_name": "depthpilot test", "ctrl": {"roll": 5.0, "pitch": 0.0, "yaw": 0.0, "thrust": 40.0}}
    send(good1)
    time.sleep(0.4)
    sock.send_string("{this is not json")
    send({"version": 1, "client_name": "no ctrl here"})
    send({"version": 1, "ctrl": {"roll": "fast", "thrust": 90.0}})
    sock.send_string(json.dumps({"version": 1, "ctrl": {"roll": 1.0}, "pad": "x" * 20000}))
    time.sleep(0.2)
    send({"version": 1, "client_name": "depthpilot test", "ctrl": {"roll": -7.0, "thrust": 50.0, "unknown_key": 3}})
    time.sleep(0.5)
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
