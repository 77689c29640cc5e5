use super::*;
use crate::protocol::FrameHeader;
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{DepthFrame, HEIGHT, WIDTH};
use mcap::records::MessageHeader;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

const PIXELS: usize = WIDTH * HEIGHT;
const T0_NS: u64 = 1_700_000_000_000_000_000;
/// 30 Hz.
const FRAME_NS: u64 = 33_333_333;

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("depthpilot-session-{}-{name}", std::process::id()))
}

fn session_header() -> SessionHeader {
    SessionHeader {
        rig: "bench".to_string(),
        scene: "scenes/hover_kinect.ron".to_string(),
        camera_position_m: [0.1, -2.5, 0.30000000000000004],
        camera_look_at_m: [0.0, 0.0, 1.0 / 3.0],
        camera_up_hint: [0.0, 0.0, 1.0],
        bridge_endpoint: Some("tcp://127.0.0.1:7720".to_string()),
        started_unix_ns: T0_NS,
    }
}

/// Frame `seq`, with an IR image on odd frames; intrinsics with awkward last bits.
fn frame(seq: u64) -> ReceivedFrame {
    let intrinsics = Intrinsics {
        fx: 365.402802 + 1e-13,
        k1: 0.1 + 0.2,
        ..Intrinsics::KINECT_V2_DEVICE2
    };
    let header = FrameHeader {
        serial: "012345678912".to_string(),
        ..FrameHeader::kinect_v2(seq, 1_000_125 + seq * 33_333, T0_NS + seq * 7, intrinsics)
    };
    let depth_mm: Vec<u16> = (0..PIXELS)
        .map(|i| ((i as u64 * 31 + seq) % 65536) as u16)
        .collect();
    let ir = (seq % 2 == 1).then(|| depth_mm.iter().map(|v| v.rotate_left(5)).collect());
    ReceivedFrame {
        frame: DepthFrame {
            stamp_ns: header.device_stamp_us * 1000,
            seq,
            width: WIDTH,
            height: HEIGHT,
            depth_mm,
            ir,
        },
        intrinsics: header.intrinsics,
        header,
    }
}

fn detection(seq: u64) -> DetectionRecord {
    if seq % 3 == 2 {
        DetectionRecord {
            frame_seq: seq,
            found: false,
            pos_m: None,
            yaw_rad: None,
            pixels: None,
            miss: Some("too few pixels: 12 < 40".to_string()),
        }
    } else {
        DetectionRecord {
            frame_seq: seq,
            found: true,
            pos_m: Some([0.1 + 0.2, -1e-300, 1.0 / 3.0 + seq as f64 * 1e-17]),
            yaw_rad: Some(std::f64::consts::PI / 7.0),
            pixels: Some(1234 + seq as usize),
            miss: None,
        }
    }
}

fn no_wall_clock() -> SessionOptions {
    SessionOptions {
        wall_clock_flush: false,
        ..SessionOptions::default()
    }
}

/// Writes `n` frames at 30 Hz, each followed by its detection; returns the file's bytes.
fn write_session(name: &str, n: u64) -> (Vec<u8>, SessionStats) {
    let path = temp(name);
    let mut w =
        SessionWriter::create_with(&path, &session_header(), no_wall_clock()).expect("create");
    for seq in 0..n {
        let t = T0_NS + seq * FRAME_NS;
        w.write_frame(t, &frame(seq)).expect("frame");
        w.write_detection(t + 1_000_000, &detection(seq))
            .expect("detection");
    }
    let stats = w.finish().expect("finish");
    let bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    (bytes, stats)
}

fn read_bytes(bytes: &[u8]) -> Result<Session, SessionError> {
    read_session_from(Path::new("mem.mcap"), bytes, bytes.len() as u64)
}

/// Every frame and detection before `n`, exactly as written.
fn assert_prefix(s: &Session, frames: usize, detections: usize) {
    assert_eq!(s.frames.len(), frames);
    assert_eq!(s.detections.len(), detections);
    for (i, (t, f)) in s.frames.iter().enumerate() {
        assert_eq!(*t, T0_NS + i as u64 * FRAME_NS);
        assert!(*f == frame(i as u64), "frame {i} differs");
    }
    for (i, (t, d)) in s.detections.iter().enumerate() {
        assert_eq!(*t, T0_NS + i as u64 * FRAME_NS + 1_000_000);
        assert_eq!(*d, detection(i as u64));
    }
}

