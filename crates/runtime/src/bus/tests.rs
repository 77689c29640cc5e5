//! Tests of the bus codec: round trips, the compat formats' exact keys, garbage tables, and
//! property tests that no input panics.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn truth() -> TruthMsg {
    TruthMsg {
        t_ns: 1_500_000_000,
        pos_m: [0.25, -1.5, 1.0],
        vel_m_s: [0.0, 0.125, -0.5],
        rpy_rad: [0.01, -0.02, 3.0],
    }
}

fn measurement() -> MeasurementMsg {
    MeasurementMsg {
        capture_ns: 1_000,
        available_ns: 34_000_000,
        seq: 7,
        pos_m: [0.5, -0.25, 1.75],
        yaw_rad: Some(-1.5),
    }
}

fn frames(topic: &[u8], body: &str) -> Vec<Vec<u8>> {
    vec![topic.to_vec(), body.as_bytes().to_vec()]
}

fn keys(json: &[u8]) -> BTreeSet<String> {
    let value: Value = serde_json::from_slice(json).expect("valid JSON");
    value.as_object().expect("object").keys().cloned().collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[test]
fn wire_form_is_topic_frame_then_envelope_json() {
    let [topic, body] = encode(TOPIC_VISION_STATUS, 3, 99, &VisionStatusMsg::default());
    assert_eq!(topic, b"vision/status");
    assert_eq!(
        keys(&body),
        set(&["topic", "version", "seq", "stamp_ns", "payload"])
    );
    let value: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(value["version"], 1);
    assert_eq!(value["topic"], "vision/status");
}

#[test]
fn payloads_round_trip() {
    let env = decode::<TruthMsg>(TOPIC_TRUTH, &encode(TOPIC_TRUTH, 1, 2, &truth())).expect("truth");
    assert_eq!(
        env,
        Envelope {
            topic: TOPIC_TRUTH.to_string(),
            version: BUS_VERSION,
            seq: 1,
            stamp_ns: 2,
            payload: truth(),
        }
    );

    for m in [
        measurement(),
        MeasurementMsg {
            yaw_rad: None,
            ..measurement()
        },
    ] {
        let env =
            decode_measurement(&encode(TOPIC_MEASUREMENT, u64::MAX, 5, &m)).expect("measurement");
        assert_eq!((env.seq, env.stamp_ns, env.payload), (u64::MAX, 5, m));
    }

    let status = VisionStatusMsg {
        frames: 30,
        detections: 29,
    };
    let env = decode::<VisionStatusMsg>(
        TOPIC_VISION_STATUS,
        &encode(TOPIC_VISION_STATUS, 0, 0, &status),
    )
    .expect("status");
    assert_eq!(env.payload, status);
}

#[test]
fn extra_fields_are_tolerated() {
    let body = r#"{"topic":"vision/status","version":1,"seq":1,"stamp_ns":2,"extra":true,
        "payload":{"frames":3,"detections":1,"fps":30.0}}"#;
    let env = decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, &frames(b"vision/status", body))
        .expect("tolerant");
    assert_eq!(
        env.payload,
        VisionStatusMsg {
            frames: 3,
            detections: 1
        }
    );
}

#[test]
fn measurement_converts_at_capture_time() {
    let m = measurement().to_measurement();
    assert_eq!(m.stamp_ns, 1_000);
    assert_eq!(m.seq, 7);
    assert_eq!(m.pos_in_world_m, Vec3::new(0.5, -0.25, 1.75));
    assert_eq!(m.yaw_rad, Some(-1.5));
    assert_eq!(
        MeasurementMsg::from_measurement(&m, 34_000_000),
        measurement()
    );
}

#[test]
fn non_finite_measurements_are_garbage() {
    let nan_pos = MeasurementMsg {
        pos_m: [0.0, f64::NAN, 0.0],
        ..measurement()
    };
    assert_eq!(
        nan_pos.validate(),
        Err(Garbage::NonFinite { field: "pos_m" })
    );
    let inf_yaw = MeasurementMsg {
        yaw_rad: Some(f64::INFINITY),
        ..measurement()
    };
    assert_eq!(
        inf_yaw.validate(),
        Err(Garbage::NonFinite { field: "yaw_rad" })
    );
    // On the wire a NaN position becomes `null`, which the schema refuses.
    let g =
        decode_measurement(&encode(TOPIC_MEASUREMENT, 0, 0, &nan_pos)).expect_err("NaN position");
    assert_eq!(g.reason(), "schema");
}

