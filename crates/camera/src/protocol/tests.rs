use super::*;
use proptest::prelude::*;

const PIXELS: usize = WIDTH * HEIGHT;

fn header(seq: u64) -> FrameHeader {
    FrameHeader {
        serial: "012345678912".to_string(),
        ..FrameHeader::kinect_v2(
            seq,
            1_000_125,
            1_700_000_000_000_000_000,
            Intrinsics::KINECT_V2_DEVICE2,
        )
    }
}

fn ramp(seed: u16) -> Vec<u16> {
    (0..PIXELS)
        .map(|i| (i as u16).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn good_parts(ir: bool) -> Vec<Vec<u8>> {
    let ir_image = ramp(3);
    encode_frame(&header(5), &ramp(1), ir.then_some(ir_image.as_slice()))
}

/// The header JSON of `good_parts`, edited by `f`, with the images of an IR-less frame.
fn with_header(f: impl FnOnce(&mut Map<String, Value>)) -> Vec<Vec<u8>> {
    let mut parts = good_parts(false);
    let mut obj: Map<String, Value> = serde_json::from_slice(&parts[1]).expect("our own JSON");
    f(&mut obj);
    parts[1] = serde_json::to_vec(&obj).expect("a map serializes");
    parts
}

fn err(parts: &[Vec<u8>]) -> FrameError {
    decode(parts).expect_err("should be rejected")
}

#[test]
fn a_frame_round_trips_without_ir() {
    let depth = ramp(1);
    let parts = encode_frame(&header(5), &depth, None);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], b"kinect/frame");
    assert_eq!(parts[2].len(), IMAGE_BYTES);
    let BridgeMessage::Frame(got) = decode(&parts).expect("valid") else {
        panic!("not a frame");
    };
    assert_eq!(got.header, header(5));
    assert_eq!(got.intrinsics, Intrinsics::KINECT_V2_DEVICE2);
    assert_eq!(got.frame.stamp_ns, 1_000_125_000);
    assert_eq!(got.frame.seq, 5);
    assert_eq!((got.frame.width, got.frame.height), (512, 424));
    assert_eq!(got.frame.depth_mm, depth);
    assert_eq!(got.frame.ir, None);
}

#[test]
fn a_frame_round_trips_with_ir() {
    let parts = good_parts(true);
    assert_eq!(parts.len(), 4);
    let BridgeMessage::Frame(got) = decode(&parts).expect("valid") else {
        panic!("not a frame");
    };
    assert_eq!(got.frame.ir, Some(ramp(3)));
}

#[test]
fn the_header_is_the_documented_json() {
    let parts = good_parts(true);
    let v: Value = serde_json::from_slice(&parts[1]).expect("JSON");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "version",
        "seq",
        "device_stamp_us",
        "host_stamp_ns",
        "width",
        "height",
        "depth_format",
        "ir",
        "intrinsics",
        "serial",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "serde_json's Map is sorted");
    assert_eq!(v["version"], 1);
    assert_eq!(v["depth_format"], "u16_mm_le");
    assert_eq!(v["ir"], true);
    assert_eq!(v["intrinsics"]["fx"], 365.402802);
    assert_eq!(v["intrinsics"]["p2"], 0.0);
}

#[test]
fn depth_is_little_endian() {
    let mut depth = vec![0u16; PIXELS];
    depth[0] = 0x1234;
    let parts = encode_frame(&header(0), &depth, None);
    assert_eq!(&parts[2][..2], &[0x34, 0x12]);
}

#[test]
fn a_status_round_trips() {
    for state in [
        BridgeState::Streaming,
        BridgeState::Stalled,
        BridgeState::NoDevice,
        BridgeState::Error,
    ] {
        let status = StatusMsg {
            state,
            message: "hello".to_string(),
        };
        let parts = encode_status(&status);
        assert_eq!(parts[0], b"kinect/status");
        assert_eq!(decode(&parts), Ok(BridgeMessage::Status(status)));
    }
    let parts = encode_status(&StatusMsg {
        state: BridgeState::NoDevice,
        message: String::new(),
    });
    assert_eq!(
        std::str::from_utf8(&parts[1]).expect("UTF-8"),
        r#"{"version":1,"state":"no_device","message":""}"#
    );
}