#[test]
fn a_session_round_trips_bit_for_bit() {
    let (bytes, stats) = write_session("rt.mcap", 40);
    assert_eq!(
        stats,
        SessionStats {
            messages: 81,
            frames: 40,
            detections: 40,
            // The header's own chunk, then ~4 MiB (6–7 frames, IR on every other) each.
            chunks: stats.chunks,
        }
    );
    assert!((7..=10).contains(&stats.chunks), "{stats:?}");
    let s = read_bytes(&bytes).expect("MCAP");
    assert!(s.damage.is_none(), "{:?}", s.damage);
    assert_eq!(s.header, Some(session_header()));
    assert_prefix(&s, 40, 40);
    assert_eq!(s.frames[1].1.frame.ir.as_ref().map(Vec::len), Some(PIXELS));
    assert_eq!(s.frames[0].1.frame.ir, None);
    // Bit-identical floats, checked by bits (== would let -0.0 pass for 0.0).
    let k = s.frames[3].1.intrinsics;
    assert_eq!(k.fx.to_bits(), (365.402802f64 + 1e-13).to_bits());
    assert_eq!(k.k1.to_bits(), (0.1f64 + 0.2).to_bits());
    let p = s.detections[1].1.pos_m.expect("found");
    assert_eq!(p[1].to_bits(), (-1e-300f64).to_bits());
    assert_eq!(s.undecodable_frames, 0);
    assert_eq!(s.undecodable_json, 0);

    // The mcap crate's own readers agree: the streaming one, and the summary (indexed).
    assert_eq!(
        mcap::MessageStream::new(&bytes).expect("stream").count(),
        81
    );
    let summary = mcap::Summary::read(&bytes)
        .expect("summary")
        .expect("present");
    assert_eq!(summary.stats.map(|s| s.message_count), Some(81));
    let topics: Vec<(String, String)> = summary
        .channels
        .values()
        .map(|c| (c.topic.clone(), c.message_encoding.clone()))
        .collect();
    assert!(topics.contains(&(TOPIC_SESSION_FRAME.to_string(), FRAME_ENCODING.to_string())));
}

/// Small messages go out in chunks of less than 0.5 s of log time each.
#[test]
fn chunks_close_every_half_second_of_log_time() {
    let path = temp("span.mcap");
    let mut w =
        SessionWriter::create_with(&path, &session_header(), no_wall_clock()).expect("create");
    // 2 s of detections at 30 Hz: 60 of them, starting at T0.
    for seq in 0..60 {
        w.write_detection(T0_NS + seq * FRAME_NS + 1_000_000, &detection(seq))
            .expect("detection");
    }
    let stats = w.finish().expect("finish");
    // The header's chunk, then 0–15, 16–31, 32–47 (each < 0.5 s from its first), 48–59.
    assert_eq!(stats.chunks, 5, "{stats:?}");
    let bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    let s = read_bytes(&bytes).expect("MCAP");
    assert_prefix(&s, 0, 60);
    // Killed before the footer: all four complete chunks survive, the open one (never
    // written) is what a kill loses.
    let summary = mcap::Summary::read(&bytes)
        .expect("summary")
        .expect("present");
    let last_chunk_start = summary
        .chunk_indexes
        .iter()
        .map(|c| c.chunk_start_offset)
        .max()
        .expect("chunks");
    let s = read_bytes(&bytes[..last_chunk_start as usize]).expect("MCAP");
    assert_prefix(&s, 0, 48);
    let kept_until_ns = s.detections[47].0;
    let lost_ns = (T0_NS + 59 * FRAME_NS + 1_000_000) - kept_until_ns;
    assert!(lost_ns < 500_000_000, "lost {lost_ns} ns");
}