#[test]
fn compat_messages_have_exactly_the_2015_keys() {
    let det = DetectorMsg {
        pos_m: [0.1, -0.2, 1.5],
        angle_deg: 45.0,
        detect: true,
    };
    assert_eq!(keys(&det.to_json()), set(&["pos", "angle", "detect"]));
    assert_eq!(parse_detector(&det.to_json()), Ok(det));

    let sp = SetPointsMsg {
        roll_m: 0.5,
        pitch_m: -0.5,
        yaw_deg: 90.0,
        velocity_m_s: 0.1,
    };
    let json = sp.to_json();
    assert_eq!(keys(&json), set(&["version", "set-points"]));
    let value: Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(value["version"], 1);
    let inner: BTreeSet<String> = value["set-points"]
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(inner, set(&["roll", "pitch", "yaw", "velocity"]));
    assert_eq!(parse_set_points(&json), Ok(sp));

    let pid = PidVizMsg {
        name: "roll".to_string(),
        p: 1.0,
        i: 0.5,
        d: -0.25,
        e: 0.04,
        sp: 0.0,
        out: 1.25,
    };
    let json = pid.to_json();
    assert_eq!(keys(&json), set(&["name", "data"]));
    let value: Value = serde_json::from_slice(&json).expect("JSON");
    let data: BTreeSet<String> = value["data"]
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(data, set(&["P", "I", "D", "E", "SP", "OUT"]));
    assert_eq!(parse_pid_viz(&json), Ok(pid));
}

