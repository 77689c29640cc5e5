#!/usr/bin/env python3
"""Kinect v2 acquisition bridge for depthpilot.

Reads a Kinect v2 with libfreenect2 (through pylibfreenect2) and publishes every depth frame
(512 x 424, u16 millimetres, 0 = invalid) and IR frame, with the device's own IR-camera
intrinsics, on a ZMQ PUB socket: protocol version 1, hil/PROTOCOL.md. depthpilot connects to it
(a rig's `camera: KinectBridge(endpoint: "tcp://127.0.0.1:7720")`).

  kinect_bridge.py [--bind tcp://127.0.0.1:7720] [--serial SERIAL]   stream a real Kinect v2
  kinect_bridge.py --self-test ENDPOINT [--frames N]   synthetic frames: no device, no numpy

Binds are loopback only (tcp://127.0.0.1, tcp://[::1], tcp://localhost, ipc://, inproc://):
without keys the socket has no authentication and no encryption, and publishes live depth and
IR video of the room. From another host, tunnel (ssh -L 7720:127.0.0.1:7720 THIS_HOST), or pass
--insecure to bind elsewhere (e.g. tcp://*:7720) and accept the risk; it prints a WARNING.

With --keys DIR the socket is a CURVE server (authenticated, encrypted) and may bind any
interface without --insecure: DIR/server.key and DIR/server.pub are its key pair, and only the
clients whose public keys are in DIR/allow/bridge/*.pub get frames (the ZAP domain "bridge"; a
key allowed for another role, e.g. the bus, is refused). Keys are `depthpilot keygen` files: one
line of Z85 each. Every denied client and failed handshake is printed and counted; the counts
are printed at exit. Clients: `depthpilot record --bridge-keys DIR --bridge-key NAME`.

The self-test binds ENDPOINT, waits for a subscriber, then publishes N frames of a flat plane at
2000 mm with a 40 x 40 px square 200 mm nearer that moves 8 px right per frame, with the
KINECT_V2_DEVICE2 intrinsics, through the same encoder as the device path. It needs only pyzmq.

Status messages (topic kinect/status): "streaming" once frames flow, "stalled" after
--stall-after seconds without a frame (5 s before the first one), "streaming" again when frames
return, "no_device" when there is no Kinect v2; the current state is repeated every second.

Exit codes: 0 stopped by SIGINT/SIGTERM, or self-test done; 1 an error (the message says which);
2 no usable Kinect v2 (or bad arguments); 3 a Python package is missing.

Install (Debian 12 / Ubuntu 22.04 or newer), once per machine. The Kinect v2 needs a USB 3
port and its own power supply.
  1. sudo apt-get install build-essential cmake pkg-config libusb-1.0-0-dev \\
         libturbojpeg0-dev libglfw3-dev
     optional, faster depth decoding: OpenCL (ocl-icd-opencl-dev and your GPU's ICD) or VA-API
     (libva-dev libjpeg-dev).
  2. git clone https://github.com/OpenKinect/libfreenect2 && cd libfreenect2
     mkdir build && cd build
     cmake .. -DCMAKE_INSTALL_PREFIX=$HOME/freenect2
     make -j2 && make install
  3. sudo cp ../platform/linux/udev/90-kinect2.rules /etc/udev/rules.d/
     sudo udevadm control --reload-rules && sudo udevadm trigger     # then re-plug the Kinect
  4. ./bin/Protonect cpu       # shows IR, depth and colour: the device works
  5. python3 -m pip install numpy cython pyzmq
     LIBFREENECT2_INSTALL_PREFIX=$HOME/freenect2 python3 -m pip install pylibfreenect2
     (if its build cannot find numpy or Cython, add --no-build-isolation)
  6. export LD_LIBRARY_PATH=$HOME/freenect2/lib:$LD_LIBRARY_PATH   # in the bridge's shell
     python3 hil/kinect_bridge/kinect_bridge.py

Troubleshooting: `lsusb -d 045e:02c4` (or 045e:02d8) lists the sensor; "insufficient
permissions" means the udev rule of step 3 is missing; a crash right after libfreenect2 says
"failed to open Kinect v2" is the same; without a display use --pipeline cpu or opencl.
"""

import argparse
import json
import math
import os
import signal
import sys
import time
from array import array

