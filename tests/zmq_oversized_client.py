#!/usr/bin/env python3
"""Issue 20: a receiving socket refuses a message over its limit without allocating it, and
keeps serving others.

  zmq_oversized_client.py teacher PORT MEGABYTES   PUSH to a PULL (`depthpilot teach`): one
      oversized message, then small valid teacher messages: one on the same PUSH socket
      (roll 3), one on a fresh PUSH socket (roll -4)
  zmq_oversized_client.py pub PORT MEGABYTES       PUB to a bound SUB (the split's measurement
      endpoint): one oversized message on the topic `vision/measurement`

Prints one line per step on stdout (`sent oversized`, `sent same-socket`, `sent fresh-socket`).
"""
import json
import sys
import time

import zmq


def main() -> int:
    kind, port, megabytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    endpoint = f"tcp://127.0.0.1:{port}"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB if kind == "pub" else zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 3000)
    sock.connect(endpoint)
    time.sleep(0.5)  # the connection, and for a PUB the subscription, settles
    big = b" " * (megabytes * 1024 * 1024)
    if kind == "pub":
        sock.send_multipart([b"vision/measurement", big], copy=False)
    else:
        sock.send(big, copy=False)
    del big
    print("sent oversized", flush=True)
    if kind == "pub":
        time.sleep(1.0)
        sock.close(linger=0)
        ctx.term()
        return 0
    time.sleep(1.0)

    def good(roll):
        return json.dumps({"version": 1, "client_name": "oversized test",
                           "ctrl": {"roll": roll, "pitch": 0.0, "yaw": 0.0, "thrust": 40.0}})

    sock.send_string(good(3.0))
    print("sent same-socket", flush=True)
    time.sleep(0.5)
    fresh = ctx.socket(zmq.PUSH)
    fresh.setsockopt(zmq.LINGER, 2000)
    fresh.connect(endpoint)
    time.sleep(0.3)
    fresh.send_string(good(-4.0))
    print("sent fresh-socket", flush=True)
    time.sleep(0.5)
    fresh.close()
    sock.close(linger=0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