/// A frame message is `encode_frame`'s parts, packed as documented.
#[test]
fn a_frame_message_is_the_packed_protocol_parts() {
    let f = frame(1);
    let parts = encode_frame(&f.header, &f.frame.depth_mm, f.frame.ir.as_deref());
    let packed = pack_parts(&parts).expect("fits");
    assert_eq!(packed[..4], 4u32.to_le_bytes());
    let header_len = parts[1].len();
    assert_eq!(packed[4..8], 12u32.to_le_bytes());
    assert_eq!(&packed[8..20], b"kinect/frame");
    assert_eq!(packed[20..24], (header_len as u32).to_le_bytes());
    assert_eq!(packed.len(), 4 + 4 * 4 + 12 + header_len + 2 * 434_176);
    assert_eq!(unpack_parts(&packed), Ok(parts));
    assert_eq!(decode_frame_message(&packed), Ok(f));

    assert_eq!(
        unpack_parts(&packed[..10]),
        Err(UnpackError::Short {
            what: "a part",
            len: 10
        })
    );
    let mut extra = packed.clone();
    extra.push(0);
    assert_eq!(
        unpack_parts(&extra),
        Err(UnpackError::Trailing { count: 4, extra: 1 })
    );
    let status = crate::protocol::encode_status(&crate::protocol::StatusMsg {
        state: crate::protocol::BridgeState::Streaming,
        message: String::new(),
    });
    let status = pack_parts(&status).expect("fits");
    assert_eq!(
        decode_frame_message(&status),
        Err(FrameRecordError::NotAFrame)
    );
}

/// A cut file keeps every message of the complete chunks before the cut and says why it
/// stopped; no cut panics.
#[test]
fn a_cut_session_keeps_what_precedes_the_cut() {
    let (bytes, _) = write_session("cut.mcap", 40);
    let full = read_bytes(&bytes).expect("MCAP");
    let mut last_frames = 0;
    for cut in [
        1,
        7,
        8,
        20,
        200,
        1_000,
        500_000,
        bytes.len() / 2,
        bytes.len() - 9,
    ] {
        let s = read_bytes(&bytes[..cut]).expect("still MCAP");
        let damage = s.damage.as_deref().expect("damage reported");
        assert!(damage.contains("ends early"), "cut {cut}: {damage}");
        // Frames come with their detection in the same chunk, but a chunk may end between them.
        let n = s.frames.len();
        assert!(
            s.detections.len() == n || s.detections.len() + 1 == n,
            "cut {cut}"
        );
        assert_prefix(&s, n, s.detections.len());
        assert!(
            n >= last_frames,
            "cut {cut}: fewer frames than a shorter cut"
        );
        last_frames = n;
        if cut >= 4_000 {
            assert_eq!(s.header, Some(session_header()), "cut {cut}");
        }
    }
    // Cut just before the footer: everything is there, only the end is missing.
    let s = read_bytes(&bytes[..bytes.len() - 9]).expect("MCAP");
    assert_eq!(s.frames.len(), full.frames.len());
    // Cuts at a stride through a small session, and at every byte of its start and end.
    let small = small_session();
    let ends = (0..small.len()).step_by(small.len() / 97);
    for cut in ends.chain(0..2500).chain(small.len() - 100..small.len()) {
        let s = read_bytes(&small[..cut]);
        assert!(s.is_ok() || cut == 0, "cut {cut}");
    }
}

/// Issue 21, acceptance 3: a flipped byte in a middle chunk of a real session. Its CRC drops
/// that chunk whole, the skip is said, and the frames after it are read, exactly as written.
#[test]
fn a_damaged_chunk_is_skipped_and_the_frames_after_it_read() {
    let (bytes, stats) = write_session("corrupt.mcap", 40);
    let chunks = depthpilot_mcaplog::chunk_offsets(&bytes);
    assert_eq!(chunks.len(), stats.chunks as usize);
    let middle = chunks[chunks.len() / 2];
    let mut bad = bytes.clone();
    // Inside the chunk's records (its header is 49 bytes).
    bad[middle + 1000] ^= 0x55;
    let s = read_bytes(&bad).expect("MCAP");
    assert_eq!(s.skipped.len(), 1, "{:?}", s.skipped);
    assert_eq!(s.skipped[0].offset, middle);
    let damage = s.damage.as_deref().expect("the skip is said");
    assert!(
        damage.contains("1 damaged record skipped") && damage.contains("CRC fails"),
        "{damage}"
    );
    assert!(!damage.contains("ends early"), "{damage}");
    let seqs: Vec<u64> = s.frames.iter().map(|(_, f)| f.header.seq).collect();
    let lost: Vec<u64> = (0..40).filter(|q| !seqs.contains(q)).collect();
    // One chunk's frames are lost (a chunk holds 4–7 of them), those before and after read.
    assert!((1..8).contains(&lost.len()), "lost {lost:?}");
    assert!(lost.windows(2).all(|w| w[1] == w[0] + 1), "lost {lost:?}");
    assert_eq!(seqs.first(), Some(&0));
    assert_eq!(seqs.last(), Some(&39));
    let after = seqs.iter().filter(|&&q| q > lost[lost.len() - 1]).count();
    assert!(after >= 10, "{after} frames after the damaged chunk");
    for (t, f) in &s.frames {
        let q = f.header.seq;
        assert_eq!(*t, T0_NS + q * FRAME_NS);
        assert!(*f == frame(q), "frame {q} differs");
    }
    for (t, d) in &s.detections {
        let q = d.frame_seq;
        assert_eq!(*t, T0_NS + q * FRAME_NS + 1_000_000);
        assert_eq!(*d, detection(q));
    }
    assert_eq!(s.header, Some(session_header()));
}