PROTOCOL_VERSION = 1
TOPIC_FRAME = b"kinect/frame"
TOPIC_STATUS = b"kinect/status"
STATES = ("streaming", "stalled", "no_device", "error")
WIDTH, HEIGHT = 512, 424
PIXELS = WIDTH * HEIGHT
IMAGE_BYTES = PIXELS * 2
DEPTH_FORMAT = "u16_mm_le"
DEFAULT_BIND = "tcp://127.0.0.1:7720"
INTRINSIC_KEYS = ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "p1", "p2")
# Factory intrinsics of a real device (libfreenect2 issue 41, device 2); depthpilot's
# Intrinsics::KINECT_V2_DEVICE2.
DEVICE2_INTRINSICS = {
    "fx": 365.402802, "fy": 365.402802, "cx": 260.925507, "cy": 205.594604,
    "k1": 0.095575, "k2": -0.277055, "k3": 0.097539, "p1": 0.0, "p2": 0.0,
}
TICK_US = 125  # libfreenect2 Frame::timestamp counts 0.125 ms
FIRST_FRAME_GRACE_S = 5.0
STATUS_EVERY_S = 1.0
KINECT2_USB_IDS = (("045e", "02c4"), ("045e", "02d8"))
EXIT_OK, EXIT_ERROR, EXIT_NO_DEVICE, EXIT_MISSING = 0, 1, 2, 3

# The self-test scene.
PLANE_MM = 2000.0
SQUARE_MM = 1800.0
SQUARE_PX = 40
SQUARE_ROW = 180
# Row 0 starts with values that test the conversion: they become 0,0,0,0,0,0,1235,65535.
DEPTH_PROBES = (float("nan"), float("inf"), float("-inf"), -5.0, 0.3, 70000.0, 1234.5, 65535.4)
# IR: baseline 1000, square 30000; row 0 starts with values that become 0,0,65535,124.
IR_PROBES = (float("nan"), -1.0, 70000.0, 123.5)


