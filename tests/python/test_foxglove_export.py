"""A camera session opens in Foxglove: `depthpilot fake-bridge` serves the synthetic Kinect (with
a 0.3 s stall), `depthpilot record` records 2 s of it, `depthpilot export` turns the session into
a Foxglove MCAP, and every message of every channel is checked with the reference MCAP reader
(`mcap` 1.6.0) and `jsonschema` against the schema stored in the file, which must be Foxglove's
canonical text (crates/runtime/schemas/foxglove/): base64 image sizes, unit quaternions, every
frame reaching `world`, timestamps equal to log times; the images are the session's bytes.

Run from the repository root, after `cargo build --workspace --bin depthpilot`:
    .venv/bin/python -m pytest tests/python/test_foxglove_export.py
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from foxglove_checks import (
    BINARY,
    REPO,
    check_canonical_schemas,
    check_frames_reach_world,
    check_messages,
    check_timestamps,
    check_unit_quaternions,
    read_mcap,
    require_binary,
)

# topic -> Foxglove schema name (= the schema's title)
TOPICS = {
    "/kinect/depth": "foxglove.RawImage",
    "/kinect/ir": "foxglove.RawImage",
    "/kinect/calibration": "foxglove.CameraCalibration",
    "/tf": "foxglove.FrameTransforms",
    "/kinect/detections": "foxglove.ImageAnnotations",
    "/log": "foxglove.Log",
}
IMAGE_TOPICS = {"/kinect/depth", "/kinect/ir"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def session_frames(path: Path):
    """The session's frames: log time -> (header JSON, depth bytes, IR bytes or None), unpacked
    from `depthpilot.frame.v1` ([u32 count] then [u32 length][bytes] per part)."""
    out = {}
    messages, _ = read_mcap(path)
    for topic, t, _, data in messages:
        if topic != "/kinect/frame":
            continue
        (count,) = struct.unpack_from("<I", data, 0)
        at, parts = 4, []
        for _ in range(count):
            (n,) = struct.unpack_from("<I", data, at)
            parts.append(data[at + 4:at + 4 + n])
            at += 4 + n
        out[t] = (json.loads(parts[1]), parts[2], parts[3] if len(parts) > 3 else None)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A 2 s session with a stall and its exports (full, `--every 3`, `--no-images`)."""
    require_binary()
    d = tmp_path_factory.mktemp("foxglove-export")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    bridge = subprocess.Popen(
        [str(BINARY), "fake-bridge", "scenes/hover_kinect.ron", "--bind", endpoint,
         "--duration", "6", "--stall", "1.6:0.3", "--quiet"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        rec = run("record", "hil/bridge_sim.ron", "--bridge-endpoint", endpoint, "--duration",
                  "2.5", "--quiet", "--out", str(d / "session.mcap"))
        assert rec.returncode == 0, f"depthpilot record failed:\n{rec.stdout}{rec.stderr}"
    finally:
        bridge.kill()
        bridge.wait()
    session = d / "session.mcap"
    before = session.read_bytes()
    outs = {}
    for name, flags in [("full", []), ("every3", ["--every", "3"]), ("noimages", ["--no-images"])]:
        out = d / f"{name}.mcap"
        r = run("export", str(session), str(out), *flags)
        assert r.returncode == 0, f"export {flags} failed:\n{r.stdout}{r.stderr}"
        print(r.stdout)
        outs[name] = (out, r.stdout)
    assert session.read_bytes() == before, "export changed the session"
    frames = session_frames(session)
    full_messages, channels = read_mcap(outs["full"][0])
    decoded = [(topic, t, p, json.loads(data)) for topic, t, p, data in full_messages]
    yield {"dir": d, "session": session, "frames": frames, "messages": decoded,
           "channels": channels, "outs": outs}
    shutil.rmtree(d, ignore_errors=True)


def test_channels_have_the_canonical_schemas(exported):
    check_canonical_schemas(exported["channels"], TOPICS)


def decoded(exported):
    """(topic, log time, message) of every message."""
    return [(topic, t, data) for topic, t, _, data in exported["messages"]]


def test_every_message_validates_and_images_have_their_size(exported):
    # RawImage's `data` is the only base64 field: one per image.
    images = check_messages(decoded(exported), exported["channels"])
    for topic, t, _, data in exported["messages"]:
        if topic in IMAGE_TOPICS:
            assert (data["width"], data["height"], data["encoding"]) == (512, 424, "16UC1")
            assert data["step"] == 2 * data["width"]
            assert data["frame_id"] == "kinect_optical"
            raw = base64.b64decode(data["data"], validate=True)
            assert len(raw) == data["step"] * data["height"], (topic, t, len(raw))
    assert images > 100, images


def test_images_are_the_sessions_bytes(exported):
    frames = exported["frames"]
    n = 0
    for topic, t, publish, data in exported["messages"]:
        if topic not in IMAGE_TOPICS:
            continue
        header, depth, ir = frames[t]
        assert publish == header["host_stamp_ns"], "publish time is the capture stamp"
        want = depth if topic == "/kinect/depth" else ir
        assert base64.b64decode(data["data"]) == want, (topic, t)
        n += 1
    count = Counter(topic for topic, *_ in exported["messages"])
    assert count["/kinect/depth"] == count["/kinect/ir"] == len(frames) > 50, count


def test_quaternions_are_unit(exported):
    assert check_unit_quaternions(decoded(exported)) >= 4


def test_timestamps_equal_log_times(exported):
    assert check_timestamps(decoded(exported)) > 200
    # The session's log times: every image and annotation at a recorded frame's time.
    frames = exported["frames"]
    for topic, t, _, _ in exported["messages"]:
        if topic in IMAGE_TOPICS or topic == "/kinect/detections":
            assert t in frames, (topic, t)


def test_every_frame_reaches_world_through_tf(exported):
    parent, used = check_frames_reach_world(decoded(exported))
    assert used == {"kinect_optical"}, used
    assert {"kinect", "kinect_optical"} <= set(parent)


def test_detections_stall_and_calibration(exported):
    messages = exported["messages"]
    annotations = [d for topic, _, _, d in messages if topic == "/kinect/detections"]
    placed = [a for a in annotations if a["circles"]]
    assert len(annotations) == len(exported["frames"])
    assert len(placed) > len(annotations) // 2, (len(placed), len(annotations))
    for a in placed:
        c = a["circles"][0]["position"]
        assert 0 <= c["x"] < 512 and 0 <= c["y"] < 424, c
        assert a["points"][0]["points"] == [c]
    # The 0.3 s stall: said STALE, then frames again.
    logs = [d["message"] for topic, _, _, d in messages if topic == "/log"]
    assert any(m.startswith("STALE") for m in logs), logs
    assert any(m.startswith("frames again after") for m in logs), logs
    cal = [d for topic, _, _, d in messages if topic == "/kinect/calibration"]
    assert 2 <= len(cal) <= 4, len(cal)
    header = next(iter(exported["frames"].values()))[0]
    k = header["intrinsics"]
    assert cal[0]["K"] == [k["fx"], 0, k["cx"] - 0.5, 0, k["fy"], k["cy"] - 0.5, 0, 0, 1]


def test_decimated_and_imageless_exports(exported):
    full = exported["outs"]["full"][0].stat().st_size
    every3_path = exported["outs"]["every3"][0]
    noimg_path = exported["outs"]["noimages"][0]
    every3 = Counter(topic for topic, *_ in read_mcap(every3_path)[0])
    noimg_messages, noimg_channels = read_mcap(noimg_path)
    n = len(exported["frames"])
    assert every3["/kinect/depth"] == every3["/kinect/ir"] == (n + 2) // 3, every3
    assert every3["/kinect/detections"] == n
    assert not IMAGE_TOPICS & set(noimg_channels), sorted(noimg_channels)
    assert Counter(t for t, *_ in noimg_messages)["/kinect/detections"] == n
    assert every3_path.stat().st_size < full * 0.4
    assert noimg_path.stat().st_size < full / 100
    for name, (_, stdout) in exported["outs"].items():
        assert "MB/min" in stdout, (name, stdout)


def test_garbage_and_missing_input_are_refused(exported):
    d = exported["dir"]
    garbage = d / "garbage.mcap"
    garbage.write_bytes(b"this is not an MCAP file\n")
    for path in [garbage, d / "missing.mcap"]:
        r = run("export", str(path), str(d / "out.mcap"))
        assert r.returncode == 2, r.stderr
        assert str(path) in r.stderr, r.stderr