#[test]
fn wrong_part_counts_are_named() {
    assert_eq!(err(&[]), FrameError::Empty);
    let e = err(&good_parts(false)[..2]);
    assert_eq!(e.reason(), "parts");
    assert_eq!(
        e.to_string(),
        "a `kinect/frame` message with \"ir\": false (topic, header, depth) has 3 parts, got 2"
    );
    let e = err(&good_parts(true)[..3]);
    assert!(
        e.to_string()
            .contains("\"ir\": true (topic, header, depth, IR) has 4 parts, got 3")
    );
    let mut five = good_parts(true);
    five.push(vec![]);
    assert_eq!(err(&five).reason(), "parts");
    assert!(err(&good_parts(false)[..1]).to_string().contains("got 1"));
    let status = encode_status(&StatusMsg {
        state: BridgeState::Streaming,
        message: String::new(),
    });
    assert_eq!(err(&status[..1]).reason(), "parts");
}

#[test]
fn topics_are_checked() {
    let mut parts = good_parts(false);
    parts[0] = vec![0xff, 0xfe];
    assert_eq!(err(&parts), FrameError::TopicUtf8);
    parts[0] = b"kinect/color".to_vec();
    let e = err(&parts);
    assert_eq!(e.reason(), "topic");
    assert_eq!(
        e.to_string(),
        "unknown topic `kinect/color` (this receiver knows `kinect/frame` and `kinect/status`)"
    );
}

#[test]
fn a_header_that_is_not_utf8_or_json_is_named() {
    let mut parts = good_parts(false);
    parts[1] = b"{\"a\xff".to_vec();
    let e = err(&parts);
    assert_eq!(
        e,
        FrameError::NotUtf8 {
            part: "header",
            valid_up_to: 3
        }
    );
    parts[1] = b"{\"version\": 1,".to_vec();
    let e = err(&parts);
    assert_eq!(e.reason(), "json");
    assert!(
        e.to_string().starts_with("the header is not JSON: EOF"),
        "{e}"
    );
    // Python's json writes NaN for a non-finite float: not JSON.
    parts[1] = br#"{"version": 1, "x": NaN}"#.to_vec();
    assert_eq!(err(&parts).reason(), "json");
    parts[1] = b"[1, 2]".to_vec();
    assert_eq!(
        err(&parts).to_string(),
        "the header is an array, expected a JSON object"
    );
}

#[test]
fn other_versions_are_rejected_and_said() {
    let e = err(&with_header(|h| {
        h.insert("version".into(), 2.into());
    }));
    assert_eq!(e.reason(), "version");
    assert_eq!(
        e.to_string(),
        "unsupported header version: got 2, this receiver supports version 1 only"
    );
    let e = err(&with_header(|h| {
        h.remove("version");
    }));
    assert!(e.to_string().contains("got no `version` field"), "{e}");
    let e = err(&with_header(|h| {
        h.insert("version".into(), "1".into());
    }));
    assert!(e.to_string().contains("got \"1\""), "{e}");
    let status = vec![
        b"kinect/status".to_vec(),
        br#"{"version":7,"state":"streaming","message":""}"#.to_vec(),
    ];
    assert_eq!(
        err(&status).to_string(),
        "unsupported status version: got 7, this receiver supports version 1 only"
    );
}

#[test]
fn a_version_2_header_with_other_fields_is_a_version_error_not_a_schema_error() {
    let mut parts = good_parts(false);
    parts[1] = br#"{"version": 2, "frame": {"w": 640}}"#.to_vec();
    assert_eq!(err(&parts).reason(), "version");
}

#[test]
fn missing_or_mistyped_fields_are_schema_errors_with_serde_s_message() {
    let e = err(&with_header(|h| {
        h.remove("host_stamp_ns");
    }));
    assert_eq!(e.reason(), "schema");
    assert_eq!(
        e.to_string(),
        "the header does not match protocol version 1: missing field `host_stamp_ns`"
    );
    let e = err(&with_header(|h| {
        h.insert("seq".into(), (-1).into());
    }));
    assert!(e.to_string().contains("invalid value: integer `-1`"), "{e}");
    let e = err(&with_header(|h| {
        h["intrinsics"]
            .as_object_mut()
            .expect("object")
            .remove("k3");
    }));
    assert!(e.to_string().contains("missing field `k3`"), "{e}");
    let status = vec![
        b"kinect/status".to_vec(),
        br#"{"version":1,"state":"asleep","message":""}"#.to_vec(),
    ];
    let e = err(&status);
    assert_eq!(e.reason(), "schema");
    assert!(e.to_string().contains("unknown variant `asleep`"), "{e}");
}