def log(message):
    print(f"kinect_bridge: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Encoding: pure Python, shared by the device path and the self-test.

def depth_mm_to_u16(values):
    """libfreenect2 float depth (mm) to u16 mm. Non-positive, NaN and infinite values, and values
    that do not round into 1..65535, become 0 (invalid); the rest round half up. The same rule as
    depthpilot's DepthFrame::from_f32_mm."""
    return [int(v + 0.5) if 0.5 < v < 65535.5 else 0 for v in values]


def ir_to_u16(values):
    """IR amplitude (libfreenect2: float, 0..65535) to u16: NaN and negative to 0, clamped at
    65535, rounded half up."""
    return [(65535 if v >= 65535.0 else int(v + 0.5)) if v > 0.0 else 0 for v in values]


def u16le(values):
    """A sequence of ints in 0..65535 as little-endian u16 bytes."""
    a = array("H", values)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def check_intrinsics(k):
    """The nine intrinsics as floats; ValueError naming the field if one is unusable."""
    out = {}
    for key in INTRINSIC_KEYS:
        value = float(k[key])
        if not math.isfinite(value) or (key in ("fx", "fy") and value <= 0.0):
            raise ValueError(f"intrinsics.{key} = {value} is not usable")
        out[key] = value
    return out


def encode_frame(seq, device_stamp_us, host_stamp_ns, intrinsics, serial, depth_le, ir_le=None):
    """The parts of one kinect/frame message: [topic, header JSON, depth] (+ [IR])."""
    for name, image in (("depth", depth_le), ("IR", ir_le)):
        if image is not None and len(image) != IMAGE_BYTES:
            raise ValueError(f"{name} is {len(image)} bytes, expected {IMAGE_BYTES}")
    header = {
        "version": PROTOCOL_VERSION,
        "seq": int(seq),
        "device_stamp_us": int(device_stamp_us),
        "host_stamp_ns": int(host_stamp_ns),
        "width": WIDTH,
        "height": HEIGHT,
        "depth_format": DEPTH_FORMAT,
        "ir": ir_le is not None,
        "intrinsics": {key: float(intrinsics[key]) for key in INTRINSIC_KEYS},
        "serial": serial,
    }
    body = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    parts = [TOPIC_FRAME, body, bytes(depth_le)]
    if ir_le is not None:
        parts.append(bytes(ir_le))
    return parts


def encode_status(state, message):
    """The parts of one kinect/status message."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    body = {"version": PROTOCOL_VERSION, "state": state, "message": message}
    return [TOPIC_STATUS, json.dumps(body, separators=(",", ":")).encode("utf-8")]


# The device path's converters: numpy, because pylibfreenect2 hands out numpy arrays. They must
# give exactly what the pure ones give (the self-test checks it when numpy is installed).

def depth_to_u16le_numpy(np, depth):
    d = np.asarray(depth, dtype=np.float64).reshape(-1)
    out = np.zeros(d.shape, dtype="<u2")
    with np.errstate(invalid="ignore"):
        valid = (d > 0.5) & (d < 65535.5)
    out[valid] = np.floor(d[valid] + 0.5)
    return out.tobytes()


def ir_to_u16le_numpy(np, ir):
    d = np.asarray(ir, dtype=np.float64).reshape(-1)
    d = np.nan_to_num(d, nan=0.0, posinf=65535.0, neginf=0.0)
    return np.floor(np.clip(d, 0.0, 65535.0) + 0.5).astype("<u2").tobytes()


def cross_check_numpy():
    """None if numpy is absent or agrees with the pure converters, else what differs."""
    try:
        import numpy as np
    except ImportError:
        return None
    probes = list(DEPTH_PROBES) + list(IR_PROBES) + [0.49, 0.51, 2.5, 65534.6, 65535.0, 1e9]
    array32 = np.array(probes + [1000.0] * (PIXELS - len(probes)), dtype=np.float32)
    values32 = [float(v) for v in array32]
    if depth_to_u16le_numpy(np, array32) != u16le(depth_mm_to_u16(values32)):
        return "numpy and pure-Python depth conversions differ"
    if ir_to_u16le_numpy(np, array32) != u16le(ir_to_u16(values32)):
        return "numpy and pure-Python IR conversions differ"
    return None


# ------------------------------------------------------------------------------------------
# ZMQ.

def import_zmq():
    try:
        import zmq
    except ImportError:
        log("pyzmq is not installed: python3 -m pip install pyzmq")
        return None
    return zmq


def endpoint_is_loopback(endpoint):
    """True for a loopback endpoint, False for any other; ValueError for garbage. The same rule
    as depthpilot's `depthpilot_types::netpolicy::classify`."""
    import ipaddress
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: no `scheme://`")
    if scheme in ("ipc", "inproc"):
        if not rest:
            raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: empty name")
        return True
    if scheme != "tcp":
        raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: scheme `{scheme}` is not one we "
                         "use (tcp, ipc, inproc)")
    host, sep, port = rest.rpartition(":")
    if not sep:
        raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: no `:port`")
    if port != "*" and not (port.isdigit() and int(port) <= 65535):
        raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: the port is not `*` or a number "
                         "0-65535")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: no host, or whitespace in it")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"`{endpoint}` is not a ZMQ endpoint: unclosed `[`")
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # `*`, a host or an interface name


def check_bind(endpoint, insecure, curve=False):
    """Refuses (RuntimeError) a non-loopback bind without --insecure; warns with it. With CURVE
    (--keys) any interface is fine: every subscriber must hold an allowed key."""
    try:
        loopback = endpoint_is_loopback(endpoint)
    except ValueError as e:
        raise RuntimeError(str(e)) from e
    if loopback or curve:
        return
    if not insecure:
        raise RuntimeError(
            f"refusing to bind the Kinect bridge socket to `{endpoint}`: it is not loopback, and "
            "the socket has no authentication or encryption (ZMQ NULL mechanism), so anyone who "
            "reaches this host could watch live depth and IR video of the room. Authenticate it "
            "with CURVE keys (--keys DIR; `depthpilot keygen`), or bind loopback "
            "(tcp://127.0.0.1:PORT) and tunnel from the other host (`ssh -L "
            "PORT:127.0.0.1:PORT THIS_HOST`), or pass --insecure to accept the risk")
    log(f"WARNING: --insecure: the Kinect bridge socket is bound to `{endpoint}` without "
        "authentication or encryption; anyone who reaches this host can watch live depth and IR "
        "video of the room")


# ------------------------------------------------------------------------------------------
# CURVE (--keys DIR): the same key files, allow-list layout and ZAP domain as depthpilot's
# `crates/runtime/src/curve.rs`.