/// A killed session, repaired (`depthpilot log repair`): whole again, summary and chunk index
/// present, and every frame read before the cut reads back the same.
#[test]
fn a_cut_session_repairs_whole() {
    let (bytes, _) = write_session("to-repair.mcap", 20);
    let cut = temp("cut-to-repair.mcap");
    let fixed = temp("cut-repaired.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let before = read_session(&cut).expect("MCAP");
    assert!(
        before
            .damage
            .as_deref()
            .is_some_and(|d| d.contains("ends early"))
    );
    let report = depthpilot_mcaplog::repair(&cut, &fixed).expect("repair");
    assert!(!report.input_was_whole());
    let repaired = std::fs::read(&fixed).expect("read");
    let summary = mcap::Summary::read(&repaired)
        .expect("summary")
        .expect("present");
    assert!(!summary.chunk_indexes.is_empty());
    let after = read_session(&fixed).expect("MCAP");
    assert!(after.damage.is_none(), "{:?}", after.damage);
    assert_eq!(after.header, Some(session_header()));
    assert!(!after.frames.is_empty());
    assert!(
        after.frames == before.frames,
        "the same frames, bit for bit"
    );
    assert_eq!(after.detections, before.detections);
    let _ = std::fs::remove_file(&cut);
    let _ = std::fs::remove_file(&fixed);
}

#[test]
fn a_file_that_is_not_mcap_is_an_error_naming_it() {
    let path = temp("garbage.mcap");
    std::fs::write(&path, b"P5\n512 424\n65535\n\x00\x01").expect("write");
    let e = read_session(&path).expect_err("not MCAP");
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("50 35 0a 35") && text.contains("P5.512"),
        "{text}"
    );
    std::fs::write(&path, b"").expect("write");
    let text = read_session(&path).expect_err("empty").to_string();
    assert!(text.contains("the file is empty"), "{text}");
    let _ = std::fs::remove_file(&path);
    let missing = temp("missing.mcap");
    let text = read_session(&missing).expect_err("missing").to_string();
    assert!(text.contains("missing.mcap"), "{text}");
}

/// Messages on other topics are skipped; a bad frame message is counted, not fatal.
#[test]
fn other_topics_are_skipped_and_bad_frames_counted() {
    let mut buf = Vec::new();
    {
        let mut w = mcap::Writer::new(std::io::Cursor::new(&mut buf)).expect("writer");
        let none = BTreeMap::new();
        let other = w
            .add_channel(0, "/flight/state", "json", &none)
            .expect("channel");
        let frames = w
            .add_channel(0, TOPIC_SESSION_FRAME, FRAME_ENCODING, &none)
            .expect("channel");
        let wrong = w
            .add_channel(0, TOPIC_SESSION_FRAME, "cdr", &none)
            .expect("channel");
        let detections = w
            .add_channel(0, TOPIC_SESSION_DETECTION, "json", &none)
            .expect("channel");
        let f = frame(2);
        let good = pack_parts(&encode_frame(&f.header, &f.frame.depth_mm, None)).expect("fits");
        let messages: [(u16, &[u8]); 6] = [
            (other, b"{\"t_s\": 1}"),
            (frames, &good),
            (frames, b"\x01\x00\x00\x00"),
            (wrong, &good),
            (detections, b"not json"),
            (frames, &good[..good.len() - 2]),
        ];
        for (i, (channel_id, data)) in messages.into_iter().enumerate() {
            let header = MessageHeader {
                channel_id,
                sequence: i as u32,
                log_time: i as u64,
                publish_time: i as u64,
            };
            w.write_to_known_channel(&header, data).expect("write");
        }
        w.finish().expect("finish");
    }
    let s = read_bytes(&buf).expect("MCAP");
    assert!(s.damage.is_none(), "{:?}", s.damage);
    assert_eq!(s.header, None);
    assert_eq!(s.frames.len(), 1);
    assert_eq!(s.frames[0].0, 1);
    assert_eq!(s.undecodable_frames, 3);
    assert_eq!(s.undecodable_json, 1);
    let first = s.first_undecodable_frame.expect("kept");
    assert!(
        matches!(first, FrameRecordError::Unpack(UnpackError::Short { .. })),
        "{first}"
    );
}

