//! Feeds arbitrary bytes to the Kinect bridge protocol decoder (`depthpilot_camera::decode`) and
//! to the recorded-frame decoder (`session::decode_frame_message`). The input is the parts,
//! packed as `session::pack_parts` does (the recorded form), or else one part.
//! Invariants: nothing panics; both decoders agree; a decoded message re-encodes
//! (`encode_status`, `encode_frame`) and decodes to the same message; a rejection has a reason
//! key and a message that is not empty and is bounded (text from the peer is clipped).
#![no_main]

use depthpilot_camera::session::{FrameRecordError, decode_frame_message, unpack_parts};
use depthpilot_camera::{BridgeMessage, FrameError, decode, encode_frame, encode_status};
use libfuzzer_sys::fuzz_target;

/// Longest clipped text in a decoded message: the serial (200) and the status message (1000).
const MAX_SERIAL_BYTES: usize = 200;
const MAX_STATUS_BYTES: usize = 1000;

fn check_error(e: &FrameError) {
    assert!(!e.reason().is_empty());
    let text = e.to_string();
    assert!(!text.is_empty());
    assert!(
        text.len() <= 1024,
        "unbounded rejection text: {} bytes",
        text.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let recorded = decode_frame_message(data);
    let live = match unpack_parts(data) {
        Ok(parts) => {
            let live = decode(&parts);
            match (&live, &recorded) {
                (Ok(BridgeMessage::Frame(a)), Ok(b)) => assert_eq!(**a, *b),
                (Ok(BridgeMessage::Status(_)), Err(FrameRecordError::NotAFrame)) => {}
                (Err(a), Err(FrameRecordError::Frame(b))) => assert_eq!(a, b),
                (a, b) => panic!("the decoders disagree: {a:?} vs {b:?}"),
            }
            live
        }
        Err(e) => {
            assert!(matches!(recorded, Err(FrameRecordError::Unpack(_))));
            assert!(!e.to_string().is_empty());
            decode(&[data.to_vec()])
        }
    };
    match live {
        Ok(BridgeMessage::Status(s)) => {
            if s.message.len() <= MAX_STATUS_BYTES {
                assert_eq!(decode(&encode_status(&s)), Ok(BridgeMessage::Status(s)));
            }
        }
        Ok(BridgeMessage::Frame(f)) => {
            assert_eq!(f.header.intrinsics, f.intrinsics);
            if f.header.serial.len() <= MAX_SERIAL_BYTES {
                let parts = encode_frame(&f.header, &f.frame.depth_mm, f.frame.ir.as_deref());
                assert_eq!(decode(&parts), Ok(BridgeMessage::Frame(f)));
            }
        }
        Err(e) => check_error(&e),
    }
});