ZAP_DOMAIN = "bridge"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
KEY_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def read_key(path):
    """One Z85 key (40 characters) from `path`, as 32 bytes; RuntimeError naming the file."""
    from zmq.utils import z85
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise RuntimeError(f"{path}: {e}") from e
    if len(text) != 40:
        raise RuntimeError(f"{path}: a CURVE key is 40 Z85 characters, this is {len(text)}")
    try:
        key = z85.decode(text.encode("ascii"))
    except Exception as e:  # pyzmq raises ValueError or KeyError on a bad character
        raise RuntimeError(f"{path}: not a Z85 key ({e})") from e
    if len(key) != 32 or z85.encode(key).decode("ascii") != text:
        raise RuntimeError(f"{path}: not a Z85 key")
    return key


def load_keys(directory):
    """(server public, server secret, {client public key: name}) from a keys directory:
    server.pub, server.key and allow/bridge/NAME.pub. RuntimeError naming what is wrong; an
    empty allow-list is an error (nobody could connect)."""
    server_public = read_key(os.path.join(directory, "server.pub"))
    server_secret = read_key(os.path.join(directory, "server.key"))
    allow_dir = os.path.join(directory, "allow", ZAP_DOMAIN)
    allowed = {}
    try:
        names = sorted(os.listdir(allow_dir))
    except OSError:
        names = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if not (dot and ext == "pub" and stem and not stem.startswith(".")
                and set(stem) <= KEY_NAME_CHARS):
            raise RuntimeError(f"{os.path.join(allow_dir, name)}: not a client's public key "
                               "(expected NAME.pub)")
        allowed[read_key(os.path.join(allow_dir, name))] = stem
    if not allowed:
        raise RuntimeError(
            f"--keys {directory}: no client may connect: {allow_dir} is empty or missing; copy "
            "a client's .pub there (`depthpilot keygen --name vision` makes one)")
    return server_public, server_secret, allowed