/// A camera that stops still gets its frames to the file within the chunk span, with no
/// further message to push them out.
#[test]
fn frames_reach_the_file_without_more_messages() {
    let path = temp("wall.mcap");
    let mut w = SessionWriter::create(&path, &session_header()).expect("create");
    w.write_frame(T0_NS, &frame(0)).expect("frame");
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = read_session(&path).expect("MCAP");
        if !s.frames.is_empty() || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(s.frames.len(), 1, "{:?}", s.damage);
    assert!(s.damage.is_some_and(|d| d.contains("ends early")));
    w.finish().expect("finish");
    let s = read_session(&path).expect("MCAP");
    assert!(s.damage.is_none(), "{:?}", s.damage);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn errors_name_the_file() {
    let path = Path::new("/nonexistent-dir/x.mcap");
    let e = SessionWriter::create(path, &session_header())
        .err()
        .expect("fails");
    assert!(e.to_string().contains("/nonexistent-dir/x.mcap"), "{e}");

    let path = temp("nan.mcap");
    let mut w = SessionWriter::create(&path, &session_header()).expect("create");
    let d = DetectionRecord {
        yaw_rad: Some(f64::NAN),
        ..detection(0)
    };
    let e = w.write_detection(0, &d).expect_err("NaN refused");
    assert!(
        e.to_string().contains("nan.mcap") && e.to_string().contains("yaw_rad"),
        "{e}"
    );
    w.finish().expect("finish");
    let _ = std::fs::remove_file(&path);
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

/// Each JSON Schema names exactly the fields the message serialises.
#[test]
fn schemas_match_the_messages() {
    for (schema, message) in [
        (
            HEADER_SCHEMA,
            serde_json::to_value(session_header()).expect("json"),
        ),
        (
            DETECTION_SCHEMA,
            serde_json::to_value(detection(0)).expect("json"),
        ),
    ] {
        let schema: serde_json::Value = serde_json::from_str(schema).expect("schema is JSON");
        assert_eq!(keys(&schema["properties"]), keys(&message));
    }
}

/// A small session (two frames, one with IR) for the damage property.
fn small_session() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| write_session("small.mcap", 2).0)
}

fn damage_offset(len: usize) -> impl Strategy<Value = usize> {
    prop_oneof![0..len.min(4096), len.saturating_sub(4096)..len, 0..len]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random byte damage and cuts never panic the reader, and every frame it reads is one that
    /// was written, in order.
    #[test]
    fn random_damage_never_panics(
        flips in prop::collection::vec(
            (damage_offset(small_session().len()), 1u8..=255), 0..8),
        cut in prop_oneof![Just(usize::MAX), damage_offset(small_session().len())],
    ) {
        let mut bytes = small_session().to_vec();
        for (at, x) in flips {
            bytes[at] ^= x;
        }
        bytes.truncate(cut);
        if let Ok(s) = read_bytes(&bytes) {
            // Chunks are CRC-checked before any of their messages is taken: each frame read is
            // one that was written, in order (a damaged chunk leaves a gap).
            for (_, f) in &s.frames {
                prop_assert!(*f == frame(f.header.seq), "frame {} differs", f.header.seq);
            }
            prop_assert!(s.frames.windows(2).all(|w| w[0].1.header.seq < w[1].1.header.seq));
        }
    }

    /// Arbitrary bytes never panic the unpacker or the frame decoder.
    #[test]
    fn arbitrary_frame_messages_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_frame_message(&bytes);
    }
}
