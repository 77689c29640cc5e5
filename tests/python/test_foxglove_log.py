"""A flight log opens in Foxglove: `depthpilot fly scenes/hover_kinect.ron --log X.mcap` writes
Foxglove's well-known topics beside depthpilot's own, and every message of every channel is
checked with the reference MCAP reader (`mcap` 1.6.0) and `jsonschema` against the schema stored
in the file, which must be Foxglove's canonical text (crates/runtime/schemas/foxglove/).

Run from the repository root, after `cargo build --workspace --bin depthpilot`:
    .venv/bin/python -m pytest tests/python/test_foxglove_log.py
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import jsonschema
import pytest
from mcap.reader import make_reader

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "debug" / "depthpilot"
SCHEMAS = REPO / "crates" / "runtime" / "schemas" / "foxglove"

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
    if not BINARY.exists():
        pytest.fail(
            f"{BINARY} is missing: build it first with `cargo build --workspace --bin depthpilot`"
        )
    log = tmp_path_factory.mktemp("foxglove") / "hover_kinect.mcap"
    run = subprocess.run(
        [str(BINARY), "fly", "scenes/hover_kinect.ron", "--log", str(log), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"depthpilot fly failed:\n{run.stderr}"
    messages = []
    channels = {}
    with open(log, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            channels[channel.topic] = (schema, channel)
            messages.append((channel.topic, message.log_time, json.loads(message.data)))
    return messages, channels


def walk(value, path=()):
    """Every (path, object) in a JSON value, depth first."""
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, path + (i,))


def base64_paths(schema, path=()):
    """Paths (with '*' for array items) of the schema's base64 (bytes) fields."""
    if schema.get("contentEncoding") == "base64":
        yield path
    for k, sub in schema.get("properties", {}).items():
        yield from base64_paths(sub, path + (k,))
    if "items" in schema:
        yield from base64_paths(schema["items"], path + ("*",))


def values_at(value, path):
    if not path:
        yield value
    elif path[0] == "*":
        for v in value if isinstance(value, list) else []:
            yield from values_at(v, path[1:])
    elif isinstance(value, dict) and path[0] in value:
        yield from values_at(value[path[0]], path[1:])


def test_channels_have_the_canonical_schemas(flight):
    _, channels = flight
    assert set(channels) == set(FOXGLOVE_TOPICS) | set(OWN_TOPICS), sorted(channels)
    for topic, (schema, channel) in channels.items():
        assert channel.message_encoding == "json", topic
        assert schema is not None and schema.encoding == "jsonschema", topic
        text = schema.data.decode()
        assert json.loads(text)["title"] == schema.name, topic
        if topic in FOXGLOVE_TOPICS:
            assert schema.name == FOXGLOVE_TOPICS[topic], topic
            canonical = SCHEMAS / (schema.name.removeprefix("foxglove.") + ".json")
            assert text == canonical.read_text(), f"{topic}: schema text is not Foxglove's verbatim"
        else:
            assert schema.name == OWN_TOPICS[topic], topic


def test_every_message_validates_against_its_schema(flight):
    messages, channels = flight
    validators = {}
    for topic, (schema, _) in channels.items():
        s = json.loads(schema.data)
        # Foxglove's schemas name no $schema: validator_for then takes the default, 2020-12.
        cls = jsonschema.validators.validator_for(s, default=jsonschema.Draft202012Validator)
        cls.check_schema(s)
        validators[topic] = (cls(s), list(base64_paths(s)))
    assert validators["/scene"][1], "SceneUpdate has a bytes field (models[].data) to check"
    decoded = 0
    for topic, t, data in messages:
        validator, b64 = validators[topic]
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, f"{topic} at {t} ns: {errors[:3]}"
        for path in b64:
            for v in values_at(data, path):
                raw = base64.b64decode(v, validate=True)
                assert len(raw) == len(v) * 3 // 4 - v[-2:].count("="), (topic, path)
                decoded += 1
    # (depthpilot's scene entities carry no embedded models: nothing to decode.)
    assert decoded == 0


def test_quaternions_are_unit(flight):
    messages, _ = flight
    n = 0
    for topic, t, data in messages:
        for path, obj in walk(data):
            if set(obj) == {"x", "y", "z", "w"}:
                norm = math.sqrt(sum(obj[k] ** 2 for k in "xyzw"))
                assert abs(norm - 1.0) < 1e-5, f"{topic} at {t} ns, {path}: |q| = {norm}"
                n += 1
    assert n > 1000, n


def test_timestamps_equal_log_times(flight):
    messages, _ = flight
    n = 0
    for topic, t, data in messages:
        if topic not in FOXGLOVE_TOPICS:
            continue
        stamps = [obj for path, obj in walk(data) if path and path[-1] == "timestamp"]
        assert stamps, f"{topic} at {t} ns has no timestamp"
        for s in stamps:
            assert s["sec"] * 1_000_000_000 + s["nsec"] == t, f"{topic}: {s} vs log time {t}"
            n += 1
    assert n > 1000, n


def test_every_frame_reaches_world_through_tf(flight):
    messages, _ = flight
    parent = {}
    first_seen = {}
    frames_used = defaultdict(int)
    for topic, t, data in messages:
        if topic == "/tf":
            for tf in data["transforms"]:
                child = tf["child_frame_id"]
                assert parent.setdefault(child, tf["parent_frame_id"]) == tf["parent_frame_id"]
                first_seen.setdefault(child, t)
        elif topic in FOXGLOVE_TOPICS:
            for path, obj in walk(data):
                if "frame_id" in obj:
                    frame = obj["frame_id"]
                    frames_used[frame] += 1
                    # Its transform was recorded no later than the message.
                    assert frame == "world" or first_seen.get(frame, math.inf) <= t, (topic, frame)
    assert {"world", "quad", "kinect", "kinect_optical"} <= set(frames_used) | set(parent)
    for frame in set(frames_used) | set(parent):
        seen = []
        while frame != "world":
            assert frame in parent, f"frame {frame!r} does not reach world (chain {seen})"
            assert frame not in seen, f"a cycle: {seen}"
            seen.append(frame)
            frame = parent[frame]


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