class Curve:
    """The ZAP handler of the publisher's context and a monitor of its socket, in one thread:
    answers every CURVE handshake from the `bridge` allow-list, prints and counts each denial
    and each failed handshake (a client without CURVE, or with a wrong server key, never
    reaches ZAP: the monitor sees it)."""

    def __init__(self, zmq, ctx, allowed):
        import threading
        self.zmq = zmq
        self.allowed = allowed
        self.accepted = self.denied = self.failed = 0
        self.zap = ctx.socket(zmq.REP)
        self.zap.setsockopt(zmq.LINGER, 0)
        self.zap.bind(ZAP_ENDPOINT)
        self.monitor = None
        self.running = True
        self.thread = threading.Thread(target=self._run, name="zap-handler", daemon=True)

    def watch(self, sock):
        """Monitors `sock` (before bind) and starts the thread."""
        z = self.zmq
        events = (z.EVENT_HANDSHAKE_FAILED_AUTH | z.EVENT_HANDSHAKE_FAILED_PROTOCOL
                  | z.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        self.monitor = sock.get_monitor_socket(events)
        self.thread.start()

    def _reply(self, frames):
        from zmq.utils import z85
        if len(frames) < 6 or frames[0] != b"1.0":
            return [b"1.0", frames[1] if len(frames) > 1 else b"", b"500",
                    b"malformed ZAP request", b"", b""]
        request_id, domain, address, mechanism = frames[1], frames[2], frames[3], frames[5]
        def text(b):
            return b.decode("utf-8", "replace")
        key = frames[6] if mechanism == b"CURVE" and len(frames) > 6 else None
        if key is None:
            self.denied += 1
            log(f"CURVE: denied a {text(mechanism)} client at {text(address)} on the "
                f"`{text(domain)}` role: only CURVE clients are accepted")
            return [b"1.0", request_id, b"400", b"CURVE required", b"", b""]
        name = self.allowed.get(key) if text(domain) == ZAP_DOMAIN else None
        if name is None:
            self.denied += 1
            log(f"CURVE: denied client key {z85.encode(key).decode('ascii')} at "
                f"{text(address)} on the `{text(domain)}` role: not in its allow-list "
                f"(keys/allow/{ZAP_DOMAIN}/)")
            return [b"1.0", request_id, b"400", b"key not allowed for this role", b"", b""]
        self.accepted += 1
        log(f"CURVE: subscriber `{name}` at {text(address)} authenticated")
        return [b"1.0", request_id, b"200", b"OK", name.encode("utf-8"), b""]

    def _why(self, event, value):
        z = self.zmq
        if event == z.EVENT_HANDSHAKE_FAILED_AUTH:
            return f"authentication failed (ZAP status {value})"
        if event == z.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            # ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, _CRYPTOGRAPHIC (zmq.h)
            return {0x11000002: "the peer does not use CURVE (mechanism mismatch)",
                    0x11000001: "cryptographic error (the client has the wrong server key?)",
                    }.get(value, f"protocol error {value:#x} (ZMQ_PROTOCOL_ERROR_* in zmq.h)")
        return f"the connection ended during the handshake ({os.strerror(value)})"

    def _run(self):
        from zmq.utils.monitor import recv_monitor_message
        z = self.zmq
        poller = z.Poller()
        poller.register(self.zap, z.POLLIN)
        poller.register(self.monitor, z.POLLIN)
        while self.running:
            try:
                ready = dict(poller.poll(50))
                if self.zap in ready:
                    self.zap.send_multipart(self._reply(self.zap.recv_multipart()))
                if self.monitor in ready:
                    event = recv_monitor_message(self.monitor)
                    self.failed += 1
                    log(f"CURVE: bridge server socket at "
                        f"{event['endpoint'].decode('utf-8', 'replace')}: handshake failed: "
                        f"{self._why(event['event'], event['value'])}")
            except z.ZMQError:
                return

    def summary(self):
        return (f"CURVE: {self.accepted} subscriber(s) accepted, {self.denied} denied, "
                f"{self.failed} failed handshake(s)")

    def close(self):
        self.running = False
        if self.thread.is_alive():
            self.thread.join()
        if self.monitor is not None:
            self.monitor.close()
        self.zap.close()


class Publisher:
    """An XPUB (a PUB that also hears subscriptions, so that we can log them and the self-test
    can wait for its subscriber) bound at `endpoint`; with `keys_dir`, a CURVE server of the
    `bridge` role (a denied client never subscribes)."""

    def __init__(self, zmq, endpoint, linger_ms=0, insecure=False, keys_dir=None):
        keys = load_keys(keys_dir) if keys_dir is not None else None
        check_bind(endpoint, insecure, curve=keys is not None)
        self.zmq = zmq
        self.ctx = zmq.Context()
        self.curve = None
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 8)
        self.sock.setsockopt(zmq.LINGER, linger_ms)
        if keys is not None:
            server_public, server_secret, allowed = keys
            self.curve = Curve(zmq, self.ctx, allowed)
            self.sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode("ascii"))
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, server_secret)
            self.curve.watch(self.sock)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as e:
            self.close()
            raise RuntimeError(f"cannot bind the PUB socket to {endpoint}: {e}") from e
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if keys is not None:
            from zmq.utils import z85
            log(f"CURVE: bound {self.endpoint}: {len(keys[2])} client key(s) allowed "
                f"(allow/{ZAP_DOMAIN}/), server key {z85.encode(keys[0]).decode('ascii')}")
        self.subscribed = False

    def drain_subscriptions(self):
        while True:
            try:
                msg = self.sock.recv(self.zmq.NOBLOCK)
            except self.zmq.Again:
                return
            topic = msg[1:].decode("utf-8", "replace")
            if msg[:1] == b"\x01":
                self.subscribed = True
                log(f"a subscriber joined (topic prefix {topic!r})")
            elif msg[:1] == b"\x00":
                log(f"a subscriber left (topic prefix {topic!r})")

    def wait_for_subscriber(self, timeout_s, stop):
        deadline = time.monotonic() + timeout_s
        while not self.subscribed and stop.signal is None and time.monotonic() < deadline:
            if self.sock.poll(50, self.zmq.POLLIN):
                self.drain_subscriptions()
        return self.subscribed

    def send(self, parts):
        self.sock.send_multipart(parts, copy=False)

    def close(self):
        self.sock.close()
        if self.curve is not None:
            self.curve.close()
            log(self.curve.summary())
        self.ctx.term()


class Status:
    """Publishes the bridge's state when it changes and again every second."""

    def __init__(self, publisher):
        self.publisher = publisher
        self.state = None
        self.message = ""
        self.sent_at = 0.0

    def set(self, state, message):
        if state != self.state:
            log(f"{state}: {message}")
        self.state, self.message = state, message
        self._send()

    def tick(self, now):
        if self.state is not None and now - self.sent_at >= STATUS_EVERY_S:
            self._send()

    def _send(self):
        self.publisher.send(encode_status(self.state, self.message))
        self.sent_at = time.monotonic()