#[test]
fn compat_parsers_read_what_the_2015_peers_wrote() {
    // DepthBasics.cpp: sprintf("{\"pos\": [%f, %f, %f], \"angle\": %f, \"detect\": true}")
    let det = parse_detector(
        br#"{"pos": [0.012345, -0.100000, 1.600000], "angle": 270.000000, "detect": false}"#,
    )
    .expect("detector");
    assert_eq!(det.pos_m, [0.012345, -0.1, 1.6]);
    assert_eq!((det.angle_deg, det.detect), (270.0, false));
    // An integer angle is accepted.
    let det = parse_detector(br#"{"pos": [0, 0, 1], "angle": 90, "detect": true}"#)
        .expect("integer angle");
    assert_eq!(det.angle_deg, 90.0);
    // ksp.py starts with integer zeros; missing set-points default to 0.
    let sp = parse_set_points(br#"{"version": 1, "set-points": {"yaw": 180}}"#)
        .expect("partial set-points");
    assert_eq!(
        sp,
        SetPointsMsg {
            yaw_deg: 180.0,
            ..SetPointsMsg::default()
        }
    );
}

/// The envelope decoders, as one shape for the garbage table.
type Decoder = fn(&[Vec<u8>]) -> Result<(), Garbage>;

fn envelope_decoders() -> Vec<(&'static str, Decoder)> {
    vec![
        (TOPIC_TRUTH, |f| {
            decode::<TruthMsg>(TOPIC_TRUTH, f).map(drop)
        }),
        (TOPIC_MEASUREMENT, |f| decode_measurement(f).map(drop)),
        (TOPIC_VISION_STATUS, |f| {
            decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, f).map(drop)
        }),
    ]
}

fn envelope(topic: &str, version: &str, payload: &str) -> String {
    format!(r#"{{"topic":"{topic}","version":{version},"seq":1,"stamp_ns":2,"payload":{payload}}}"#)
}

#[test]
fn envelope_garbage_table() {
    for (topic, decoder) in envelope_decoders() {
        let t = topic.as_bytes();
        let good_payload = match topic {
            TOPIC_TRUTH => serde_json::to_string(&truth()),
            TOPIC_MEASUREMENT => serde_json::to_string(&measurement()),
            _ => serde_json::to_string(&VisionStatusMsg::default()),
        }
        .expect("payload JSON");
        let good = envelope(topic, "1", &good_payload);
        assert_eq!(decoder(&frames(t, &good)), Ok(()), "{topic}: good message");

        let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
            ("no frames", vec![], "frames"),
            ("one frame", vec![t.to_vec()], "frames"),
            (
                "three frames",
                vec![t.to_vec(), good.clone().into_bytes(), vec![]],
                "frames",
            ),
            (
                "non-UTF-8 topic",
                vec![vec![0xff, 0xfe], good.clone().into_bytes()],
                "utf8",
            ),
            ("other topic", frames(b"sim/other", &good), "topic"),
            ("topic prefix only", frames(b"sim", &good), "topic"),
            (
                "topic frames disagree",
                frames(t, &envelope("x/y", "1", &good_payload)),
                "topic_mismatch",
            ),
            ("empty body", frames(t, ""), "json"),
            ("not JSON", frames(t, "hello"), "json"),
            ("truncated JSON", frames(t, &good[..good.len() - 1]), "json"),
            (
                "NaN token",
                frames(t, &good.replacen("1,", "NaN,", 1)),
                "json",
            ),
            ("array", frames(t, "[1, 2, 3]"), "not_object"),
            ("number", frames(t, "42"), "not_object"),
            (
                "version 2",
                frames(t, &envelope(topic, "2", &good_payload)),
                "version",
            ),
            (
                "version 0",
                frames(t, &envelope(topic, "0", &good_payload)),
                "version",
            ),
            (
                "version string",
                frames(t, &envelope(topic, "\"1\"", &good_payload)),
                "field",
            ),
            (
                "no version",
                frames(t, &format!(r#"{{"topic":"{topic}","seq":1,"stamp_ns":2}}"#)),
                "field",
            ),
            (
                "negative seq",
                frames(t, &good.replace(r#""seq":1"#, r#""seq":-1"#)),
                "field",
            ),
            (
                "no payload",
                frames(
                    t,
                    &format!(r#"{{"topic":"{topic}","version":1,"seq":1,"stamp_ns":2}}"#),
                ),
                "field",
            ),
            (
                "payload missing a field",
                frames(t, &envelope(topic, "1", "{}")),
                "schema",
            ),
            (
                "payload null",
                frames(t, &envelope(topic, "1", "null")),
                "schema",
            ),
            (
                "payload wrong types",
                frames(t, &envelope(topic, "1", r#"{"frames":"many","t_ns":"x"}"#)),
                "schema",
            ),
            (
                // serde_json refuses numbers beyond f64 ("number out of range").
                "huge exponent",
                frames(t, &envelope(topic, "1", r#"{"pos_m":[1e999,0,0]}"#)),
                "json",
            ),
        ];
        for (name, input, reason) in cases {
            let g = decoder(&input).expect_err(name);
            assert_eq!(g.reason(), reason, "{topic}: {name}: {g}");
            assert!(!g.to_string().is_empty());
        }
    }
}

#[test]
fn compat_garbage_table() {
    type Parser = fn(&[u8]) -> Result<(), Garbage>;
    let parsers: [(&str, Parser); 3] = [
        ("detector", |b| parse_detector(b).map(drop)),
        ("set-points", |b| parse_set_points(b).map(drop)),
        ("pid-viz", |b| parse_pid_viz(b).map(drop)),
    ];
    let common: [(&str, &[u8], &str); 7] = [
        ("empty", b"", "json"),
        ("not UTF-8", &[0xff, 0x00, 0x7b], "json"),
        ("not JSON", b"pos=1,2,3", "json"),
        ("-inf from printf", br#"{"pos": [-inf, 0, 0]}"#, "json"),
        ("huge exponent", br#"{"pos": [1e999, 0, 0]}"#, "json"),
        ("array", b"[1, 2, 3]", "not_object"),
        ("empty object", b"{}", "field"),
    ];
    for (name, parser) in parsers {
        for (case, bytes, reason) in common {
            let g = parser(bytes).expect_err(case);
            assert_eq!(g.reason(), reason, "{name}: {case}: {g}");
        }
    }

    let detector: [(&[u8], Garbage); 6] = [
        (
            br#"{"angle": 1, "detect": true}"#,
            field_error("pos", "an array of 3 numbers", None),
        ),
        (
            br#"{"pos": [1, 2], "angle": 1, "detect": true}"#,
            Garbage::Field {
                field: "pos",
                expected: "an array of 3 numbers",
                found: "an array of another length",
            },
        ),
        (
            br#"{"pos": [1, "2", 3], "angle": 1, "detect": true}"#,
            Garbage::Field {
                field: "pos",
                expected: "an array of 3 numbers",
                found: "an array holding a non-number",
            },
        ),
        (
            br#"{"pos": [1, 2, 3], "angle": "north", "detect": true}"#,
            field_error("angle", "a number", Some(&json!("north"))),
        ),
        (
            br#"{"pos": [1, 2, 3], "angle": 1, "detect": 1}"#,
            field_error("detect", "a boolean", Some(&json!(1))),
        ),
        (
            br#"{"pos": [1, 2, 3], "angle": 1}"#,
            field_error("detect", "a boolean", None),
        ),
    ];
    for (bytes, expected) in detector {
        assert_eq!(parse_detector(bytes), Err(expected));
    }

    let set_points: [(&[u8], &str); 6] = [
        (br#"{"version": 2, "set-points": {}}"#, "version"),
        (br#"{"set-points": {}}"#, "field"),
        (br#"{"version": 1}"#, "field"),
        (br#"{"version": 1, "set-points": [0, 0]}"#, "field"),
        (br#"{"version": 1, "set-points": {"roll": null}}"#, "field"),
        (br#"{"version": 1, "set-points": {"yaw": "90"}}"#, "field"),
    ];
    for (bytes, reason) in set_points {
        let g = parse_set_points(bytes).expect_err("bad set-points");
        assert_eq!(g.reason(), reason, "{g}");
    }
    assert_eq!(
        parse_set_points(br#"{"version": 1, "set-points": {"velocity": true}}"#),
        Err(field_error(
            "set-points.velocity",
            "a number",
            Some(&json!(true))
        ))
    );

    let pid_ok = r#"{"name": "roll", "data": {"P": 1, "I": 0, "D": 0, "E": 0, "SP": 0, "OUT": 1}}"#;
    assert!(parse_pid_viz(pid_ok.as_bytes()).is_ok());
    // The 2013 `PID` class has no OUT.
    let no_out = pid_ok.replace(r#", "OUT": 1"#, "");
    assert_eq!(
        parse_pid_viz(no_out.as_bytes()),
        Err(field_error("data.OUT", "a number", None))
    );
    let no_name = pid_ok.replace(r#""name": "roll""#, r#""name": 3"#);
    assert_eq!(
        parse_pid_viz(no_name.as_bytes()).map_err(|g| g.reason()),
        Err("field")
    );
}

#[test]
fn garbage_display_names_the_problem() {
    assert_eq!(
        Garbage::Frames { got: 3 }.to_string(),
        "expected 2 frames (topic, envelope), got 3"
    );
    assert_eq!(
        Garbage::Version { got: 2 }.to_string(),
        "version 2 is not supported (supported: 1)"
    );
    assert_eq!(
        field_error("pos", "an array of 3 numbers", Some(&json!("x"))).to_string(),
        "field `pos` is a string, expected an array of 3 numbers"
    );
    assert_eq!(
        Garbage::NonFinite { field: "yaw_rad" }.to_string(),
        "`yaw_rad` is not finite"
    );
}

#[test]
fn long_topics_are_clipped() {
    let long = "é".repeat(300);
    let g = decode::<TruthMsg>(TOPIC_TRUTH, &frames(long.as_bytes(), "{}")).expect_err("topic");
    let Garbage::UnexpectedTopic { got, .. } = g else {
        panic!("{g:?}");
    };
    assert!(got.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
}

#[test]
fn garbage_counts_count_and_merge() {
    let mut a = GarbageCounts::default();
    a.count(TOPIC_TRUTH, &Garbage::Frames { got: 1 });
    a.count(TOPIC_TRUTH, &Garbage::TopicUtf8);
    let mut b = GarbageCounts::default();
    b.count(TOPIC_MEASUREMENT, &Garbage::NonFinite { field: "pos_m" });
    b.count(TOPIC_TRUTH, &Garbage::Frames { got: 0 });
    assert_eq!(a.total, 2);
    assert_eq!(
        a.last.as_deref(),
        Some("sim/truth: topic frame is not UTF-8")
    );
    a.merge(&b);
    assert_eq!(a.total, 4);
    assert_eq!(a.by_topic[TOPIC_TRUTH], 3);
    assert_eq!(a.by_topic[TOPIC_MEASUREMENT], 1);
    assert_eq!(a.by_reason["frames"], 2);
    assert_eq!(a.by_reason["utf8"], 1);
    assert_eq!(a.by_reason["non_finite"], 1);
    assert_eq!(
        a.last.as_deref(),
        Some("sim/truth: expected 2 frames (topic, envelope), got 0")
    );
    let before = a.clone();
    a.merge(&GarbageCounts::default());
    assert_eq!(a, before, "merging nothing changes nothing");
}

#[test]
fn seq_tracker_counts_gaps() {
    let mut s = SeqTracker::default();
    for seq in [1, 2, 5, 6, 10] {
        s.observe(seq);
    }
    assert_eq!((s.received, s.gaps, s.missed, s.restarts), (5, 2, 5, 0));
    assert_eq!(s.last(), Some(10));
}

#[test]
fn seq_tracker_counts_restarts() {
    let mut s = SeqTracker::default();
    for seq in [100, 101, 0, 1, 2, 2, 3] {
        s.observe(seq);
    }
    assert_eq!((s.received, s.gaps, s.missed, s.restarts), (7, 0, 0, 2));
    s.observe(u64::MAX);
    s.observe(u64::MAX);
    assert_eq!(s.restarts, 3);
    assert_eq!(s.gaps, 1);
}

/// Runs every decoder on `input`, counting failures; returns how many failed.
fn feed_all(input: &[Vec<u8>], counts: &mut GarbageCounts) -> u64 {
    let mut failures = 0;
    for (topic, decoder) in envelope_decoders() {
        if let Err(g) = decoder(input) {
            counts.count(topic, &g);
            failures += 1;
        }
    }
    for frame in input {
        let results = [
            ("detector", parse_detector(frame).map(drop)),
            ("set-points", parse_set_points(frame).map(drop)),
            ("pid-viz", parse_pid_viz(frame).map(drop)),
        ];
        for (topic, result) in results {
            if let Err(g) = result {
                counts.count(topic, &g);
                failures += 1;
            }
        }
    }
    failures
}

proptest! {
    /// Arbitrary byte frames never panic a decoder, and every failure is counted once.
    #[test]
    fn arbitrary_frames_never_panic(
        input in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4),
    ) {
        let mut counts = GarbageCounts::default();
        let failures = feed_all(&input, &mut counts);
        prop_assert_eq!(counts.total, failures);
        prop_assert_eq!(counts.by_reason.values().sum::<u64>(), failures);
    }

    /// JSON-looking bodies behind a valid topic never panic a decoder either.
    #[test]
    fn json_like_bodies_never_panic(
        topic in prop::sample::select(vec![TOPIC_TRUTH, TOPIC_MEASUREMENT, TOPIC_VISION_STATUS]),
        body in r#"\{("(topic|version|seq|stamp_ns|payload|pos|angle|detect|set-points|name|data|roll)":(1|2|-1|1e999|0.5|"sim/truth"|true|null|\[1,2,3\]|\{\}),?){0,6}\}"#,
    ) {
        let input = frames(topic.as_bytes(), &body);
        let mut counts = GarbageCounts::default();
        let failures = feed_all(&input, &mut counts);
        prop_assert_eq!(counts.total, failures);
    }

    /// Finite measurements survive encode/decode unchanged.
    #[test]
    fn measurements_round_trip(
        seq in any::<u64>(),
        capture_ns in any::<u64>(),
        pos in prop::array::uniform3(any::<i16>()),
        yaw in prop::option::of(any::<i16>()),
    ) {
        let m = MeasurementMsg {
            capture_ns,
            available_ns: capture_ns.saturating_add(1),
            seq,
            pos_m: pos.map(|p| f64::from(p) / 64.0),
            yaw_rad: yaw.map(|y| f64::from(y) / 1024.0),
        };
        let env = decode_measurement(&encode(TOPIC_MEASUREMENT, seq, capture_ns, &m));
        prop_assert_eq!(env.map(|e| e.payload), Ok(m));
    }
}
