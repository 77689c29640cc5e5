"""Checks shared by the Foxglove tests (flight logs and exported camera sessions): read an MCAP
file with the reference reader, compare schemas with Foxglove's canonical texts
(crates/runtime/schemas/foxglove/), validate messages, and check quaternions, timestamps and the
transform tree."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import jsonschema
import pytest
from mcap.reader import make_reader

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "debug" / "depthpilot"
SCHEMAS = REPO / "crates" / "runtime" / "schemas" / "foxglove"


def require_binary() -> None:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: build it first with `cargo build --workspace --bin depthpilot`")


def read_mcap(path: Path):
    """(messages, channels): every message as (topic, log_time, publish_time, raw bytes), in file
    order; channels by topic as (schema, channel)."""
    messages, channels = [], {}
    with open(path, "rb") as f:
        for schema, channel, message in make_reader(f).iter_messages(log_time_order=False):
            channels[channel.topic] = (schema, channel)
            messages.append((channel.topic, message.log_time, message.publish_time, message.data))
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


def check_canonical_schemas(channels, foxglove_topics: dict, own_topics: dict | None = None) -> None:
    """Every channel is JSON with a JSON schema; Foxglove topics carry the canonical text verbatim
    under its title; the others have the names given."""
    own_topics = own_topics or {}
    assert set(channels) == set(foxglove_topics) | set(own_topics), sorted(channels)
    for topic, (schema, channel) in channels.items():
        assert channel.message_encoding == "json", topic
        assert schema is not None and schema.encoding == "jsonschema", topic
        text = schema.data.decode()
        assert json.loads(text)["title"] == schema.name, topic
        if topic in foxglove_topics:
            assert schema.name == foxglove_topics[topic], topic
            canonical = SCHEMAS / (schema.name.removeprefix("foxglove.") + ".json")
            assert text == canonical.read_text(), f"{topic}: schema text is not Foxglove's verbatim"
        else:
            assert schema.name == own_topics[topic], topic


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


def validators(channels) -> dict:
    """Per topic: (a validator of its schema, the paths of its base64 fields). Foxglove's schemas
    name no $schema: validator_for then takes the default, Draft 2020-12."""
    out = {}
    for topic, (schema, _) in channels.items():
        s = json.loads(schema.data)
        cls = jsonschema.validators.validator_for(s, default=jsonschema.Draft202012Validator)
        cls.check_schema(s)
        out[topic] = (cls(s), list(base64_paths(s)))
    return out


def check_messages(messages, channels) -> int:
    """Every (topic, t, decoded) message validates against its channel's schema, and every base64
    field decodes to the size its length implies; returns the number of base64 fields decoded."""
    vals = validators(channels)
    decoded = 0
    for topic, t, data in messages:
        validator, b64 = vals[topic]
        errors = [e.message[:200] for e in validator.iter_errors(data)]
        assert not errors, f"{topic} at {t} ns: {errors[:3]}"
        for path in b64:
            for v in values_at(data, path):
                raw = base64.b64decode(v, validate=True)
                assert len(raw) == len(v) * 3 // 4 - v[-2:].count("="), (topic, path)
                decoded += 1
    return decoded


def check_unit_quaternions(messages) -> int:
    """Every {x, y, z, w} object has norm 1; returns how many there were."""
    n = 0
    for topic, t, data in messages:
        for path, obj in walk(data):
            if set(obj) == {"x", "y", "z", "w"}:
                norm = math.sqrt(sum(obj[k] ** 2 for k in "xyzw"))
                assert abs(norm - 1.0) < 1e-5, f"{topic} at {t} ns, {path}: |q| = {norm}"
                n += 1
    return n


def check_timestamps(messages) -> int:
    """Every message has a timestamp, and each equals its log time; returns how many."""
    n = 0
    for topic, t, data in messages:
        stamps = [obj for path, obj in walk(data) if path and path[-1] == "timestamp"]
        assert stamps, f"{topic} at {t} ns has no timestamp"
        for s in stamps:
            assert s["sec"] * 1_000_000_000 + s["nsec"] == t, f"{topic}: {s} vs log time {t}"
            n += 1
    return n


def check_frames_reach_world(messages):
    """Every frame_id a message uses, and every child of /tf, reaches `world` through /tf, with
    one parent each, and was given its transform no later than its first use. Returns (parent by
    child, the frames messages use)."""
    parent, first_seen, used = {}, {}, set()
    for topic, t, data in sorted(messages, key=lambda m: m[1]):
        if topic == "/tf":
            for tf in data["transforms"]:
                child = tf["child_frame_id"]
                assert parent.setdefault(child, tf["parent_frame_id"]) == tf["parent_frame_id"]
                first_seen.setdefault(child, t)
            continue
        for _, obj in walk(data):
            if "frame_id" in obj:
                frame = obj["frame_id"]
                used.add(frame)
                assert frame == "world" or first_seen.get(frame, math.inf) <= t, (topic, frame)
    for frame in used | set(parent):
        seen = []
        while frame != "world":
            assert frame in parent, f"frame {frame!r} does not reach world (chain {seen})"
            assert frame not in seen, f"a cycle: {seen}"
            seen.append(frame)
            frame = parent[frame]
    return parent, used