class Stop:
    """SIGINT/SIGTERM set `signal`; the loops finish their frame and close the device."""

    def __init__(self):
        self.signal = None

    def __call__(self, signum, _frame):
        self.signal = signum


# ------------------------------------------------------------------------------------------
# Self-test.

def square_origin(seq):
    """(column, row) of the square's top-left pixel in frame `seq`."""
    return 40 + (8 * seq) % 400, SQUARE_ROW


def synthetic_depth(seq):
    d = [PLANE_MM] * PIXELS
    col, row = square_origin(seq)
    for r in range(row, row + SQUARE_PX):
        d[r * WIDTH + col: r * WIDTH + col + SQUARE_PX] = [SQUARE_MM] * SQUARE_PX
    d[:len(DEPTH_PROBES)] = DEPTH_PROBES
    return d


def synthetic_ir(seq):
    d = [1000.0] * PIXELS
    col, row = square_origin(seq)
    for r in range(row, row + SQUARE_PX):
        d[r * WIDTH + col: r * WIDTH + col + SQUARE_PX] = [30000.0] * SQUARE_PX
    d[:len(IR_PROBES)] = IR_PROBES
    return d


def run_self_test(args, stop):
    zmq = import_zmq()
    if zmq is None:
        return EXIT_MISSING
    problem = cross_check_numpy()
    if problem:
        log(f"self-test: {problem}")
        return EXIT_ERROR
    try:
        publisher = Publisher(zmq, args.self_test, linger_ms=2000, insecure=args.insecure,
                              keys_dir=args.keys)
    except RuntimeError as e:
        log(str(e))
        return EXIT_ERROR
    try:
        log(f"self-test: bound {publisher.endpoint}, waiting up to {args.wait_s} s for a subscriber")
        if not publisher.wait_for_subscriber(args.wait_s, stop):
            if stop.signal is not None:
                log(f"self-test: stopped by {signal.Signals(stop.signal).name}")
                return EXIT_OK
            log(f"self-test: no subscriber came in {args.wait_s} s")
            return EXIT_ERROR
        status = Status(publisher)
        status.set("streaming", f"self-test: {args.frames} synthetic frames at {args.rate_hz} Hz")
        intrinsics = check_intrinsics(DEVICE2_INTRINSICS)
        start = time.monotonic()
        sent = 0
        for seq in range(args.frames):
            if stop.signal is not None:
                break
            delay = start + seq / args.rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            depth_le = u16le(depth_mm_to_u16(synthetic_depth(seq)))
            ir_le = None if args.no_ir else u16le(ir_to_u16(synthetic_ir(seq)))
            stamp_us = round(seq * 1e6 / args.rate_hz)
            publisher.send(encode_frame(seq, stamp_us, time.time_ns(), intrinsics, "self-test",
                                        depth_le, ir_le))
            sent += 1
        log(f"self-test: published {sent} frames")
        return EXIT_OK
    finally:
        publisher.close()


# ------------------------------------------------------------------------------------------
# The real device.

def usb_permission_problem():
    """A sentence if a Kinect v2 is on the USB bus but its device node is not read-writable."""
    root = "/sys/bus/usb/devices"
    try:
        names = os.listdir(root)
    except OSError:
        return None
    for name in names:
        base = os.path.join(root, name)
        try:
            with open(os.path.join(base, "idVendor")) as f:
                vendor = f.read().strip()
            with open(os.path.join(base, "idProduct")) as f:
                product = f.read().strip()
            if (vendor, product) not in KINECT2_USB_IDS:
                continue
            with open(os.path.join(base, "busnum")) as f:
                bus = int(f.read())
            with open(os.path.join(base, "devnum")) as f:
                dev = int(f.read())
        except (OSError, ValueError):
            continue
        node = f"/dev/bus/usb/{bus:03d}/{dev:03d}"
        if not os.access(node, os.R_OK | os.W_OK):
            return (f"a Kinect v2 ({vendor}:{product}) is at {node} but this user cannot open it: "
                    "sudo cp platform/linux/udev/90-kinect2.rules /etc/udev/rules.d/ (from "
                    "libfreenect2), sudo udevadm control --reload-rules && sudo udevadm trigger, "
                    "then re-plug the Kinect")
    return None


