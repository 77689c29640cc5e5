"""A flight log opens in Foxglove: `depthpilot fly scenes/hover_kinect.ron --log X.mcap` writes
Foxglove's well-known topics beside depthpilot's own, and every message of every channel is
checked with the reference MCAP reader (`mcap` 1.6.0) and `jsonschema` against the schema stored
in the file, which must be Foxglove's canonical text (crates/runtime/schemas/foxglove/).

Run from the repository root, after `cargo build --workspace --bin depthpilot`:
    .venv/bin/python -m pytest tests/python/test_foxglove_log.py
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter

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
    validators,
)

# topic -> Foxglove schema name (= the schema's title)
FOXGLOVE_TOPICS = {
    "/tf": "foxglove.FrameTransforms",
    "/quad/pose": "foxglove.PoseInFrame",
    "/quad/estimate": "foxglove.PoseInFrame",
    "/quad/setpoint": "foxglove.PoseInFrame",
    "/kinect/calibration": "foxglove.CameraCalibration",
    "/scene": "foxglove.SceneUpdate",
    "/log": "foxglove.Log",
}
OWN_TOPICS = {
    "/flight/header": "depthpilot.FlightHeader",
    "/flight/state": "depthpilot.LogRow",
    "/flight/summary": "depthpilot.Summary",
}
# scenes/hover_kinect.ron: KinectV2Device2 intrinsics, the camera at the origin looking up.
DEVICE2 = {"fx": 365.402802, "fy": 365.402802, "cx": 260.925507, "cy": 205.594604,
           "k1": 0.095575, "k2": -0.277055, "k3": 0.097539, "p1": 0.0, "p2": 0.0}


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    """(messages, channels): every message as (topic, log_time, decoded JSON), in file order."""
    require_binary()
    log = tmp_path_factory.mktemp("foxglove") / "hover_kinect.mcap"
    run = subprocess.run(
        [str(BINARY), "fly", "scenes/hover_kinect.ron", "--log", str(log), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"depthpilot fly failed:\n{run.stderr}"
    raw, channels = read_mcap(log)
    return [(topic, t, json.loads(data)) for topic, t, _, data in raw], channels


def test_channels_have_the_canonical_schemas(flight):
    check_canonical_schemas(flight[1], FOXGLOVE_TOPICS, OWN_TOPICS)


def test_every_message_validates_against_its_schema(flight):
    messages, channels = flight
    assert validators(channels)["/scene"][1], "SceneUpdate has a bytes field (models[].data) to check"
    # depthpilot's scene entities carry no embedded models: no base64 field to decode.
    assert check_messages(messages, channels) == 0


def test_quaternions_are_unit(flight):
    assert check_unit_quaternions(flight[0]) > 1000


def test_timestamps_equal_log_times(flight):
    foxglove = [m for m in flight[0] if m[0] in FOXGLOVE_TOPICS]
    assert check_timestamps(foxglove) > 1000


def test_every_frame_reaches_world_through_tf(flight):
    foxglove = [m for m in flight[0] if m[0] in FOXGLOVE_TOPICS]
    parent, used = check_frames_reach_world(foxglove)
    assert {"world", "quad", "kinect", "kinect_optical"} <= used | set(parent)


def test_the_content_matches_the_flight(flight):
    messages, _ = flight
    count = Counter(topic for topic, _, _ in messages)
    rows = [(t, d) for topic, t, d in messages if topic == "/flight/state"]
    # world→quad on every row, at the row's time and position (to the µm).
    quad_tf = {}
    for topic, t, data in messages:
        if topic == "/tf":
            for tf in data["transforms"]:
                if tf["child_frame_id"] == "quad":
                    quad_tf[t] = tf["translation"]
    assert len(quad_tf) == len(rows) > 1000
    for t, row in rows:
        p = quad_tf[t]
        assert max(abs(p[k] - row["pos_m"][i]) for i, k in enumerate("xyz")) <= 1e-6
    # The static Kinect transforms and calibration about once a second over the 12 s flight.
    assert 12 <= count["/kinect/calibration"] <= 14, count
    cal = next(d for topic, _, d in messages if topic == "/kinect/calibration")
    k = DEVICE2
    assert cal["K"] == [k["fx"], 0, k["cx"] - 0.5, 0, k["fy"], k["cy"] - 0.5, 0, 0, 1]
    assert cal["D"] == [k["k1"], k["k2"], k["p1"], k["p2"], k["k3"]]
    assert (cal["width"], cal["height"], cal["frame_id"]) == (512, 424, "kinect_optical")
    # The camera looks up (+z): its optical z axis is world +z.
    optical = next(tf for topic, _, d in messages if topic == "/tf"
                   for tf in d["transforms"] if tf["child_frame_id"] == "kinect_optical")
    q = optical["rotation"]
    z_axis_z = 1 - 2 * (q["x"] ** 2 + q["y"] ** 2)
    assert z_axis_z > 0.999, q
    # Poses at 25 Hz, the estimate only when there is one.
    assert abs(count["/quad/pose"] - len(rows) / 4) <= 2, count
    with_estimate = sum(1 for t, r in rows if r["estimate_m"] is not None)
    assert 0 < count["/quad/estimate"] <= count["/quad/pose"]
    assert with_estimate > 0
    # The log says the safety state changes.
    logs = [d for topic, _, d in messages if topic == "/log"]
    assert any(entry["name"] == "safety" and "tracking" in entry["message"] for entry in logs), logs
    # The room, the quad and the Kinect.
    ids = {e["id"] for topic, _, d in messages if topic == "/scene" for e in d["entities"]}
    assert {"room", "quad", "kinect"} <= ids and any(i.startswith("trail/") for i in ids), ids