#[test]
fn unknown_header_fields_are_ignored() {
    let parts = with_header(|h| {
        h.insert("exposure".into(), 4.5.into());
    });
    assert!(decode(&parts).is_ok());
}

#[test]
fn only_the_kinect_v2_depth_size_is_accepted() {
    let e = err(&with_header(|h| {
        h.insert("width".into(), 640.into());
        h.insert("height".into(), 480.into());
    }));
    assert_eq!(e.reason(), "geometry");
    assert_eq!(
        e.to_string(),
        "the frame is 640×480; only the Kinect v2 depth size 512×424 is accepted"
    );
}

#[test]
fn only_u16_mm_le_depth_is_accepted() {
    let e = err(&with_header(|h| {
        h.insert("depth_format".into(), "f32_mm_le".into());
    }));
    assert_eq!(e.reason(), "depth_format");
    assert_eq!(
        e.to_string(),
        "depth_format `f32_mm_le` is not supported (protocol version 1 has only `u16_mm_le`)"
    );
}

#[test]
fn non_positive_focal_lengths_are_rejected() {
    let e = err(&with_header(|h| {
        h["intrinsics"]["fy"] = 0.0.into();
    }));
    assert_eq!(e.reason(), "intrinsics");
    assert_eq!(
        e.to_string(),
        "intrinsics.fy = 0 is not usable: it must be finite and positive"
    );
    let e = err(&with_header(|h| {
        h["intrinsics"]["fx"] = (-365.4).into();
    }));
    assert!(e.to_string().starts_with("intrinsics.fx = -365.4"), "{e}");
}

#[test]
fn non_finite_intrinsics_are_rejected() {
    // JSON cannot carry them (serde_json writes null, which is a schema error) ...
    let mut k = Intrinsics::KINECT_V2_DEVICE2;
    k.k2 = f64::NAN;
    let parts = encode_frame(&FrameHeader::kinect_v2(0, 0, 0, k), &vec![0; PIXELS], None);
    assert_eq!(err(&parts).reason(), "schema");
    // ... and the check behind them names the field.
    let k = IntrinsicsIn {
        fx: 1.0,
        fy: 1.0,
        cx: 0.0,
        cy: 0.0,
        k1: 0.0,
        k2: f64::INFINITY,
        k3: 0.0,
        p1: 0.0,
        p2: 0.0,
    };
    let e = validate_intrinsics(&k).expect_err("k2 is infinite");
    assert_eq!(
        e.to_string(),
        "intrinsics.k2 = inf is not usable: it must be finite"
    );
    let k = IntrinsicsIn { fx: f64::NAN, ..k };
    assert!(validate_intrinsics(&k).is_err());
}

#[test]
fn wrong_image_sizes_are_named_in_bytes() {
    let mut parts = good_parts(true);
    parts[2].truncate(10);
    let e = err(&parts);
    assert_eq!(e.reason(), "size");
    assert_eq!(
        e.to_string(),
        "depth is 10 bytes, expected 512×424×2 = 434176"
    );
    let mut parts = good_parts(true);
    parts[3].push(0);
    assert_eq!(
        err(&parts).to_string(),
        "IR is 434177 bytes, expected 512×424×2 = 434176"
    );
}