def make_pipeline(fn2, name):
    """The depth-decoding pipeline: auto tries OpenCL, then OpenGL (with a display), then CPU."""
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    order = {"auto": ["opencl", "opengl", "cpu"], "opencl": ["opencl"], "opengl": ["opengl"],
             "cpu": ["cpu"]}[name]
    classes = {"opencl": "OpenCLPacketPipeline", "opengl": "OpenGLPacketPipeline",
               "cpu": "CpuPacketPipeline"}
    for candidate in order:
        if candidate == "opengl" and name == "auto" and not display:
            continue
        cls = getattr(fn2, classes[candidate], None)
        if cls is None:
            continue
        try:
            pipeline = cls()
        except Exception as e:  # a backend compiled in but unusable here
            log(f"pipeline {candidate} unusable: {e}")
            continue
        log(f"depth pipeline: {candidate}")
        return pipeline
    raise RuntimeError(f"no usable libfreenect2 pipeline for --pipeline {name}")


class TimestampUnwrapper:
    """libfreenect2's 32-bit timestamp (0.125 ms ticks, wraps after ~6 days) as a 64-bit count."""

    def __init__(self):
        self.last = None
        self.offset = 0

    def __call__(self, ticks):
        if self.last is not None and ticks < self.last and self.last - ticks > 2 ** 31:
            self.offset += 2 ** 32
        self.last = ticks
        return ticks + self.offset


def as_text(serial):
    return serial.decode("ascii", "replace") if isinstance(serial, bytes) else str(serial)


def run_device(args, stop):
    zmq = import_zmq()
    try:
        import numpy as np
        import pylibfreenect2 as fn2
    except ImportError as e:
        log(f"{e}: install libfreenect2 and pylibfreenect2 as --help says "
            "(and export LD_LIBRARY_PATH=$HOME/freenect2/lib)")
        return EXIT_MISSING
    if zmq is None:
        return EXIT_MISSING
    try:
        publisher = Publisher(zmq, args.bind, linger_ms=500, insecure=args.insecure,
                              keys_dir=args.keys)
    except RuntimeError as e:
        log(str(e))
        return EXIT_ERROR
    log(f"publishing on {publisher.endpoint}")
    status = Status(publisher)
    try:
        return open_and_stream(np, fn2, args, stop, publisher, status)
    except Exception as e:
        status.set("error", f"{type(e).__name__}: {e}")
        return EXIT_ERROR
    finally:
        publisher.close()


def open_and_stream(np, fn2, args, stop, publisher, status):
    levels = {"none": "NONE", "error": "Error", "warning": "Warning", "info": "Info",
              "debug": "Debug"}
    if args.freenect_log == "none":
        fn2.setGlobalLogger(None)
    else:
        fn2.setGlobalLogger(fn2.createConsoleLogger(getattr(fn2.LoggerLevel,
                                                            levels[args.freenect_log])))
    problem = usb_permission_problem()
    if problem:
        status.set("no_device", problem)
        return EXIT_NO_DEVICE
    freenect = fn2.Freenect2()
    count = freenect.enumerateDevices()
    if count == 0:
        status.set("no_device", "no Kinect v2 found (libfreenect2 enumerated no device): is it "
                   "powered, on a USB 3 port, listed by `lsusb -d 045e:`?")
        return EXIT_NO_DEVICE
    serials = [freenect.getDeviceSerialNumber(i) for i in range(count)]
    texts = [as_text(s) for s in serials]
    if args.serial is not None and args.serial not in texts:
        status.set("no_device", f"no Kinect v2 with serial {args.serial} (found: "
                   f"{', '.join(texts)})")
        return EXIT_NO_DEVICE
    index = texts.index(args.serial) if args.serial is not None else 0
    serial_raw, serial = serials[index], texts[index]

    pipeline = make_pipeline(fn2, args.pipeline)
    device = freenect.openDevice(serial_raw, pipeline=pipeline)
    listener = fn2.SyncMultiFrameListener(fn2.FrameType.Ir | fn2.FrameType.Depth)
    device.setIrAndDepthFrameListener(listener)
    if hasattr(device, "startStreams"):
        device.startStreams(False, True)  # colour off, IR and depth on
    else:  # pylibfreenect2 < 0.1.2
        device.start()
    try:
        params = device.getIrCameraParams()
        intrinsics = check_intrinsics({key: getattr(params, key) for key in INTRINSIC_KEYS})
        log(f"Kinect v2 {serial}: intrinsics {intrinsics}")
        return stream(np, args, stop, publisher, status, listener, intrinsics, serial)
    finally:
        device.stop()
        device.close()
        log("device closed")


