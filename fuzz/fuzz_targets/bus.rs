//! Feeds arbitrary bytes to the bus decoders: our envelope (`bus::decode` for the truth and
//! vision-status topics, `bus::decode_measurement`) and the 2015 Kinect demo's single-frame
//! messages (`parse_detector`, `parse_set_points`, `parse_pid_viz`).
//!
//! Input: byte 0 picks the decoder (mod 6); for the envelope decoders the rest is the frames,
//! packed as `depthpilot_camera::session::pack_parts` does, or else `topic\nbody` (two frames),
//! or else one frame.
//! Invariants: nothing panics; a decoded message re-encodes (`bus::encode`, `to_json`) and
//! decodes to the same value; a rejection has a reason key and a message that is not empty and
//! is bounded (1 KiB: text from the peer is clipped).
#![no_main]

use depthpilot_camera::session::unpack_parts;
use depthpilot_runtime::bus::{
    self, Garbage, TOPIC_MEASUREMENT, TOPIC_TRUTH, TOPIC_VISION_STATUS, TruthMsg, VisionStatusMsg,
};
use libfuzzer_sys::fuzz_target;

/// Longest text in a clipped field of a decoded message (bytes), `…` excluded.
const MAX_TEXT_BYTES: usize = 200;

fn frames(rest: &[u8]) -> Vec<Vec<u8>> {
    if let Ok(parts) = unpack_parts(rest) {
        return parts;
    }
    match rest.iter().position(|b| *b == b'\n') {
        Some(i) => vec![rest[..i].to_vec(), rest[i + 1..].to_vec()],
        None => vec![rest.to_vec()],
    }
}

fn check_garbage(g: &Garbage) {
    assert!(!g.reason().is_empty());
    let text = g.to_string();
    assert!(!text.is_empty());
    assert!(
        text.len() <= 1024,
        "unbounded rejection text: {} bytes",
        text.len()
    );
}

fn envelope<T>(
    topic: &str,
    frames: &[Vec<u8>],
    decode: impl Fn(&[Vec<u8>]) -> Result<bus::Envelope<T>, Garbage>,
) where
    T: serde::Serialize + PartialEq + std::fmt::Debug,
{
    match decode(frames) {
        Ok(env) => {
            assert_eq!(env.topic, topic);
            let again = decode(&bus::encode(topic, env.seq, env.stamp_ns, &env.payload))
                .expect("a decoded envelope re-encodes and decodes");
            assert_eq!(again, env);
        }
        Err(g) => check_garbage(&g),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => envelope(TOPIC_TRUTH, &frames(rest), |f| {
            bus::decode::<TruthMsg>(TOPIC_TRUTH, f)
        }),
        1 => envelope(TOPIC_MEASUREMENT, &frames(rest), |f| {
            let env = bus::decode_measurement(f)?;
            env.payload
                .validate()
                .expect("a decoded measurement is valid");
            Ok(env)
        }),
        2 => envelope(TOPIC_VISION_STATUS, &frames(rest), |f| {
            bus::decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, f)
        }),
        3 => match bus::parse_detector(rest) {
            Ok(m) => {
                assert!(m.pos_m.iter().all(|x| x.is_finite()) && m.angle_deg.is_finite());
                assert_eq!(bus::parse_detector(&m.to_json()), Ok(m));
            }
            Err(g) => check_garbage(&g),
        },
        4 => match bus::parse_set_points(rest) {
            Ok(m) => assert_eq!(bus::parse_set_points(&m.to_json()), Ok(m)),
            Err(g) => check_garbage(&g),
        },
        _ => match bus::parse_pid_viz(rest) {
            Ok(m) => {
                // A longer name was clipped (with `…` appended) and would be clipped again.
                if m.name.len() <= MAX_TEXT_BYTES {
                    assert_eq!(bus::parse_pid_viz(&m.to_json()), Ok(m));
                }
            }
            Err(g) => check_garbage(&g),
        },
    }
});