#[test]
fn long_text_from_a_peer_is_clipped() {
    let topic = format!("kinect/{}", "é".repeat(500));
    let FrameError::UnknownTopic { topic } = err(&[topic.into_bytes()]) else {
        panic!("unknown topic expected");
    };
    assert!(topic.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
    let status = encode_status(&StatusMsg {
        state: BridgeState::Error,
        message: "x".repeat(5000),
    });
    let Ok(BridgeMessage::Status(s)) = decode(&status) else {
        panic!("valid status");
    };
    assert!(s.message.len() <= MAX_STATUS_BYTES + '…'.len_utf8());
}

#[test]
fn reasons_are_distinct_per_kind() {
    let errors = [
        FrameError::Empty,
        FrameError::TopicUtf8,
        FrameError::UnknownTopic {
            topic: String::new(),
        },
        FrameError::NotUtf8 {
            part: "header",
            valid_up_to: 0,
        },
        FrameError::Json {
            part: "header",
            message: String::new(),
        },
        FrameError::NotObject {
            part: "header",
            found: "null",
        },
        FrameError::Version {
            part: "header",
            found: String::new(),
        },
        FrameError::Schema {
            part: "header",
            message: String::new(),
        },
        FrameError::Geometry {
            width: 0,
            height: 0,
        },
        FrameError::DepthFormat {
            found: String::new(),
        },
        FrameError::Intrinsics {
            field: "fx",
            value: 0.0,
            rule: "",
        },
        FrameError::ImageSize {
            part: "depth",
            got: 0,
        },
    ];
    let mut reasons: Vec<&str> = errors.iter().map(FrameError::reason).collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), errors.len());
}

/// Encoded once: encoding in a debug build costs more than the decoding under test.
static GOOD_WITH_IR: std::sync::LazyLock<Vec<Vec<u8>>> =
    std::sync::LazyLock::new(|| good_parts(true));

fn arbitrary_parts() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let part = prop::collection::vec(any::<u8>(), 0..64);
    let topic = prop_oneof![
        Just(b"kinect/frame".to_vec()),
        Just(b"kinect/status".to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
    ];
    (topic, prop::collection::vec(part, 0..5)).prop_map(|(t, mut rest)| {
        rest.insert(0, t);
        rest
    })
}

proptest! {
    /// Arbitrary multipart bytes never panic the decoder.
    #[test]
    fn arbitrary_parts_never_panic(parts in arbitrary_parts()) {
        let _ = decode(&parts);
    }

    /// A valid frame with one byte of its header changed, or one part cut short, never panics.
    #[test]
    fn damaged_frames_never_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        part in 0usize..4,
        keep in any::<prop::sample::Index>(),
    ) {
        let mut parts = GOOD_WITH_IR.clone();
        let i = at.index(parts[1].len());
        parts[1][i] = byte;
        let _ = decode(&parts);
        let mut parts = GOOD_WITH_IR.clone();
        let n = keep.index(parts[part].len() + 1);
        parts[part].truncate(n);
        let _ = decode(&parts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any header values and any pixels survive encode → decode unchanged.
    #[test]
    fn frames_round_trip(
        seq in any::<u64>(),
        device_stamp_us in 0u64..u64::MAX / 1000,
        host_stamp_ns in any::<u64>(),
        serial in "[ -~]{0,20}",
        fx in 1.0f64..1000.0,
        k1 in -1.0f64..1.0,
        pixels in prop::collection::vec((0..PIXELS, any::<u16>()), 0..32),
        with_ir in any::<bool>(),
    ) {
        let mut depth = vec![0u16; PIXELS];
        for &(i, v) in &pixels {
            depth[i] = v;
        }
        let ir: Vec<u16> = depth.iter().map(|v| v.rotate_left(3)).collect();
        let h = FrameHeader {
            serial,
            intrinsics: Intrinsics { fx, fy: fx, k1, ..Intrinsics::KINECT_V2_DEVICE1 },
            ..FrameHeader::kinect_v2(seq, device_stamp_us, host_stamp_ns, Intrinsics::KINECT_V2_DEVICE1)
        };
        let parts = encode_frame(&h, &depth, with_ir.then_some(ir.as_slice()));
        let BridgeMessage::Frame(got) = decode(&parts).expect("valid") else {
            panic!("not a frame");
        };
        // serde_json's default float parsing may differ from the written value in the last bit.
        let k = got.header.intrinsics;
        prop_assert!((k.fx - fx).abs() <= 1e-12 * fx && (k.k1 - k1).abs() <= 1e-12);
        prop_assert_eq!(&FrameHeader { intrinsics: h.intrinsics, ..got.header.clone() }, &h);
        prop_assert_eq!(got.frame.stamp_ns, device_stamp_us * 1000);
        prop_assert_eq!(&got.frame.depth_mm, &depth);
        prop_assert_eq!(got.frame.ir, with_ir.then_some(ir));
    }
}