def stream(np, args, stop, publisher, status, listener, intrinsics, serial):
    unwrap = TimestampUnwrapper()
    started = time.monotonic()
    last_frame_at = None
    sent = 0
    while stop.signal is None:
        publisher.drain_subscriptions()
        now = time.monotonic()
        if not listener.hasNewFrame():
            quiet_since = started if last_frame_at is None else last_frame_at
            limit = FIRST_FRAME_GRACE_S if last_frame_at is None else args.stall_after
            if status.state != "stalled" and now - quiet_since >= limit:
                status.set("stalled", f"no frame from Kinect v2 {serial} for "
                           f"{now - quiet_since:.1f} s")
            status.tick(now)
            time.sleep(0.002)
            continue
        frames = listener.waitForNewFrame()
        host_stamp_ns = time.time_ns()
        try:
            depth = frames["depth"]
            if (depth.width, depth.height) != (WIDTH, HEIGHT):
                raise RuntimeError(f"depth frame is {depth.width}x{depth.height}")
            seq, ticks = depth.sequence, depth.timestamp
            depth_le = depth_to_u16le_numpy(np, depth.asarray(np.float32))
            ir_le = None if args.no_ir else ir_to_u16le_numpy(np, frames["ir"].asarray(np.float32))
        finally:
            listener.release(frames)
        publisher.send(encode_frame(seq, unwrap(ticks) * TICK_US, host_stamp_ns, intrinsics,
                                    serial, depth_le, ir_le))
        sent += 1
        last_frame_at = time.monotonic()
        if status.state != "streaming":
            status.set("streaming", f"Kinect v2 {serial}: frames flowing")
        status.tick(last_frame_at)
    log(f"stopping on {signal.Signals(stop.signal).name}; {sent} frames published")
    return EXIT_OK


# ------------------------------------------------------------------------------------------

def parse_args(argv):
    doc = __doc__ or ""
    summary, _, details = doc.partition("\n\n")
    parser = argparse.ArgumentParser(
        prog="kinect_bridge.py", description=summary, epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default=DEFAULT_BIND, metavar="ENDPOINT",
                        help=f"ZMQ endpoint to publish on (default {DEFAULT_BIND})")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind (no authentication, no encryption: "
                        "anyone who reaches this host sees the video); prints a WARNING")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE: authenticate and encrypt with DIR/server.key, "
                        "DIR/server.pub; only DIR/allow/bridge/*.pub get frames; any interface "
                        "without --insecure")
    parser.add_argument("--serial", help="the Kinect v2 to open (default: the first found)")
    parser.add_argument("--pipeline", choices=("auto", "opencl", "opengl", "cpu"), default="auto",
                        help="libfreenect2 depth decoder (default auto: OpenCL, then OpenGL if "
                        "there is a display, then CPU)")
    parser.add_argument("--no-ir", action="store_true",
                        help="publish depth only (3-part messages, \"ir\": false)")
    parser.add_argument("--stall-after", type=float, default=1.0, metavar="S",
                        help="publish 'stalled' after S seconds without a frame (default 1.0)")
    parser.add_argument("--freenect-log", default="warning",
                        choices=("none", "error", "warning", "info", "debug"),
                        help="libfreenect2's console log level (default warning)")
    test = parser.add_argument_group("self-test (no device, no numpy)")
    test.add_argument("--self-test", metavar="ENDPOINT",
                      help="bind ENDPOINT, wait for a subscriber, publish synthetic frames, exit")
    test.add_argument("--frames", type=int, default=300, help="frames to publish (default 300)")
    test.add_argument("--rate-hz", type=float, default=30.0, help="frame rate (default 30)")
    test.add_argument("--wait-s", type=float, default=10.0,
                      help="how long to wait for a subscriber (default 10)")
    args = parser.parse_args(argv)
    if args.frames < 0 or not args.rate_hz > 0 or not args.stall_after > 0:
        parser.error("--frames must be >= 0, --rate-hz and --stall-after > 0")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stop = Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.self_test is not None:
        return run_self_test(args, stop)
    return run_device(args, stop)


if __name__ == "__main__":
    sys.exit(main())
